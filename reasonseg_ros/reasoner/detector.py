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

"""The ``detector`` reasoner: noun phrases to boxes with an open-vocabulary detector (phrase grounding).

The instruction is split into noun phrases by a fixed rule
(:func:`noun_phrases`, documented in docs/detector.md); a zero-shot object
detection model of transformers (OWLv2, OWL-ViT or Grounding DINO) scores
every phrase against every box it proposes. Every box at or above the
threshold is a target (several mugs are several targets); a phrase with none
is a rejection saying so. A box of a phrase that overlaps a remembered object
of the same label keeps that object's id, so "the mug again" is the same
object. Relations ("left of the plate") and reasoning ("something to drink
from") are beyond it: the ``vlm`` reasoner does those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonseg_ros.config import DetectorConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError, InputError
from reasonseg_ros.masks import box_iou
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.types import Prompt, ReasonerOutput, Rejection, SegmentedObject, Target

DEFAULT_THRESHOLD = {"owlv2": 0.2, "owlvit": 0.1, "grounding-dino": 0.35}
SPLIT = re.compile(r"\s*(?:,|;|\band\b|&|\bplus\b|\bas well as\b|\balong with\b|\btogether with\b)\s*")
LEADING = frozenset(
    "please can could would you i we want need to segment find show highlight select pick mark detect locate "
    "get give me us outline where is are what now then also and next".split()
)
DETERMINERS = frozenset("the a an some any all every each both my your our this that these those its their".split())
TRAILING = frozenset("again too also please here there now once more as well".split())
PRONOUNS = frozenset(["it", "them", "that", "this", "those", "these", "that one", "this one", "the same one"])
RELATIONS = (
    "left of", "right of", "next to", "in front of", "on top of", "behind", "under", "below", "above", "beside",
    "near", "between", "closest", "nearest", "farthest", "on", "in", "at", "with", "that", "which", "who", "from",
)  # fmt: skip
RELATION = re.compile(r"\b(?:" + "|".join(re.escape(r) for r in RELATIONS) + r")\b")


@dataclass(frozen=True)
class Phrase:
    """One noun phrase of an instruction."""

    text: str
    """What the detector is asked for, e.g. ``red mug``."""
    again: bool = False
    """The instruction refers back ("again", "the same"): a remembered object may stand in when nothing is found."""
    dropped: str | None = None
    """The relation part cut off (the detector cannot ground relations), for the warning."""


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]
    score: float


def noun_phrases(text: str) -> list[Phrase]:
    """Split an instruction into noun phrases; the rule in docs/detector.md.

    1. lower-case; sentence punctuation becomes a space;
    2. split at ``,`` ``;`` ``and`` ``&`` ``plus`` ``as well as`` ``along with`` ``together with``;
    3. drop leading request words (``segment``, ``find``, ``show me``, ``please``, ...) and determiners
       (``the``, ``a``, ``this``, ...), and trailing ``again`` / ``too`` / ``please`` (``again`` and a
       leading ``same`` mark a reference back);
    4. cut at the first relation word after the head (``left of``, ``next to``, ``on``, ``with``, ``that``, ...):
       ``mug on the table`` asks for ``mug`` (with a warning);
    5. a bare pronoun (``it``, ``them``, ``that one``) means the objects of the previous round;
    6. a phrase said twice is asked once.
    """
    cleaned = re.sub(r"[.!?\"()\[\]{}:]+", " ", text.lower())
    phrases = []
    for chunk in SPLIT.split(cleaned):
        words = chunk.split()
        while words and words[0] in LEADING | DETERMINERS:
            words.pop(0)
        again = False
        while words and words[-1] in TRAILING:
            again |= words.pop() == "again"
        if words and words[0] == "same":
            again = True
            words.pop(0)
        phrase = " ".join(words)
        if not phrase:
            continue
        if phrase in PRONOUNS or phrase in ("one", "ones"):
            phrases.append(Phrase("it", again=True))
            continue
        dropped = None
        first_space = phrase.find(" ")
        match = RELATION.search(phrase, first_space + 1) if first_space >= 0 else None
        if match is not None:
            dropped = phrase[match.start() :]
            phrase = phrase[: match.start()].strip()
        phrases.append(Phrase(phrase, again, dropped))
    unique: dict[str, Phrase] = {}
    for phrase in phrases:  # "the mug and the mug" asks once: one phrase, its boxes once
        unique.setdefault(phrase.text, phrase)
    return list(unique.values())


class DetectorReasoner:
    """Phrase grounding with a transformers zero-shot object detection model; one round at a time."""

    def __init__(self, model: Any, processor: Any, config: DetectorConfig, name: str | None = None) -> None:
        self.torch = require("torch", "the detector reasoner")
        self.model = model.eval()
        self.processor = processor
        self.config = config
        self.family = str(model.config.model_type)
        if self.family not in DEFAULT_THRESHOLD:
            raise CheckpointError(
                f"{config.model} is a {self.family} model; the detector reasoner takes owlv2, owlvit or grounding-dino"
            )
        self.threshold = config.threshold if config.threshold is not None else DEFAULT_THRESHOLD[self.family]
        self.device = next(model.parameters()).device
        self.name = name or f"detector {self.family} {config.model} ({self.device}, threshold {self.threshold:g})"

    @classmethod
    def from_config(cls, config: DetectorConfig) -> DetectorReasoner:
        """Load ``config.model``; a failure is one line naming the model and what to do."""
        from pathlib import Path

        from reasonseg_ros.preflight import model_problem

        transformers = require("transformers", "the detector reasoner")

        def load(local_only: bool) -> tuple[Any, Any]:
            processor = transformers.AutoProcessor.from_pretrained(config.model, local_files_only=local_only)
            model = transformers.AutoModelForZeroShotObjectDetection.from_pretrained(
                config.model, local_files_only=local_only
            )
            return processor, model

        try:
            try:  # the cache or a folder first: an offline robot never waits on the hub
                processor, model = load(local_only=True)
            except (OSError, ValueError):
                if config.local_files_only or Path(config.model).expanduser().exists():
                    raise
                problem = model_problem(config.model, False, "reasoner.detector.model")
                if problem is not None:  # one request decides: transformers would retry each file for minutes
                    raise CheckpointError(problem) from None
                processor, model = load(local_only=False)
        except (OSError, ValueError) as exc:
            first = " ".join(str(exc).split())[:200]
            raise CheckpointError(
                f"cannot load detector {config.model} ({type(exc).__name__}: {first}); on a connected machine run "
                f"`reasonseg download {config.model}`, or set reasoner.detector.model to a local folder"
            ) from exc
        return cls(model.to(config.device), processor, config)

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        phrases = noun_phrases(text)
        if not phrases:
            raise InputError(f"no noun phrase found in {text!r}: name the objects, e.g. 'the red mug and the plate'")
        warnings = [
            f"'{p.text} {p.dropped}': the detector cannot ground relations; searched for '{p.text}'"
            for p in phrases
            if p.dropped
        ]
        targets: list[Target] = []
        rejections: list[Rejection] = []
        searched = [p for p in phrases if p.text != "it"]
        found = self.detect(image, [p.text for p in searched]) if searched else []
        used: set[int] = set()
        for phrase in phrases:
            if phrase.text == "it":
                earlier = _previous_round(memory, used)
                targets += earlier
                if not earlier:
                    rejections.append(Rejection("it", "nothing was segmented in an earlier round to refer to"))
                continue
            detections = found[searched.index(phrase)]
            if detections:
                targets += _targets(phrase.text, detections, memory, self.config.memory_iou, used)
                continue
            remembered = _remembered(phrase.text, memory, used) if phrase.again else []
            if remembered:
                for obj in remembered:
                    used.add(obj.object_id)
                    box = np.asarray(obj.box, dtype=np.float32)
                    targets.append(Target(obj.label, Prompt(box=box), obj.score, obj.object_id))
                ids = ", ".join(str(o.object_id) for o in remembered)
                warnings.append(f"no '{phrase.text}' detected now: object {ids} re-segmented at the last box")
                continue
            reason = f"the detector found no '{phrase.text}' scoring {self.threshold:g} or more"
            rejections.append(Rejection(phrase.text, reason))
        reply = ", ".join(t.label + (f" (id {t.object_id})" if t.object_id else "") for t in targets)
        return ReasonerOutput(
            reply=reply, targets=tuple(targets), rejections=tuple(rejections), warnings=tuple(warnings)
        )

    def detect(self, image: np.ndarray, phrases: list[str]) -> list[list[Detection]]:
        """Per phrase, the boxes scoring at or above the threshold after per-phrase NMS, best first."""
        torch = self.torch
        image_module = require("PIL.Image", "the detector reasoner")
        picture = image_module.fromarray(np.ascontiguousarray(image))
        height, width = image.shape[:2]
        if self.family == "grounding-dino":
            caption, spans = _caption(phrases)
            inputs = self.processor(images=picture, text=caption, return_tensors="pt")
            token_spans = _token_spans(self.processor.tokenizer, caption, spans, inputs["input_ids"].shape[1])
        else:
            inputs = self.processor(text=phrases, images=picture, return_tensors="pt")
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        logits = outputs.logits[0].float().sigmoid().cpu().numpy()
        if self.family == "grounding-dino":
            scores = np.stack([logits[:, span].max(axis=1) for span in token_spans], axis=1)
        else:
            scores = logits[:, : len(phrases)]
        # OWLv2 pads the image to a square before it predicts: its boxes are fractions of that square's side.
        scale = (max(height, width),) * 2 if self.family == "owlv2" else (width, height)
        boxes = _to_pixels(outputs.pred_boxes[0].float().cpu().numpy(), scale, width, height)
        return [self._keep(boxes, scores[:, p]) for p in range(len(phrases))]

    def _keep(self, boxes: np.ndarray, scores: np.ndarray) -> list[Detection]:
        kept: list[Detection] = []
        for index in np.argsort(-scores, kind="stable"):
            if scores[index] < self.threshold or len(kept) >= self.config.max_per_phrase:
                break
            box = tuple(float(v) for v in boxes[index])
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            if all(box_iou(box, k.box) <= self.config.nms_iou for k in kept):
                kept.append(Detection(box, float(scores[index])))  # type: ignore[arg-type]
        return kept


def _caption(phrases: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Grounding DINO's caption ``"red mug. plate."`` and each phrase's character span in it."""
    caption, spans = "", []
    for phrase in phrases:
        spans.append((len(caption), len(caption) + len(phrase)))
        caption += phrase + ". "
    return caption.strip(), spans


def _token_spans(tokenizer: Any, caption: str, spans: list[tuple[int, int]], length: int) -> list[list[int]]:
    """Token positions of each phrase, from the tokenizer's character offsets."""
    offsets = tokenizer(caption, return_offsets_mapping=True)["offset_mapping"]
    result = []
    for start, end in spans:
        tokens = [i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end and i < length]
        if not tokens:
            raise InputError(f"the phrase {caption[start:end]!r} fell outside the detector's text length")
        result.append(tokens)
    return result


def _to_pixels(boxes: np.ndarray, scale: tuple[int, int], width: int, height: int) -> np.ndarray:
    """``(cx, cy, w, h)`` fractions to ``[x1, y1, x2, y2]`` pixels, clipped to the image."""
    cx, cy, w, h = boxes.T
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    corners *= np.asarray([scale[0], scale[1], scale[0], scale[1]], dtype=np.float32)
    return np.clip(corners, 0, [width, height, width, height])


def _same_label(phrase: str, label: str) -> bool:
    """Labels match when equal or when their head nouns (last words, plural -s dropped) are: "red mug", "mugs"."""
    a, b = phrase.lower().split(), label.lower().split()
    return bool(a and b) and (a == b or _singular(a[-1]) == _singular(b[-1]))


def _singular(word: str) -> str:
    """``mugs`` -> ``mug``; ``glass``, ``bus`` stay (a plain rule, not a lemmatiser)."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _targets(
    phrase: str, detections: list[Detection], memory: MemoryView, min_iou: float, used: set[int]
) -> list[Target]:
    """One target per detection; one overlapping a remembered object of the same label takes its id."""
    targets = []
    for detection in detections:
        best, best_iou = None, min_iou
        for obj in memory.objects:
            if obj.object_id in used or not _same_label(phrase, obj.label):
                continue
            iou = box_iou(detection.box, obj.box)
            if iou >= best_iou:
                best, best_iou = obj, iou
        object_id = None
        if best is not None:
            object_id = best.object_id
            used.add(object_id)
        box = np.asarray(detection.box, dtype=np.float32)
        targets.append(Target(phrase, Prompt(box=box), detection.score, object_id))
    return targets


def _remembered(phrase: str, memory: MemoryView, used: set[int]) -> list[SegmentedObject]:
    """The remembered objects of the same label from the latest round that segmented any."""
    for memory_round in reversed(memory.rounds):
        objects = [memory.get(i) for i in memory_round.object_ids if i not in used]
        same = [o for o in objects if o is not None and _same_label(phrase, o.label)]
        if same:
            return same
    return []


def _previous_round(memory: MemoryView, used: set[int]) -> list[Target]:
    if not memory.rounds:
        return []
    targets = []
    for object_id in memory.rounds[-1].object_ids:
        obj = memory.get(object_id)
        if obj is not None and object_id not in used:
            used.add(object_id)
            targets.append(Target(obj.label, Prompt(box=np.asarray(obj.box, dtype=np.float32)), obj.score, object_id))
    return targets
