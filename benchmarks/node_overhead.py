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

"""The node's own work per 1280×720 frame, outside the models.

Measures, with the message classes of ``rosbags`` (the rclpy node runs the
same functions on its own classes):
  - image message -> numpy RGB for each accepted encoding (goal: <= 1 ms;
    rgb8 is a zero-copy strided view of ``data``);
  - label image -> mono16 message;
  - 5 masks -> RLE (the engine's ``encode_masks`` stage, for scale);
  - result JSON with the RLE masks of 5 objects;
  - Detection2DArray of 5 objects;
  - the whole publish set of a 5-object round (``NodeCore.publish``: label
    image, mono16 message, detections, rejection, result JSON; goal: <= 3 ms).

No model runs here: the round is built from synthetic masks.
Usage: python benchmarks/node_overhead.py [--repeats 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.config import NodeConfig
from reasonseg_ros.masks import encode_rle, label_image, mask_to_box
from reasonseg_ros.messages import (
    image_to_rgb,
    label_image_to_msg,
    numpy_to_image,
    objects_to_detections,
    round_to_json,
)
from reasonseg_ros.messages.rosbags_types import typestore
from reasonseg_ros.ros.node_core import NodeCore, Outputs
from reasonseg_ros.types import Rejection, RoundResult, SegmentedObject

HEIGHT, WIDTH, OBJECTS = 720, 1280, 5


def median_ms(work: Callable[[], Any], repeats: int) -> float:
    work()  # first-call costs (imports, caches) are not the steady state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def synthetic_round(rng: np.random.Generator) -> RoundResult:
    """A 5-object round on a 1280×720 frame: ellipses of a few percent of the image each."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    masks = []
    for _ in range(OBJECTS):
        cx, cy = rng.uniform(150, WIDTH - 150), rng.uniform(100, HEIGHT - 100)
        rx, ry = rng.uniform(40, 140), rng.uniform(30, 90)
        masks.append(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0)
    stack = np.stack(masks)
    objects = [
        SegmentedObject(i + 1, f"object {i + 1}", mask_to_box(m), encode_rle(m), 0.9, int(m.sum()), 0, 1_000_000)
        for i, m in enumerate(stack)
    ]
    return RoundResult(
        session="default",
        instruction="the five objects, not the fork",
        round_index=0,
        reply="here they are",
        objects=objects,
        rejections=[Rejection("the fork", "not in view")],
        frame_stamp_ns=1_000_000,
        frame_id="camera",
        image_size=(HEIGHT, WIDTH),
        timings_ms={"total": 10.0},
        masks=stack,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    store = typestore()
    types = store.types
    image_cls = types["sensor_msgs/msg/Image"]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="c")
    result = synthetic_round(rng)
    labels = label_image(result.masks, [o.object_id for o in result.objects])

    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average": os.getloadavg(),
    }
    for encoding, array in (
        ("rgb8", pixels[:, :, :3]),
        ("bgr8", pixels[:, :, :3]),
        ("rgba8", pixels),
        ("mono8", pixels[:, :, 0]),
    ):
        msg = numpy_to_image(image_cls, header, array, encoding)
        # The engine takes the view; a model's preprocessing copies it once anyway.
        figures[f"image_to_rgb_{encoding}_ms"] = median_ms(lambda m=msg: image_to_rgb(m), args.repeats)
        figures[f"image_to_rgb_{encoding}_contiguous_ms"] = median_ms(
            lambda m=msg: np.ascontiguousarray(image_to_rgb(m)), args.repeats
        )
    figures["label_image_ms"] = median_ms(
        lambda: label_image(result.masks, [o.object_id for o in result.objects]), args.repeats
    )
    figures["label_image_to_mono16_msg_ms"] = median_ms(
        lambda: label_image_to_msg(image_cls, header, labels), args.repeats
    )
    figures["rle_encode_5_masks_ms"] = median_ms(lambda: [encode_rle(m) for m in result.masks], args.repeats)
    figures["result_json_5_objects_ms"] = median_ms(lambda: round_to_json(result), args.repeats)
    figures["result_json_bytes"] = len(round_to_json(result))
    figures["detections_5_objects_ms"] = median_ms(
        lambda: objects_to_detections(types, header, result.objects), args.repeats
    )
    sink = Outputs(masks=lambda m: None, detections=lambda m: None, result=lambda m: None, rejection=lambda m: None)
    core = NodeCore(engine=None, types=types, outputs=sink, config=NodeConfig())  # type: ignore[arg-type]
    figures["publish_set_5_objects_ms"] = median_ms(lambda: core.publish(result), args.repeats)
    for key, value in figures.items():
        print(f"{key:42s} {value if not isinstance(value, float) else f'{value:.3f}'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
