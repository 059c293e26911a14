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

"""The DAVIS-format converter on a tiny DAVIS 2017-style folder written here."""

import json

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
Image = pytest.importorskip("PIL.Image", reason="pillow is not installed")

from reasonseg_ros.cli import main  # noqa: E402
from reasonseg_ros.eval.bag_io import open_bag  # noqa: E402
from reasonseg_ros.eval.convert import convert  # noqa: E402
from reasonseg_ros.eval.ground_truth import FILE_NAME, read_ground_truth  # noqa: E402
from reasonseg_ros.masks import decode_rle  # noqa: E402
from reasonseg_ros.memory import MemoryView  # noqa: E402
from reasonseg_ros.messages import image_to_rgb, parse_instruction  # noqa: E402
from reasonseg_ros.reasoner.prompt import PromptReasoner  # noqa: E402

PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)


def labels_of(frame, shape, objects):
    """Label image of a synthetic sequence: object 1 slides right; object 2 (when present) appears at frame 2."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[4:12, 2 + frame : 10 + frame] = 1
    if objects > 1 and frame >= 2:
        labels[14:18, 20:26] = 2
        labels[14, 20] = 255  # a void pixel: neither background nor an object
    return labels


def frame_image(frame, shape, objects):
    """A textured background with the objects drawn in flat colours (something for optical flow to follow)."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    texture = (100 + 60 * np.sin(xs / 2.3) * np.cos(ys / 3.1)).astype(np.uint8)
    image = np.stack([texture] * 3, axis=2)
    labels = labels_of(frame, shape, objects)
    image[labels == 1] = (220, 40, 40)
    image[labels == 2] = (40, 70, 220)
    return image


THRESHOLD_JF = 0.9  # measured 1.0 with the flow tracker (rigid 1 px/frame motion on texture: an easy case)

SEQS = {"bear": ((24, 32), 6, 2), "cows": ((20, 30), 4, 1)}  # name: (shape, frames, objects)


def write_davis(root, rgb_annotation=False):
    for name, (shape, frames, objects) in SEQS.items():
        for k in range(frames):
            image = root / "JPEGImages" / "480p" / name / f"{k:05d}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame_image(k, shape, objects)).save(image, quality=95)
            png = root / "Annotations" / "480p" / name / f"{k:05d}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            picture = Image.fromarray(labels_of(k, shape, objects), mode="P")
            picture.putpalette(PALETTE)
            (picture.convert("RGB") if rgb_annotation else picture).save(png)
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "val.txt").write_text("bear\ncows\n")
    (sets / "one.txt").write_text("cows\n")
    return root


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    return write_davis(tmp_path_factory.mktemp("DAVIS"))


def read(bag):
    reader = open_bag(bag)
    topics: dict[str, list] = {}
    for connection, timestamp, raw in reader.messages():
        topics.setdefault(connection.topic, []).append((timestamp, reader.deserialize(raw, connection.msgtype)))
    reader.close()
    return topics


def test_sequences_become_sessions_seeded_by_mask_prompts(davis, tmp_path):
    bag, frames, instructions = convert("davis", davis, tmp_path / "bag", split="val")
    assert (frames, instructions) == (10, 3)  # bear: object 1 at frame 0, object 2 at frame 2; cows: object 1
    topics = read(bag)
    assert len(topics["/camera/image"]) == 10
    assert [m.data for _, m in topics["/reset_session"]] == ["bear", "cows"]
    seeds = [parse_instruction(m.data) for _, m in topics["/instruction"]]
    assert [s.session for s in seeds] == ["bear", "bear", "cows"]
    images = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec: m for _, m in topics["/camera/image"]}
    # The prompt reasoner reads each seed's mask back exactly as the annotation draws it.
    expected = [(0, 1, (24, 32), 2), (2, 2, (24, 32), 2), (0, 1, (20, 30), 1)]
    for seed, (frame, label, shape, objects) in zip(seeds, expected, strict=True):
        image = image_to_rgb(images[seed.stamp_ns])
        assert image.shape[:2] == shape
        (target,) = PromptReasoner().reason(image, seed.text, MemoryView(seed.session, (), ())).targets
        assert target.label == f"object {label}"
        assert np.array_equal(target.prompt.mask, labels_of(frame, shape, objects) == label)
    # Every reset comes after its sequence's last frame and before the next sequence's first.
    stamps = sorted(images)
    assert stamps[5] < topics["/reset_session"][0][0] < stamps[6]


