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

"""NodeCore's worker thread, lifecycle and shutdown with a stand-in engine (no model, no ROS)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from helpers import wait_for
from ros_doubles import RclpyRuleLogger

from reasonseg_ros.config import Config
from reasonseg_ros.messages import round_from_json
from reasonseg_ros.ros.node_core import NodeCore, Outputs
from reasonseg_ros.ros.runtime import PublishGate, log_at
from reasonseg_ros.types import RoundResult

rosbags_types = pytest.importorskip("reasonseg_ros.messages.rosbags_types")
pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")


class StandInEngine:
    """What NodeCore calls on an engine; every round succeeds with no object."""

    def __init__(self, config: Config | None = None, block: threading.Event | None = None) -> None:
        self.config = config or Config()
        self.block = block
        self.encoder_runs = 0
        self.segmenter = self.reasoner = SimpleNamespace(name="stand-in")
        self.tracker, self.tracking_errors = None, 0  # tracking off
        self.frames = []
        self.handled = []

    def submit_frame(self, frame):
        self.frames.append(frame)

    def reset(self, session=None):
        return 0

    def handle(self, instruction):
        if self.block is not None:
            self.block.wait(10.0)
        self.handled.append(instruction.text)
        return RoundResult(instruction.session, instruction.text, timings_ms={"total": 1.0})


@pytest.fixture(scope="module")
def ts():
    return rosbags_types.typestore()


def text(ts, data):
    return ts.types["std_msgs/msg/String"](data=data)


def test_worker_survives_a_publisher_that_raises_and_reports_it(ts):
    published = []
    calls = {"n": 0}

    def flaky_publish(msg):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("InvalidHandle: publisher destroyed")
        published.append(msg)

    logger = RclpyRuleLogger()
    core = NodeCore(StandInEngine(), ts.types, Outputs(result=flaky_publish), log=lambda lv, t: log_at(logger, lv, t))
    core.start_worker(poll_s=0.01)
    try:
        core.on_instruction(text(ts, "first"))
        assert wait_for(lambda: core.counters["worker_errors"] == 1)
        core.on_instruction(text(ts, "second"))
        assert wait_for(lambda: len(published) == 1)
        assert core.worker_alive is True
        assert round_from_json(published[0].data)["instruction"] == "second"
        assert "InvalidHandle" in core.status()["last_error"]
        assert core.status()["worker_errors"] == "1" and core.status()["worker_alive"] == "true"
        assert ("error", "worker: RuntimeError: InvalidHandle: publisher destroyed (the worker goes on)") in (
            logger.records
        )
    finally:
        assert core.stop_worker(timeout_s=5.0)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_is_an_error_in_diagnostics(ts):
    core = NodeCore(StandInEngine(), ts.types, Outputs())

    def die(timeout=None):
        raise SystemExit("worker killed")  # not an Exception: the guard lets it through, as it should

    core.process_next = die
    core.start_worker(poll_s=0.01)
    assert wait_for(lambda: core.worker_alive is False)
    level, message = core.health()
    assert level == 2 and "worker thread stopped" in message
    status = core.diagnostics(0, "/reasonseg").status[0]
    assert status.level == ts.types["diagnostic_msgs/msg/DiagnosticStatus"].ERROR
    assert {kv.key: kv.value for kv in status.values}["worker_alive"] == "false"


def test_replay_without_a_worker_reports_no_worker_state(ts):
    core = NodeCore(StandInEngine(), ts.types, Outputs())
    assert core.worker_alive is None and core.status()["worker_alive"] == "n/a"


def test_publish_gate_drops_after_close_and_waits_for_a_publish_in_progress():
    gate = PublishGate()
    inside, release, out = threading.Event(), threading.Event(), []

    def slow(msg):
        inside.set()
        release.wait(5.0)
        out.append(msg)

    publish = gate.wrap(slow)
    thread = threading.Thread(target=publish, args=("a",))
    thread.start()
    assert inside.wait(5.0)
    closer = threading.Thread(target=gate.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # close waits for the publish in progress
    release.set()
    thread.join(5.0)
    closer.join(5.0)
    publish("b")
    assert out == ["a"] and gate.dropped == 1


def results(published):
    return [round_from_json(m.data) for m in published]


def test_lifecycle_loading_then_active_then_inactive_then_cleaned_up(ts):
    published, logger = [], RclpyRuleLogger()
    core = NodeCore(
        None, ts.types, Outputs(result=published.append), Config().node, log=lambda lv, t: log_at(logger, lv, t)
    )
    assert core.state == "unconfigured" and core.health()[0] == 1
    core.on_instruction(text(ts, "too early"))
    assert results(published)[-1]["error"]["kind"] == "not_ready"

    release, engine = threading.Event(), StandInEngine()

    def load():
        release.wait(10.0)
        return engine

    loader = threading.Thread(target=core.configure, args=(load,))
    loader.start()
    assert wait_for(lambda: core.state == "loading")
    assert core.health() == (1, "loading the models")
    diagnostics = core.diagnostics(0, "/reasonseg").status[0]
    assert diagnostics.message == "loading the models"
    assert {kv.key: kv.value for kv in diagnostics.values}["state"] == "loading"
    core.on_instruction(text(ts, "while loading"))
    assert "still loading" in results(published)[-1]["error"]["message"]
    release.set()
    loader.join(10.0)
    assert core.state == "inactive" and core.engine is engine

    core.on_image(image(ts))
    assert engine.frames == [] and core.counters["frames_ignored"] == 1
    assert core.activate() == (True, "active")
    core.start_worker(poll_s=0.01)
    try:
        core.on_image(image(ts))
        core.on_instruction(text(ts, "now"))
        assert wait_for(lambda: engine.handled == ["now"])
        assert len(engine.frames) == 1

        core.deactivate()
        core.on_instruction(text(ts, "while inactive"))
        assert "inactive" in results(published)[-1]["error"]["message"]
        assert core.engine is engine  # models and memory kept
        core.activate()
        core.on_instruction(text(ts, "again"))
        assert wait_for(lambda: engine.handled == ["now", "again"])
        assert core.cleanup(timeout_s=5.0)[0]
        assert core.engine is None and core.reset(None)[0] is False
    finally:
        core.stop_worker()


def test_a_failed_load_is_an_error_state_not_an_exception(ts):
    logger = RclpyRuleLogger()
    core = NodeCore(None, ts.types, Outputs(), Config().node, log=lambda lv, t: log_at(logger, lv, t))

    def load():
        raise FileNotFoundError("sam_vit_b_01ec64.pth not found")

    ok, message = core.configure(load)
    assert not ok and core.state == "failed" and "sam_vit_b" in message
    assert core.health() == (2, "loading the models failed: sam_vit_b_01ec64.pth not found")
    assert logger.records == [("error", "loading the models failed: sam_vit_b_01ec64.pth not found")]


def test_wait_idle_returns_when_the_queue_drains(ts):
    block = threading.Event()
    core = NodeCore(StandInEngine(block=block), ts.types, Outputs())
    core.start_worker(poll_s=0.01)
    try:
        core.on_instruction(text(ts, "slow"))
        assert not core.wait_idle(0.1)
        block.set()
        assert core.wait_idle(5.0)
    finally:
        core.stop_worker()


def test_a_drain_waiting_on_a_stopped_worker_returns(ts):
    # ~/drain waits in an executor thread; rclpy's thread pool is joined when the process exits, so a
    # wait for instructions that a stopped worker will never run kept the node alive for up to an hour.
    block = threading.Event()
    core = NodeCore(StandInEngine(block=block), ts.types, Outputs())
    core.start_worker(poll_s=0.01)
    core.on_instruction(text(ts, "running"))
    core.on_instruction(text(ts, "waiting"))
    assert wait_for(lambda: core.queue_depth == 1)
    answers = []
    drain = threading.Thread(target=lambda: answers.append(core.wait_idle(3600.0)), daemon=True)
    drain.start()
    try:
        assert not core.stop_worker(timeout_s=0.05)  # the running round is still blocked
        drain.join(10.0)
        assert answers == [False] and not drain.is_alive()
    finally:
        block.set()


def image(ts):
    import numpy as np

    return ts.types["sensor_msgs/msg/Image"](
        header=ts.types["std_msgs/msg/Header"](
            stamp=ts.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="cam"
        ),
        height=2,
        width=2,
        encoding="rgb8",
        is_bigendian=0,
        step=6,
        data=np.zeros(12, np.uint8),
    )


def test_compressed_images_reach_the_engine_and_corrupt_ones_give_an_error_round(ts):
    cv2 = pytest.importorskip("cv2", reason="OpenCV (the cv extra) is not installed")
    import numpy as np

    published, engine = [], StandInEngine()
    core = NodeCore(engine, ts.types, Outputs(result=published.append), publish_image_errors=True)
    rgb = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    png = cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()

    def compressed(data, sec):
        return ts.types["sensor_msgs/msg/CompressedImage"](
            header=ts.types["std_msgs/msg/Header"](
                stamp=ts.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=5), frame_id="cam"
            ),
            format="png",
            data=np.frombuffer(data, np.uint8).copy(),
        )

    core.on_image(compressed(png, 1))
    assert len(engine.frames) == 1 and (engine.frames[0].image == rgb).all()
    core.on_image(compressed(png[:50], 2))
    (error,) = results(published)
    assert error["error"]["kind"] == "image"
    assert error["error"]["message"].startswith("image skipped (frame 'cam' at 2.000000005 s): compressed image")
    assert core.counters["frames_rejected"] == 1 and len(engine.frames) == 1
    core.on_image(compressed(png[:50], 3))
    assert len(published) == 1  # the same problem again: counted, not published at camera rate


def test_bag_replay_counts_refused_images_without_error_results(ts):
    published = []
    core = NodeCore(StandInEngine(), ts.types, Outputs(result=published.append))
    core.on_image(image(ts).__class__(**{**image(ts).__dict__, "encoding": "32FC1"}))
    assert core.counters["frames_rejected"] == 1 and published == []
