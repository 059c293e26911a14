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

"""Reasoning-segmentation metrics (GRES / LISA / SegLLM conventions) on pycocotools RLE.

A sample is one instruction: the masks predicted and the masks expected
(none when the object referred to is absent). An instruction that refers to
several objects is scored on the union of its masks, as GRES does; the
per-object matching is reported beside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.types import RLE

PRECISION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Sample:
    predicted: Sequence[RLE]
    expected: Sequence[RLE]
    """Empty when the referred object is absent (a no-target sample)."""
    round_index: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    ignore: RLE | None = None
    """Pixels left out of scoring (ReasonSeg's "ignore" regions)."""


@dataclass(frozen=True)
class SampleScore:
    intersection: int
    union: int
    iou: float
    """Per-sample IoU as gIoU counts it: for a no-target sample 1 if nothing was predicted, else 0."""
    has_target: bool
    predicted_empty: bool
    object_ious: tuple[float, ...]
    """Per expected object, the IoU of its best prediction (each prediction used once)."""


def _coco(rle: RLE) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def _union(rles: Sequence[RLE], size: list[int]) -> dict:
    utils = require("pycocotools.mask", "metrics")
    if not rles:
        return utils.encode(np.zeros(size, dtype=np.uint8, order="F"))
    return utils.merge([_coco(r) for r in rles], intersect=False)


def score_sample(sample: Sample) -> SampleScore:
    utils = require("pycocotools.mask", "metrics")
    rles = [*sample.predicted, *sample.expected]
    if not rles:
        return SampleScore(0, 0, 1.0, False, True, ())
    size = list(rles[0]["size"])
    if any(list(r["size"]) != size for r in rles):
        raise ValueError(f"masks of different sizes in one sample: {sorted({tuple(r['size']) for r in rles})}")
    predicted = _union(sample.predicted, size)
    expected = _union(sample.expected, size)
    if sample.ignore is not None:
        keep = ~utils.decode(_coco(sample.ignore)).astype(bool)
        predicted = utils.encode(np.asfortranarray(utils.decode(predicted).astype(bool) & keep, dtype=np.uint8))
        expected = utils.encode(np.asfortranarray(utils.decode(expected).astype(bool) & keep, dtype=np.uint8))
    intersection = int(utils.area(utils.merge([predicted, expected], intersect=True)))
    union = int(utils.area(utils.merge([predicted, expected], intersect=False)))
    has_target = bool(sample.expected) and int(utils.area(expected)) > 0
    predicted_empty = int(utils.area(predicted)) == 0
    if has_target:
        iou = intersection / union
    else:
        iou = 1.0 if predicted_empty else 0.0
    return SampleScore(intersection, union, iou, has_target, predicted_empty, _match_objects(sample))


def _match_objects(sample: Sample) -> tuple[float, ...]:
    """Greedy one-to-one matching of expected to predicted objects, highest IoU first."""
    if not sample.expected:
        return ()
    if not sample.predicted:
        return tuple(0.0 for _ in sample.expected)
    utils = require("pycocotools.mask", "metrics")
    ious = np.asarray(
        utils.iou([_coco(r) for r in sample.predicted], [_coco(r) for r in sample.expected], [0] * len(sample.expected))
    ).reshape(len(sample.predicted), len(sample.expected))
    best = [0.0] * len(sample.expected)
    used_pred: set[int] = set()
    used_gt: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        p, g = divmod(int(flat), len(sample.expected))
        if p in used_pred or g in used_gt or ious[p, g] <= 0:
            continue
        best[g] = float(ious[p, g])
        used_pred.add(p)
        used_gt.add(g)
    return tuple(best)


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    if not values:
        return {}
    found = np.percentile(np.asarray(values, dtype=float), points)
    return {f"p{p}": float(v) for p, v in zip(points, found, strict=True)}


def summarize(samples: Sequence[Sample]) -> dict:
    """All metrics of a run as plain data (the content of ``metrics.json``)."""
    scores = [score_sample(s) for s in samples]
    with_target = [s for s in scores if s.has_target]
    without_target = [s for s in scores if not s.has_target]
    total_i = sum(s.intersection for s in scores)
    total_u = sum(s.union for s in scores)

    rounds: dict[int, list[SampleScore]] = defaultdict(list)
    for sample, score in zip(samples, scores, strict=True):
        rounds[sample.round_index].append(score)
    per_round = {
        str(index): {
            "samples": len(group),
            "cIoU": _ratio(sum(s.intersection for s in group), sum(s.union for s in group)),
            "gIoU": float(np.mean([s.iou for s in group])),
        }
        for index, group in sorted(rounds.items())
    }

    stages: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        for stage, ms in sample.timings_ms.items():
            stages[stage].append(ms)

    object_ious = [iou for s in with_target for iou in s.object_ious]
    return {
        "samples": len(scores),
        "samples_with_target": len(with_target),
        "samples_without_target": len(without_target),
        "gIoU": float(np.mean([s.iou for s in scores])) if scores else None,
        "cIoU": _ratio(total_i, total_u),
        "precision": {
            f"{t:.1f}": (float(np.mean([s.iou > t for s in with_target])) if with_target else None)
            for t in PRECISION_THRESHOLDS
        },
        "N-acc": (float(np.mean([s.predicted_empty for s in without_target])) if without_target else None),
        "T-acc": (float(np.mean([not s.predicted_empty for s in with_target])) if with_target else None),
        "per_round": per_round,
        "per_object": {
            "objects": len(object_ious),
            "mean_iou": float(np.mean(object_ious)) if object_ious else None,
            "matched_at_0.5": float(np.mean([iou >= 0.5 for iou in object_ious])) if object_ious else None,
        },
        "latency_ms": {stage: percentiles(values) for stage, values in sorted(stages.items())},
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator
