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

"""DAVIS-format video object segmentation folders (DAVIS 2017, MOSE) -> bags, semi-supervised protocol.

Layout: ``JPEGImages/<seq>/*.jpg`` and ``Annotations/<seq>/*.png`` (palette
PNGs: pixel = object label, 0 background, 255 void: left out of J and F), optionally under a
resolution folder (``JPEGImages/480p/<seq>``) and with DAVIS's
``ImageSets/<year>/<split>.txt`` sequence lists. Each sequence is one
session. The first annotated frame of each object seeds it: a ``prompt``
instruction whose targets carry the object's mask (RLE); every annotated
frame is per-frame ground truth, except the sequence's last, which the DAVIS
toolkit leaves out (it leaves out the first too: there every object is on
its seed frame, which replay never scores). A ``/reset_session`` message ends each
sequence so its tracks do not run on the next video.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.eval.bag_io import RESET_TOPIC, BagWriter
from reasonseg_ros.eval.convert.common import IMAGE_TOPIC, INSTRUCTION_TOPIC, load_rgb
from reasonseg_ros.eval.ground_truth import FILE_NAME, FrameTruth, GroundTruth, ObjectTruth, write_jsonl
from reasonseg_ros.masks import encode_rle
from reasonseg_ros.messages import numpy_to_image

FRAME_PERIOD_NS = 41_666_667
"""24 frames per second, DAVIS's frame rate, on the bag's timeline."""
SEQUENCE_GAP_NS = 1_000_000_000
VOID = 255


@dataclass(frozen=True)
class Sequence:
    name: str
    images: tuple[Path, ...]
    annotations: dict[str, Path]
    """Annotation PNG per frame name (stem); frames without one are images only."""


def _resolve(src: Path, folder: str, resolution: str | None) -> Path:
    base = src / folder
    if not base.is_dir():
        raise ValueError(f"{src} has no {folder}/ folder (expected JPEGImages/<seq>/*.jpg, Annotations/<seq>/*.png)")
    if resolution and (base / resolution).is_dir():
        return base / resolution
    children = [p for p in base.iterdir() if p.is_dir()]
    # DAVIS keeps sequences under a resolution folder (480p, Full-Resolution): step into it when it is the only one.
    if len(children) == 1 and all(c.is_dir() for c in children[0].iterdir()) and any(children[0].iterdir()):
        return children[0]
    return base


def sequences(src: Path, split: str | None = None, resolution: str | None = "480p") -> list[Sequence]:
    """The sequences of a DAVIS-format folder (``split`` names an ``ImageSets/*/<split>.txt`` list, if any)."""
    images_root = _resolve(src, "JPEGImages", resolution)
    annotations_root = _resolve(src, "Annotations", resolution)
    names = sorted(p.name for p in images_root.iterdir() if p.is_dir())
    if split:
        lists = sorted(src.glob(f"ImageSets/*/{split}.txt")) + sorted(src.glob(f"ImageSets/{split}.txt"))
        if not lists:
            raise ValueError(f"no ImageSets/*/{split}.txt in {src}: give the split's own folder without --split")
        wanted = [line.strip() for line in lists[-1].read_text().splitlines() if line.strip()]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(f"{lists[-1]} lists sequences with no images: {', '.join(missing[:5])}")
        names = wanted
    found = []
    for name in names:
        frames = tuple(
            sorted(p for p in (images_root / name).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        )
        annotations = {p.stem: p for p in sorted((annotations_root / name).glob("*.png"))}
        if not frames:
            continue
        if not annotations:
            raise ValueError(f"sequence {name} has no annotation PNGs under {annotations_root / name}")
        unknown = sorted(set(annotations) - {f.stem for f in frames})
        if unknown:
            raise ValueError(f"sequence {name}: annotations without a frame: {', '.join(unknown[:5])}")
        found.append(Sequence(name, frames, annotations))
    if not found:
        raise ValueError(f"no sequences with images under {images_root}")
    return found


def read_labels(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The label image of a palette PNG (pixel = object label); an RGB PNG or a size mismatch is an error."""
    image_module = require("PIL.Image", "reading DAVIS annotations")
    try:
        with image_module.open(path) as picture:
            if picture.mode not in ("P", "L"):
                raise ValueError(f"{path}: annotation is a {picture.mode} image; DAVIS annotations are palette PNGs")
            labels = np.asarray(picture)
    except OSError as exc:
        raise ValueError(f"cannot read annotation {path}: {exc}") from exc
    if labels.shape != shape:
        raise ValueError(f"{path}: annotation is {labels.shape}, its frame {shape}")
    return labels


def convert(
    src: str | Path, out: str | Path, split: str | None = None, limit: int | None = None, resolution: str = "480p"
) -> tuple[Path, int, int]:
    """Write the bag and its ground truth; ``limit`` is a number of sequences. Returns (bag, frames, instructions)."""
    src, out = Path(src), Path(out)
    chosen = sequences(src, split, resolution)[:limit]  # read the whole index before creating anything
    try:
        return _write(chosen, out)
    except BaseException:
        if out.exists():
            shutil.rmtree(out)  # no half-written bag left behind
        raise


def _write(chosen: list[Sequence], out: Path) -> tuple[Path, int, int]:
    records: list[GroundTruth] = []
    frame_records: list[FrameTruth] = []
    frames_written = 0
    stamp = 0
    with BagWriter(out) as bag:
        types = bag.types
        for sequence in chosen:
            seeded: set[int] = set()
            known: list[int] = []
            last = len(sequence.images) - 1
            for k, path in enumerate(sequence.images):
                pixels = load_rgb(path)
                time = types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
                header = types["std_msgs/msg/Header"](stamp=time, frame_id=f"{sequence.name}/{path.name}")
                image = numpy_to_image(types["sensor_msgs/msg/Image"], header, pixels, "rgb8")
                bag.write(IMAGE_TOPIC, "sensor_msgs/msg/Image", image, stamp)
                frames_written += 1
                annotation = sequence.annotations.get(path.stem)
                if annotation is not None:
                    labels = read_labels(annotation, pixels.shape[:2])
                    present = [int(v) for v in np.unique(labels) if v not in (0, VOID)]
                    known += [v for v in present if v not in known]
                    masks = {v: encode_rle(labels == v) for v in known}
                    new = [v for v in present if v not in seeded]
                    if new:
                        seeded.update(new)
                        objects = tuple((f"object {v}", masks[v]) for v in new)
                        text = json.dumps({"targets": [{"label": label, "mask": rle} for label, rle in objects]})
                        envelope = {"text": text, "session": sequence.name, "stamp_ns": stamp}
                        when = stamp + FRAME_PERIOD_NS // 2
                        bag.write(
                            INSTRUCTION_TOPIC,
                            "std_msgs/msg/String",
                            types["std_msgs/msg/String"](data=json.dumps(envelope)),
                            when,
                        )
                        round_index = sum(r.session == sequence.name for r in records)
                        records.append(GroundTruth(len(records), sequence.name, round_index, text, objects, stamp))
                    # The DAVIS toolkit scores neither the first nor the last frame. The first stays in the ground
                    # truth, where it links the seeds to their objects; replay never scores a seed's own frame.
                    if k < last:
                        void = labels == VOID
                        objects_now = tuple(ObjectTruth(v, f"object {v}", masks[v]) for v in known)
                        void_rle = encode_rle(void) if void.any() else None
                        frame_records.append(FrameTruth(sequence.name, stamp, objects_now, void_rle))
                stamp += FRAME_PERIOD_NS
            reset = types["std_msgs/msg/String"](data=sequence.name)
            bag.write(RESET_TOPIC, "std_msgs/msg/String", reset, stamp - FRAME_PERIOD_NS + FRAME_PERIOD_NS * 3 // 4)
            stamp += SEQUENCE_GAP_NS
    write_jsonl(out / FILE_NAME, [*records, *frame_records])
    return out, frames_written, len(records)
