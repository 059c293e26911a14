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

"""Tracking evaluation for bag replay: record every tracking step, then score it against per-frame truth.

Protocol (semi-supervised video object segmentation, as DAVIS and MOSE):
a ground-truth object becomes tracked when a round's result holds it
(:func:`link_objects`); that links the ground truth's object to the
engine's object id, and its seed frame is not scored.
Every later ground-truth frame of the object is scored, J and F, against
what tracking reported for that id:

- deterministic replay steps the tracker on every frame, and frame ``t`` is
  scored against the step on frame ``t``;
- real-time replay steps it as the robot would (rate-limited, skipping
  frames), and frame ``t`` is scored against the newest step published by
  the time frame ``t`` arrived, so skipped frames and latency both count.

An object missing from a step, or reported without a mask, counts as an
empty prediction.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.eval.ground_truth import FrameTruth, GroundTruth, index_frames
from reasonseg_ros.eval.metrics import BOUNDARY_THRESHOLD, TrackFrame, score_track_frame, summarize_tracking
from reasonseg_ros.masks import decode_rle, encode_rle, mask_iou
from reasonseg_ros.types import RLE, TrackStep

LINK_IOU = 0.5
"""A result mask must overlap a ground-truth object at least this much (IoU) to link the two."""


@dataclass(frozen=True)
class RecordedStep:
    """A tracking step kept compactly (masks as RLE) with the bag time it became available."""

    available_ns: int
    stamp_ns: int
    frame_id: str
    size: tuple[int, int]
    latency_ms: float
    error: str | None
    objects: dict[tuple[str, int], tuple[str, RLE | None]]
    """``(session, object_id) -> (status, mask)``."""


@dataclass
class StepRecorder:
    """Wraps an engine's ``track_newest`` so every step, whoever asked for it, is recorded."""

    engine: Any
    clock: Callable[[], int]
    steps: list[RecordedStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._inner = self.engine.track_newest
        self.engine.track_newest = self  # the node core and replay both call through the recorder

    def __call__(self, force: bool = False) -> TrackStep | None:
        step = self._inner(force=force)
        if step is not None:
            objects = {
                (o.session, o.object_id): (o.status, None if o.mask is None else encode_rle(np.asarray(o.mask, bool)))
                for o in step.objects
            }
            self.steps.append(
                RecordedStep(
                    self.clock(), step.stamp_ns, step.frame_id, step.image_size, step.latency_ms, step.error, objects
                )
            )
        return step


def tracking_enabled(engine: Any, backend: str) -> bool:
    """Tracking is evaluated when a backend is configured and the engine can step it."""
    return backend != "none" and callable(getattr(engine, "track_newest", None))


def link_objects(
    frames: Mapping[tuple[str, int], FrameTruth],
    rounds: Iterable[tuple[dict[str, Any], GroundTruth | None]],
) -> tuple[dict[tuple[str, int], list[tuple[int, int]]], list[str]]:
    """``(session, truth id) -> [(from stamp, engine id), ...]``, in time order, from the rounds' results.

    A result object is linked to the ground-truth object its mask overlaps best (IoU ≥ :data:`LINK_IOU`)
    on the round's frame. Failing that (a poor mask, random weights), when the round returned as many
    objects as its instruction's ground truth expects, the j-th object stands for the j-th expected one.
    """
    links: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    ordered = sorted(
        ((r, rec) for r, rec in rounds if r.get("ok") and r.get("frame")), key=lambda p: p[0]["frame"]["stamp_ns"]
    )
    for result, record in ordered:
        stamp, session = result["frame"]["stamp_ns"], result["session"]
        truth = frames.get((session, stamp))
        if truth is None:
            continue
        truth_masks = {o.object_id: decode_rle(o.mask) for o in truth.objects}
        objects = result["objects"]
        if any("mask" not in obj for obj in objects):
            return {}, ["results carry no masks (node.result_masks is false): tracking is not scored"]
        expected = record.masks if record is not None and len(record.masks) == len(objects) else None
        for j, obj in enumerate(objects):
            best = _best_match(truth_masks, decode_rle(obj["mask"]))
            if best is None and expected is not None:
                best = _best_match(truth_masks, decode_rle(expected[j]))
            if best is not None:
                links[(session, best)].append((stamp, int(obj["id"])))
    return dict(links), []


def _best_match(truth_masks: Mapping[int, np.ndarray], mask: np.ndarray) -> int | None:
    scores = {k: mask_iou(m, mask) for k, m in truth_masks.items() if m.shape == mask.shape and m.any()}
    best = max(scores, key=scores.__getitem__, default=None)
    return best if best is not None and scores[best] >= LINK_IOU else None


def link_rounds(
    frame_truth: list[FrameTruth], rounds: Iterable[tuple[dict[str, Any], GroundTruth | None]]
) -> dict[tuple[str, int], list[tuple[int, int]]]:
    """:func:`link_objects` on raw frame records."""
    return link_objects(index_frames(frame_truth), rounds)[0]


def export_davis(
    steps: list[RecordedStep],
    rounds: Iterable[tuple[dict[str, Any], GroundTruth | None]],
    links: Mapping[tuple[str, int], list[tuple[int, int]]],
    out_dir: Path,
) -> int:
    """Write the tracked masks as DAVIS result PNGs, ``<out>/<sequence>/<frame>.png``; returns the files written.

    For bags from ``convert davis`` (frame ids ``<sequence>/<file>``, session = sequence): pixel = the
    ground truth's object label, from the tracking step on each frame and, on a seed frame, the round's
    masks. This is what the DAVIS toolkit and the MOSE server score.
    """
    image_module = require("PIL.Image", "writing DAVIS result PNGs")
    reverse: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)  # (session, engine id) -> truth ids
    for (session, truth_id), history in links.items():
        for since, engine_id in history:
            reverse[(session, engine_id)].append((since, truth_id))
    pages: dict[tuple[str, str], np.ndarray] = {}

    def page(frame_id: str, size: tuple[int, int]) -> tuple[str, np.ndarray] | None:
        if "/" not in frame_id:
            return None
        sequence, name = frame_id.split("/", 1)
        key = (sequence, Path(name).stem)
        if key not in pages:
            pages[key] = np.zeros(size, dtype=np.uint8)
        return sequence, pages[key]

    def label(session: str, engine_id: int, stamp: int) -> int | None:
        found = [truth for since, truth in sorted(reverse.get((session, engine_id), [])) if since <= stamp]
        return found[-1] if found else None

    for step in steps:
        target = page(step.frame_id, step.size)
        if target is None:
            continue
        sequence, labels = target
        for (session, engine_id), (_, rle) in sorted(step.objects.items()):
            truth = label(session, engine_id, step.stamp_ns)
            if session == sequence and rle is not None and truth is not None:
                labels[decode_rle(rle)] = truth
    for result, _ in rounds:
        frame = result.get("frame") if result.get("ok") else None
        if not frame:
            continue
        target = page(frame.get("frame_id", ""), (frame["height"], frame["width"]))
        if target is None:
            continue
        for obj in result["objects"]:
            truth = label(result["session"], int(obj["id"]), frame["stamp_ns"])
            if "mask" in obj and truth is not None:
                target[1][decode_rle(obj["mask"])] = truth  # the seed as the round segmented it
    palette = [0, 0, 0] + [v for k in range(1, 256) for v in ((k * 67) % 256, (k * 151) % 256, (k * 211) % 256)]
    for (sequence, stem), labels in pages.items():
        path = out_dir / sequence / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture = image_module.fromarray(labels, mode="P")
        picture.putpalette(palette)
        picture.save(path)
    return len(pages)


def score_tracking(
    steps: list[RecordedStep],
    frame_truth: list[FrameTruth],
    rounds: Iterable[tuple[dict[str, Any], GroundTruth | None]],
    mode: str,
    bound_th: float = BOUNDARY_THRESHOLD,
) -> tuple[dict[str, Any], list[str]]:
    """The ``tracking`` section of ``metrics.json`` and the problems met (listed in the report).

    ``rounds`` pairs each result with its instruction's ground truth (None when it has none).
    """
    frames = index_frames(frame_truth)
    links, problems = link_objects(frames, rounds)
    if not frames:
        problems.append("the ground truth has no per-frame records (type frame): only tracking latency is reported")
    by_stamp = {step.stamp_ns: step for step in steps}
    available = [step.available_ns for step in steps]
    labels: dict[tuple[str, int], str] = {}
    scored: dict[tuple[str, int], list[TrackFrame]] = defaultdict(list)
    size_problems: set[str] = set()
    for (session, stamp), truth in sorted(frames.items(), key=lambda item: item[0][1]):
        if mode == "realtime":
            index = bisect.bisect_right(available, stamp) - 1
            step = steps[index] if index >= 0 else None
        else:
            step = by_stamp.get(stamp)
        void = None if truth.void is None else decode_rle(truth.void)
        for obj in truth.objects:
            key = (session, obj.object_id)
            labels.setdefault(key, obj.label)
            engine_id = _engine_id(links.get(key, []), stamp)
            if engine_id is None:
                continue  # not yet seeded (or this is its seed frame): not scored
            status, rle = (None, None) if step is None else step.objects.get((session, engine_id), (None, None))
            expected = decode_rle(obj.mask)
            predicted = None if rle is None else decode_rle(rle)
            if predicted is not None and predicted.shape != expected.shape:
                size_problems.add(f"tracked mask {predicted.shape} vs ground truth {expected.shape}: scored empty")
                predicted = None
            if void is not None and void.shape != expected.shape:
                void = None
            scored[key].append(score_track_frame(stamp, expected, predicted, status, bound_th, void))
    for key in sorted(labels):
        if key not in links:
            problems.append(f"ground-truth object {key[1]} of session '{key[0]}' was never segmented: not scored")
    problems += sorted(size_problems)
    objects = {
        f"{session}/{truth_id}": (labels[(session, truth_id)], frames_)
        for (session, truth_id), frames_ in scored.items()
    }
    summary = summarize_tracking(
        objects, [s.latency_ms for s in steps], steps=len(steps), errors=sum(s.error is not None for s in steps)
    )
    summary["mode"] = mode
    summary["bound_th"] = bound_th
    return summary, problems


def _engine_id(links: list[tuple[int, int]], stamp: int) -> int | None:
    """The engine id linked most recently strictly before ``stamp`` (a seed frame itself is not scored)."""
    engine_id = None
    for since, linked in links:
        if since >= stamp:
            break
        engine_id = linked
    return engine_id