def test_ground_truth_is_every_inner_annotated_frame(davis, tmp_path):
    bag, _, _ = convert("davis", davis, tmp_path / "bag")
    records, frames = read_ground_truth(bag / FILE_NAME)
    assert [r.session for r in records] == ["bear", "bear", "cows"]
    bear = [f for f in frames if f.session == "bear"]
    assert len(bear) == 5  # frames 0..4 of 0..5: the DAVIS toolkit leaves the last out (and the seed frame)
    assert [[o.object_id for o in f.objects] for f in bear] == [[1], [1], [1, 2], [1, 2], [1, 2]]
    assert [f.void is not None for f in bear] == [False, False, True, True, True]  # the 255 pixel from frame 2
    assert decode_rle(bear[2].void).sum() == 1 and decode_rle(bear[2].void)[14, 20]
    for k, frame in enumerate(bear):
        for obj in frame.objects:
            assert np.array_equal(decode_rle(obj.mask), labels_of(k, (24, 32), 2) == obj.object_id)
    assert len([f for f in frames if f.session == "cows"]) == 3


def test_split_limit_and_cli(davis, tmp_path, capsys):
    _, frames, instructions = convert("davis", davis, tmp_path / "one", split="one")
    assert (frames, instructions) == (4, 1)
    _, frames, _ = convert("davis", davis, tmp_path / "limited", limit=1)
    assert frames == 6
    assert main(["convert", "davis", str(davis), "--out", str(tmp_path / "cli"), "--split", "val"]) == 0
    assert "10 images, 3 instructions" in capsys.readouterr().out


def test_bad_folders_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="no JPEGImages/ folder"):
        convert("davis", tmp_path, tmp_path / "bag")
    rgb = write_davis(tmp_path / "rgb", rgb_annotation=True)
    with pytest.raises(ValueError, match="DAVIS annotations are palette PNGs"):
        convert("davis", rgb, tmp_path / "bag")
    assert not (tmp_path / "bag").exists()  # nothing half-written left behind
    with pytest.raises(ValueError, match="ImageSets"):
        convert("davis", rgb, tmp_path / "bag", split="test-dev")
    assert main(["convert", "davis", str(rgb), "--out", str(tmp_path / "bag2")]) != 0
    assert "palette PNGs" in capsys.readouterr().err


def test_replay_pairs_every_seed_with_its_ground_truth(davis, tmp_path):
    pytest.importorskip("torch", reason="the torch extra is not installed")
    from reasonseg_ros.config import load_config
    from reasonseg_ros.eval.replay import ReplayOptions, replay

    bag, _, _ = convert("davis", davis, tmp_path / "bag")
    config = load_config(
        None, {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True, "reasoner.backend": "oracle"}
    )
    run = replay(bag, config, tmp_path / "out", ReplayOptions(progress=False))
    assert run.run["mismatches"] == [] and run.run["rounds_ok"] + run.run["rounds_failed"] == 3
    assert json.loads(json.dumps(run.metrics))["samples"] == 3


def test_davis_bag_tracked_from_its_mask_seeds(davis, tmp_path):
    """End to end where the engine tracks: mask seeds (no SAM decode), the flow tracker, J&F per object."""
    pytest.importorskip("torch", reason="the torch extra is not installed")
    pytest.importorskip("cv2", reason="the flow tracker needs OpenCV")
    from reasonseg_ros.config import load_config
    from reasonseg_ros.engine import Engine
    from reasonseg_ros.eval.replay import ReplayOptions, replay

    if not hasattr(Engine, "track_newest"):
        pytest.skip("this engine has no tracking")
    bag, _, _ = convert("davis", davis, tmp_path / "bag")
    config = load_config(
        None,
        {
            "segmenter.model_type": "vit_tiny",
            "segmenter.random_weights": True,
            "reasoner.backend": "prompt",
            "tracking.backend": "flow",
        },
    )
    run = replay(bag, config, tmp_path / "out", ReplayOptions(progress=False, export_masks=tmp_path / "pngs"))
    assert run.run["mismatches"] == [] and run.run["rounds_ok"] == 3
    tracking = run.metrics["tracking"]
    # DAVIS result PNGs: every frame of every sequence; the seed frame is the annotation itself.
    assert tracking["exported_pngs"] == 10
    assert np.array_equal(np.asarray(Image.open(tmp_path / "pngs" / "bear" / "00000.png")), labels_of(0, (24, 32), 2))
    assert set(tracking["per_object"]) == {"bear/1", "bear/2", "cows/1"}
    assert tracking["per_object"]["bear/1"]["frames"] == 4 and tracking["per_object"]["bear/2"]["frames"] == 2
    assert tracking["J&F"] >= THRESHOLD_JF
