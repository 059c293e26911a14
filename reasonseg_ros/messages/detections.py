# Copyright 2026 reasonseg_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Segmented objects <-> vision_msgs/Detection2DArray (Humble and later layout), by field access."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from reasonseg_ros.types import SegmentedObject


def _pose_with_covariance(types: Mapping[str, Any]) -> Any:
    point = types["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0)
    orientation = types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
    pose = types["geometry_msgs/msg/Pose"](position=point, orientation=orientation)
    return types["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36, dtype=np.float64))


def objects_to_detections(types: Mapping[str, Any], header: Any, objects: Sequence[SegmentedObject]) -> Any:
    """One Detection2D per object: axis-aligned box in pixels, id = object id, class_id = label.

    ``types`` maps ROS type names to message classes (rosbags' ``typestore.types``
    or the rclpy node's).
    """
    detections = []
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        center = types["vision_msgs/msg/Pose2D"](
            position=types["vision_msgs/msg/Point2D"](x=(x1 + x2) / 2.0, y=(y1 + y2) / 2.0), theta=0.0
        )
        bbox = types["vision_msgs/msg/BoundingBox2D"](center=center, size_x=float(x2 - x1), size_y=float(y2 - y1))
        hypothesis = types["vision_msgs/msg/ObjectHypothesis"](class_id=obj.label, score=float(obj.score))
        result = types["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=hypothesis, pose=_pose_with_covariance(types)
        )
        detections.append(
            types["vision_msgs/msg/Detection2D"](header=header, results=[result], bbox=bbox, id=str(obj.object_id))
        )
    return types["vision_msgs/msg/Detection2DArray"](header=header, detections=detections)


def detections_to_boxes(msg: Any) -> list[tuple[str, str, float, tuple[float, float, float, float]]]:
    """``(id, class_id, score, (x1, y1, x2, y2))`` per detection (its first hypothesis)."""
    boxes = []
    for detection in msg.detections:
        center, bbox = detection.bbox.center.position, detection.bbox
        hypothesis = detection.results[0].hypothesis if len(detection.results) else None
        box = (
            center.x - bbox.size_x / 2.0,
            center.y - bbox.size_y / 2.0,
            center.x + bbox.size_x / 2.0,
            center.y + bbox.size_y / 2.0,
        )
        label = hypothesis.class_id if hypothesis else ""
        boxes.append((detection.id, label, float(hypothesis.score) if hypothesis else 0.0, box))
    return boxes
