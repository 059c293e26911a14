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

"""Where ``memory.reidentify_iou`` should sit: mask IoU of the same object across rounds vs of different objects.

On the demo bag's dialogue (exact masks, the camera panning 2 px a frame),
every later round's objects are compared with every object of an earlier
round of the same session, two ways:
  - ``stored``: with the earlier round's mask as stored (no tracking: the
    mask is where the object was on the earlier frame);
  - ``current``: with the earlier object's mask on the later frame (what a
    perfect tracker holds).
Same-object pairs must reach the threshold, different-object pairs must not.
Ground-truth files of converted bags (``ground_truth.jsonl``) can be added:
their records give different-object pairs (several objects in one record).

Usage: python benchmarks/reidentify_iou.py [ground_truth.jsonl ...]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from reasonseg_ros.eval.demo_bag import DIALOGUE, render
from reasonseg_ros.eval.ground_truth import read_jsonl
from reasonseg_ros.masks import decode_rle, mask_iou


def demo_pairs() -> dict[str, list[float]]:
    pairs: dict[str, list[float]] = {f"{k}/{m}": [] for k in ("same", "different") for m in ("stored", "current")}
    for early, late in itertools.combinations(DIALOGUE, 2):
        if early.session != late.session or not early.shapes or not late.shapes:
            continue
        _, early_masks = render(early.frame)
        _, late_masks = render(late.frame)
        for new in late.shapes:
            for old in early.shapes:
                kind = "same" if new == old else "different"
                pairs[f"{kind}/stored"].append(mask_iou(late_masks[new], early_masks[old]))
                pairs[f"{kind}/current"].append(mask_iou(late_masks[new], late_masks[old]))
    return pairs


def record_pairs(paths: list[str]) -> list[float]:
    ious = []
    for path in paths:
        for record in read_jsonl(path):
            masks = [decode_rle(m) for m in record.masks]
            ious.extend(mask_iou(a, b) for a, b in itertools.combinations(masks, 2))
    return ious


def summary(values: list[float]) -> str:
    if not values:
        return "no pairs"
    return f"{len(values)} pairs, min {min(values):.3f}, median {float(np.median(values)):.3f}, max {max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ground_truth", nargs="*", help="ground_truth.jsonl files of converted bags")
    args = parser.parse_args()
    for name, values in demo_pairs().items():
        print(f"demo {name}: {summary(values)}")
    if args.ground_truth:
        print(f"records, different objects: {summary(record_pairs(args.ground_truth))}")


if __name__ == "__main__":
    main()
