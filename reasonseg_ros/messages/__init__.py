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

"""ROS message <-> numpy and dataclasses, by field access.

Nothing here imports rclpy or a ROS message package: the caller passes the
message classes (rclpy's, or rosbags' from :func:`rosbags_types.typestore`),
so the ROS node and bag replay share these conversions.
"""

from reasonseg_ros.messages.detections import detections_to_boxes, objects_to_detections
from reasonseg_ros.messages.image import ENCODINGS, image_to_numpy, image_to_rgb, label_image_to_msg, numpy_to_image
from reasonseg_ros.messages.result_json import (
    SCHEMA_VERSION,
    parse_instruction,
    rejection_text,
    round_from_json,
    round_to_dict,
    round_to_json,
)

__all__ = [
    "ENCODINGS",
    "SCHEMA_VERSION",
    "detections_to_boxes",
    "image_to_numpy",
    "image_to_rgb",
    "label_image_to_msg",
    "numpy_to_image",
    "objects_to_detections",
    "parse_instruction",
    "rejection_text",
    "round_from_json",
    "round_to_dict",
    "round_to_json",
]
