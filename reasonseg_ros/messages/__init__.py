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
