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


# -- Video object segmentation (tracking): J, F and J&F, DAVIS definitions -------------------------

BOUNDARY_THRESHOLD = 0.008
"""DAVIS boundary tolerance: a fraction of the image diagonal (a value ≥ 1 is taken as pixels)."""


def _check(truth: np.ndarray, predicted: np.ndarray, void: np.ndarray | None) -> None:
    if truth.shape != predicted.shape:
        raise ValueError(f"masks of different sizes: ground truth {truth.shape}, prediction {predicted.shape}")
    if void is not None and void.shape != truth.shape:
        raise ValueError(f"void mask {void.shape} for masks of {truth.shape}")


def region_similarity(truth: np.ndarray, predicted: np.ndarray, void: np.ndarray | None = None) -> float:
    """J: the IoU of two H×W bool masks, ``void`` pixels left out; 1 when both are empty (DAVIS)."""
    _check(truth, predicted, void)
    keep = True if void is None else ~void
    union = int(np.count_nonzero((truth | predicted) & keep))
    return 1.0 if union == 0 else int(np.count_nonzero(truth & predicted & keep)) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundaries of a bool mask, DAVIS's ``seg2bmap`` rule.

    A pixel is on the boundary when it differs from its right, lower or
    lower-right neighbour (so the line sits half a pixel towards the origin);
    on the last row only the right neighbour counts, on the last column only
    the lower one, and the bottom-right corner never does.
    """
    mask = np.asarray(mask, dtype=bool)
    right = np.zeros_like(mask)
    below = np.zeros_like(mask)
    diagonal = np.zeros_like(mask)
    right[:, :-1] = mask[:, 1:]
    below[:-1, :] = mask[1:, :]
    diagonal[:-1, :-1] = mask[1:, 1:]
    edges = (mask ^ right) | (mask ^ below) | (mask ^ diagonal)
    edges[-1, :] = mask[-1, :] ^ right[-1, :]
    edges[:, -1] = mask[:, -1] ^ below[:, -1]
    edges[-1, -1] = False
    return edges


def boundary_tolerance_px(shape: tuple[int, int], bound_th: float = BOUNDARY_THRESHOLD) -> int:
    """Match distance in pixels: ``bound_th`` itself when ≥ 1, else ceil(bound_th × image diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.hypot(*shape)))


def dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by the disk {dx² + dy² ≤ radius²}, as row-wise runs (no image library needed)."""
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0 or not mask.any():
        return mask.copy()
    height, width = mask.shape
    # Horizontal dilation by a half-width w is a sliding-window "any" over a padded cumulative sum.
    padded = np.zeros((height, width + 2 * radius + 1), dtype=np.int32)
    padded[:, radius + 1 : radius + 1 + width] = mask
    cumulative = np.cumsum(padded, axis=1)
    out = np.zeros_like(mask)
    for dy in range(-radius, radius + 1):
        half = int(np.floor(np.sqrt(radius * radius - dy * dy)))
        columns = np.arange(width) + radius + 1
        row_any = (cumulative[:, columns + half] - cumulative[:, columns - half - 1]) > 0
        # A pixel (y, x) is hit when row y - dy holds a set pixel within ``half`` columns.
        if dy >= 0:
            out[dy:, :] |= row_any[: height - dy, :]
        else:
            out[: height + dy, :] |= row_any[-dy:, :]
    return out


def boundary_measure(
    truth: np.ndarray, predicted: np.ndarray, bound_th: float = BOUNDARY_THRESHOLD, void: np.ndarray | None = None
) -> float:
    """F: the boundary F-measure of DAVIS (precision and recall of boundary pixels matched within a disk).

    ``void`` pixels are cleared from both masks before their boundaries are taken, as DAVIS does.
    """
    _check(truth, predicted, void)
    if void is not None:
        truth, predicted = truth & ~void, predicted & ~void
    radius = boundary_tolerance_px(truth.shape, bound_th)
    truth_edges, predicted_edges = boundary_map(truth), boundary_map(predicted)
    n_truth, n_predicted = int(truth_edges.sum()), int(predicted_edges.sum())
    if n_truth == 0 and n_predicted == 0:
        return 1.0
    if n_truth == 0 or n_predicted == 0:
        return 0.0  # DAVIS: precision 1 / recall 0 (or the reverse), so F is 0
    # Only the neighbourhood of the boundaries matters: crop to it (large frames, small objects).
    rows = np.flatnonzero((truth_edges | predicted_edges).any(axis=1))
    cols = np.flatnonzero((truth_edges | predicted_edges).any(axis=0))
    y0, y1 = max(rows[0] - radius, 0), min(rows[-1] + radius + 1, truth.shape[0])
    x0, x1 = max(cols[0] - radius, 0), min(cols[-1] + radius + 1, truth.shape[1])
    truth_edges, predicted_edges = truth_edges[y0:y1, x0:x1], predicted_edges[y0:y1, x0:x1]
    precision = np.count_nonzero(predicted_edges & dilate_disk(truth_edges, radius)) / n_predicted
    recall = np.count_nonzero(truth_edges & dilate_disk(predicted_edges, radius)) / n_truth
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


@dataclass(frozen=True)
class TrackFrame:
    """One ground-truth frame of one tracked object, scored."""

    stamp_ns: int
    j: float
    f: float
    visible: bool
    """The ground truth shows the object on this frame (non-empty mask)."""
    status: str | None
    """What tracking reported: visible, occluded, lost, or None when the object was not in the step at all."""


def score_track_frame(
    stamp_ns: int,
    truth: np.ndarray,
    predicted: np.ndarray | None,
    status: str | None,
    bound_th: float,
    void: np.ndarray | None = None,
) -> TrackFrame:
    """Score one object on one frame; no predicted mask counts as an empty one."""
    if predicted is None:
        predicted = np.zeros_like(truth, dtype=bool)
    return TrackFrame(
        stamp_ns,
        region_similarity(truth, predicted, void),
        boundary_measure(truth, predicted, bound_th, void),
        bool(truth.any()),
        status,
    )


def summarize_tracking(
    objects: dict[str, tuple[str, Sequence[TrackFrame]]],
    latencies_ms: Sequence[float],
    steps: int,
    errors: int = 0,
) -> dict:
    """The ``tracking`` section of ``metrics.json``.

    ``objects`` maps ``"session/object_id"`` to ``(label, frames)``. Per
    object J and F are means over its scored frames; the overall J, F and J&F
    are means over objects, as the DAVIS toolkit averages them.
    """
    per_object = {}
    for key, (label, frames) in sorted(objects.items()):
        visible = [f for f in frames if f.visible]
        j = float(np.mean([f.j for f in frames])) if frames else None
        f_ = float(np.mean([f.f for f in frames])) if frames else None
        per_object[key] = {
            "label": label,
            "frames": len(frames),
            "J": j,
            "F": f_,
            "J&F": None if j is None or f_ is None else (j + f_) / 2,
            "lost_while_visible": _share([f.status == "lost" for f in visible]),
            "iou_over_time": [[f.stamp_ns, f.j] for f in frames],
        }
    scored = [v for v in per_object.values() if v["frames"]]
    all_visible = [f for _, frames in objects.values() for f in frames if f.visible]
    j_mean = float(np.mean([v["J"] for v in scored])) if scored else None
    f_mean = float(np.mean([v["F"] for v in scored])) if scored else None
    latency = percentiles(latencies_ms, (50, 95))
    return {
        "objects": len(per_object),
        "frames_scored": sum(v["frames"] for v in per_object.values()),
        "J": j_mean,
        "F": f_mean,
        "J&F": None if j_mean is None or f_mean is None else (j_mean + f_mean) / 2,
        "lost_while_visible": _share([f.status == "lost" for f in all_visible]),
        "occluded_while_visible": _share([f.status == "occluded" for f in all_visible]),
        "unreported_while_visible": _share([f.status is None for f in all_visible]),
        "steps": steps,
        "step_errors": errors,
        "latency_ms": latency,
        "per_object": per_object,
    }


def _share(flags: Sequence[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None
