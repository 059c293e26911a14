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

"""Bag replay with tracking, driven by a stand-in tracker (scoring rules: test_eval_tracking.py)."""

import dataclasses
import json
import time
from collections import Counter

import pytest

from reasonseg_ros.config import MemoryConfig, load_config
from reasonseg_ros.masks import decode_rle, mask_to_box
from reasonseg_ros.types import TrackedObject, TrackStep

pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("cv2", reason="tracking.backend flow (configured below) needs the cv extra")

from reasonseg_ros.engine import Engine
from reasonseg_ros.eval.bag_io import open_bag
from reasonseg_ros.eval.demo_bag import DIALOGUE, FRAME_PERIOD_NS, render, write_demo_bag
from reasonseg_ros.eval.replay import ReplayOptions, replay
from reasonseg_ros.eval.report import write_report

TINY = {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True, "reasoner.backend": "oracle"}
# Random-weight masks would re-identify one shape as another by chance (where the engine re-identifies);
# the stand-in tracker below maps ids to shapes from the dialogue, so keep every new target a new object.
if "reidentify_iou" in {f.name for f in dataclasses.fields(MemoryConfig)}:
    TINY["memory.reidentify_iou"] = None


class SceneTracker:
    """Stands in for ``Engine.track_newest``: reports each remembered object where the scene says it is.

    It knows which shape an engine id is from the dialogue (round text -> shapes, in order), not
    from the evaluation's own linking, and reads the shape's exact mask from the demo's renderer.
    ``frozen`` reports the mask stored when the object was segmented instead (a memory without
    tracking); ``lost`` reports every object lost.
    """

    def __init__(self, mode="truth"):
        self.mode = mode
        self.last = None

    def __call__(self, engine, force=False):
        if not engine._frames:
            return None
        now = time.perf_counter()
        if not force and self.last is not None and now - self.last < 1.0 / engine.config.tracking.rate_hz:
            return None
        self.last = now
        frame = engine._frames[-1].frame
        _, masks = render(frame.stamp_ns // FRAME_PERIOD_NS)
        objects = []
        for session in engine.memory.sessions():
            view = engine.memory.view(session)
            shape_of = {}
            for memory_round in view.rounds:
                turn = next(t for t in DIALOGUE if (t.session, t.text) == (session, memory_round.instruction))
                if len(turn.shapes) == len(memory_round.object_ids):
                    shape_of.update(zip(memory_round.object_ids, turn.shapes, strict=True))
            for obj in view.objects:
                mask = decode_rle(obj.rle) if self.mode == "frozen" else masks[shape_of[obj.object_id]]
                status = "lost" if self.mode == "lost" else "visible"
                shown = mask if status == "visible" else None
                objects.append(
                    TrackedObject(
                        session,
                        obj.object_id,
                        obj.label,
                        status,
                        1.0,
                        mask_to_box(mask) if shown is not None else None,
                        shown,
                    )
                )
        return TrackStep(frame.stamp_ns, frame.frame_id, frame.size, tuple(objects), latency_ms=1.0 + len(objects))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_bag(tmp_path_factory.mktemp("bags") / "demo", frames=35)


def run(demo, out, monkeypatch, mode="truth", replay_mode="deterministic", **overrides):
    tracker = SceneTracker(mode)
    monkeypatch.setattr(Engine, "track_newest", lambda self, force=False: tracker(self, force), raising=False)
    config = load_config(None, {**TINY, "tracking.backend": "flow", **overrides})
    return replay(demo, config, out, ReplayOptions(mode=replay_mode, rate=4.0, progress=False))


def test_replay_with_a_perfect_tracker_scores_one(demo, tmp_path, monkeypatch):
    tracking = run(demo, tmp_path, monkeypatch).metrics["tracking"]
    # demo session: square, circle, both circles (all four linked to 3 truth objects); other: the triangle.
    assert set(tracking["per_object"]) == {"demo/1", "demo/2", "demo/4", "other/3"}
    assert tracking["J"] == 1.0 and tracking["F"] == 1.0 and tracking["J&F"] == 1.0
    assert tracking["lost_while_visible"] == 0.0
    square = tracking["per_object"]["demo/1"]
    assert [t for t, _ in square["iou_over_time"]] == [f * FRAME_PERIOD_NS for f in range(6, 35)]  # after frame 5
    assert tracking["steps"] == 35 and tracking["mode"] == "deterministic"


def test_replay_with_lost_or_frozen_tracks_scores_less(demo, tmp_path, monkeypatch):
    lost = run(demo, tmp_path / "lost", monkeypatch, mode="lost").metrics["tracking"]
    assert lost["lost_while_visible"] == 1.0 and lost["J"] == 0.0
    frozen = run(demo, tmp_path / "frozen", monkeypatch, mode="frozen").metrics["tracking"]
    assert frozen["J&F"] < 0.5  # frozen (and random-weight) masks do not follow the moving shapes


def test_tracking_replay_is_deterministic_and_reported(demo, tmp_path, monkeypatch):
    first = run(demo, tmp_path / "a", monkeypatch, mode="frozen")
    second = run(demo, tmp_path / "b", monkeypatch, mode="frozen")
    strip = lambda m: {k: v for k, v in m.items() if k != "latency_ms"}  # noqa: E731 - latencies are wall time
    assert strip(first.metrics["tracking"]) == strip(second.metrics["tracking"])
    paths = write_report(first, tmp_path / "a")
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())["metrics"]["tracking"]
    assert {"J", "F", "J&F", "lost_while_visible", "latency_ms", "per_object", "steps"} <= set(saved)
    text = (tmp_path / "a" / "report.md").read_text()
    assert "## Tracking" in text and "| demo/1 |" in text
    assert any(p.name == "tracking_iou_over_time.png" for p in paths)


def test_realtime_replay_steps_as_the_robot_would(demo, tmp_path, monkeypatch):
    tracking = run(demo, tmp_path, monkeypatch, replay_mode="realtime", **{"tracking.rate_hz": 20.0}).metrics[
        "tracking"
    ]
    assert tracking["mode"] == "realtime" and tracking["steps"] >= 1
    assert tracking["objects"] >= 1 and 0.0 <= tracking["J"] <= 1.0
    # The worker and the tracking thread publish at once: every message lands on its own topic.
    reader = open_bag(tmp_path / "output_bag")
    counts = Counter(connection.topic for connection, _, _ in reader.messages())
    reader.close()
    assert counts["/result"] == len([t for t in DIALOGUE if t.frame < 35])
    if "/tracks/masks" in counts:  # published where the node core runs the tracking loop
        assert counts["/tracks/masks"] == counts["/tracks/detections"] == tracking["steps"]


def test_no_tracking_section_when_tracking_is_off(demo, tmp_path, monkeypatch):
    assert "tracking" not in run(demo, tmp_path, monkeypatch, **{"tracking.backend": "none"}).metrics


def test_demo_refers_back_to_the_square_after_it_moved():
    """The demo's round on frame 25 names the square segmented on frame 5: its stored box is stale there."""
    from reasonseg_ros.masks import box_iou

    (turn,) = [t for t in DIALOGUE if t.remembered]
    (first,) = [t for t in DIALOGUE if t.session == turn.session and t.shapes == turn.shapes and not t.remembered]
    then = mask_to_box(render(first.frame)[1][turn.shapes[0]])
    now = mask_to_box(render(turn.frame)[1][turn.shapes[0]])
    assert turn.frame - first.frame == 20
    assert box_iou(then, now) < 0.1
