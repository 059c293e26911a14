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

"""The node's behaviour (rclpy-free) with rosbags' message classes, the tiny SAM and the prompt reasoner."""

import json
import threading

import numpy as np
import pytest
from helpers import scene, targets

from reasonseg_ros.masks import decode_rle, mask_to_box
from reasonseg_ros.messages import detections_to_boxes, image_to_numpy, round_from_json
from reasonseg_ros.ros.node_core import NodeCore, Outputs

rosbags_types = pytest.importorskip("reasonseg_ros.messages.rosbags_types")
pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
pytest.importorskip("torch", reason="the torch extra is not installed")

BOX = {"label": "mug", "box": [10, 10, 60, 40]}


@pytest.fixture(scope="module")
def ts():
    return rosbags_types.typestore()


class Sink:
    """Publish callables that keep what they were given."""

    def __init__(self, overlay_wanted=False):
        self.topics = {name: [] for name in ("masks", "detections", "result", "rejection", "overlay")}
        self.overlay_wanted = overlay_wanted

    def outputs(self):
        return Outputs(**{k: v.append for k, v in self.topics.items()}, overlay_wanted=lambda: self.overlay_wanted)

    def results(self):
        return [round_from_json(m.data) for m in self.topics["result"]]


def image_msg(ts, stamp_ns=0, height=48, width=64, seed=0, encoding="bgr8", **change):
    pixels = scene(height, width, seed)
    fields = {
        "header": ts.types["std_msgs/msg/Header"](
            stamp=ts.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
            frame_id="camera",
        ),
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * 3,
        "data": np.frombuffer(pixels.tobytes(), np.uint8).copy(),
    }
    fields.update(change)
    return ts.types["sensor_msgs/msg/Image"](**fields)


def string(ts, text):
    return ts.types["std_msgs/msg/String"](data=text)


@pytest.fixture
def node(ts, make_engine):
    def build(overrides=None, overlay_wanted=False):
        sink = Sink(overlay_wanted)
        engine = make_engine(overrides)
        core = NodeCore(engine, ts.types, sink.outputs(), engine.config.node, now_ns=lambda: 10**9)
        return core, sink

    return build


def test_normal_round_publishes_masks_detections_and_result(ts, node):
    core, sink = node()
    core.on_image(image_msg(ts, stamp_ns=5))
    core.on_instruction(string(ts, targets(BOX, {"label": "dot", "points": [[50, 20]]})))
    assert core.queue_depth == 1 and sink.results() == []  # the callback only queues
    assert core.process_next() is True and core.process_next() is False

    (result,) = sink.results()
    assert result["ok"] and [o["label"] for o in result["objects"]] == ["mug", "dot"]
    (masks,) = sink.topics["masks"]
    assert masks.encoding == "mono16" and masks.header.stamp.nanosec == 5 and masks.header.frame_id == "camera"
    labels = image_to_numpy(masks)
    assert set(np.unique(labels)) <= {0, 1, 2} and labels.shape == (48, 64)
    (detections,) = sink.topics["detections"]
    assert [(d[0], d[1]) for d in detections_to_boxes(detections)] == [("1", "mug"), ("2", "dot")]
    assert sink.topics["rejection"] == [] and sink.topics["overlay"] == []
    for name, msg in (("sensor_msgs/msg/Image", masks), ("vision_msgs/msg/Detection2DArray", detections)):
        ts.deserialize_cdr(ts.serialize_cdr(msg, name), name)


def test_overlay_only_while_subscribed(ts, node):
    core, sink = node(overlay_wanted=True)
    core.on_image(image_msg(ts))
    core.on_instruction(string(ts, targets(BOX)))
    core.process_next()
    (overlay,) = sink.topics["overlay"]
    assert overlay.encoding == "rgb8" and (overlay.height, overlay.width) == (48, 64)
    sink.overlay_wanted = False
    core.on_instruction(string(ts, targets(BOX)))
    core.process_next()
    assert len(sink.topics["overlay"]) == 1 and len(sink.topics["masks"]) == 2


def test_frame_chosen_by_the_envelope_stamp(ts, node):
    core, sink = node()
    for i in range(3):
        core.on_image(image_msg(ts, stamp_ns=i * 100_000_000, seed=i))
    envelope = {"text": targets(BOX), "stamp": {"sec": 0, "nanosec": 110_000_000}, "session": "kitchen"}
    core.on_instruction(string(ts, json.dumps(envelope)))
    core.process_next()
    (result,) = sink.results()
    assert result["frame"]["stamp_ns"] == 100_000_000 and result["session"] == "kitchen"
    assert sink.topics["masks"][0].header.stamp.nanosec == 100_000_000


def test_multi_target_and_rejection_round(ts, node):
    core, sink = node()
    core.on_image(image_msg(ts))
    text = targets(
        BOX, {"label": "plate", "box": [30, 5, 63, 47]}, rejections=[{"phrase": "red cup", "reason": "absent"}]
    )
    core.on_instruction(string(ts, text))
    core.process_next()
    (result,) = sink.results()
    assert len(result["objects"]) == 2 and result["rejections"] == [{"phrase": "red cup", "reason": "absent"}]
    assert [m.data for m in sink.topics["rejection"]] == ['No "red cup" found: absent.']


def test_reset_clears_memory(ts, node):
    core, sink = node()
    core.on_image(image_msg(ts))
    core.on_instruction(string(ts, targets(BOX)))
    core.process_next()
    assert core.reset(None) == (True, "cleared all sessions (1 with memory)")
    core.on_instruction(string(ts, targets({"object_id": 1})))
    core.process_next()
    assert "not in the memory" in sink.results()[-1]["error"]["message"]


def test_reset_session_clears_only_that_session(ts, node):
    core, sink = node()
    core.on_image(image_msg(ts))
    for session in ("kitchen", "hall"):
        core.on_instruction(string(ts, json.dumps({"text": targets(BOX), "session": session})))
        core.process_next()
    core.on_reset_session(string(ts, " kitchen "))
    for session in ("kitchen", "hall"):
        core.on_instruction(string(ts, json.dumps({"text": targets({"object_id": 1}), "session": session})))
        core.process_next()
    kitchen, hall = sink.results()[-2:]
    assert "not in the memory of session 'kitchen'" in kitchen["error"]["message"]
    assert hall["error"] is None and hall["objects"][0]["id"] == 1


def test_full_queue_drops_the_oldest_with_an_error_result(ts, node):
    core, sink = node({"node.instruction_queue_size": 2})
    core.on_image(image_msg(ts))
    for i in range(5):
        core.on_instruction(string(ts, targets({**BOX, "label": f"t{i}"})))
    assert core.queue_depth == 2
    dropped = sink.results()
    assert [r["error"]["kind"] for r in dropped] == ["dropped"] * 3
    assert [json.loads(r["instruction"])["targets"][0]["label"] for r in dropped] == ["t0", "t1", "t2"]
    assert "node.instruction_queue_size is 2" in dropped[0]["error"]["message"]
    while core.process_next():
        pass
    done = sink.results()[3:]
    assert [r["objects"][0]["label"] for r in done] == ["t3", "t4"]
    assert core.counters["instructions_dropped"] == 3 and core.counters["rounds_ok"] == 2


def test_bad_images_and_instructions_are_reported_and_later_rounds_succeed(ts, node):
    logs = []
    core, sink = node()
    core._log = lambda level, text: logs.append((level, text))
    core.on_image(image_msg(ts, step=10))
    core.on_image(image_msg(ts, encoding="16UC1"))
    core.on_image(image_msg(ts, data=np.zeros(0, np.uint8)))
    assert core.counters["frames_rejected"] == 3 and core.counters["frames_received"] == 0
    assert any("step 10 is smaller" in text for _, text in logs)
    core.on_instruction(string(ts, '{"text": 5}'))  # a malformed envelope: answered at once
    core.on_instruction(string(ts, targets(BOX)))  # no frame yet
    core.process_next()
    errors = sink.results()
    assert errors[0]["error"]["kind"] == "bad_input" and "'text' must be a string" in errors[0]["error"]["message"]
    assert "no camera frame received yet" in errors[1]["error"]["message"]
    core.on_image(image_msg(ts))
    core.on_instruction(string(ts, ""))
    core.on_instruction(string(ts, targets(BOX)))
    core.process_next()
    core.process_next()
    assert [r["ok"] for r in sink.results()[2:]] == [False, True]
    status = core.status()
    assert status["frames_rejected"] == "3" and status["rounds_ok"] == "1" and "round_latency_ms_p50" in status


def test_diagnostics_message(ts, node):
    core, _ = node()
    array = core.diagnostics(5, "/reasonseg")
    (status,) = array.status
    assert status.level == ts.types["diagnostic_msgs/msg/DiagnosticStatus"].WARN
    assert status.message == "no camera frame received yet"
    keys = {kv.key for kv in status.values}
    assert {"segmenter", "queue_depth", "frames_received", "instructions_dropped"} <= keys
    name = "diagnostic_msgs/msg/DiagnosticArray"
    ts.deserialize_cdr(ts.serialize_cdr(array, name), name)
    core.on_image(image_msg(ts))
    assert core.diagnostics(6, "/reasonseg").status[0].level == ts.types["diagnostic_msgs/msg/DiagnosticStatus"].OK


def test_flood_stays_bounded_and_answers_every_instruction(ts, node):
    """100 Hz images and 10 Hz instructions for a simulated 60 s, the model keeping up with every other one."""
    # every instruction names the same box: re-identification off, so that each makes an object
    limits = {"memory.max_rounds": 20, "memory.max_objects": 30, "memory.reidentify_iou": None}
    core, sink = node({**limits, "node.instruction_queue_size": 4})
    engine = core.engine
    image = image_msg(ts)
    sent = 0
    for tick in range(6000):
        image.header.stamp.sec, image.header.stamp.nanosec = divmod(tick * 10_000_000, 10**9)
        core.on_image(image)
        if tick % 10 == 0:
            core.on_instruction(string(ts, targets({**BOX, "label": f"i{sent}"})))
            sent += 1
        if tick % 20 == 0:
            core.process_next()
        assert core.queue_depth <= 4
    while core.process_next():
        pass
    results = sink.results()
    assert len(results) == sent == 600
    labels = sorted(json.loads(r["instruction"])["targets"][0]["label"] for r in results)
    assert labels == sorted(f"i{i}" for i in range(600))  # each instruction answered exactly once
    assert all(r["ok"] or r["error"]["kind"] == "dropped" for r in results)
    assert core.counters["instructions_dropped"] > 0
    assert len(engine._frames) <= engine.config.engine.frame_buffer_size
    assert len(engine._embeddings) <= engine.config.engine.embedding_cache_size
    view = engine.memory.view("default")
    assert len(view.rounds) == 20 and len(view.objects) == 30


# -- tracking (issue 13) ---------------------------------------------------------------------------


class TrackSink(Sink):
    def __init__(self):
        super().__init__()
        self.topics.update(tracks_masks=[], tracks_detections=[])
        self.published = threading.Event()

    def outputs(self):
        outputs = super().outputs()
        outputs.tracks_masks = self.topics["tracks_masks"].append

        def detections(msg):
            self.topics["tracks_detections"].append(msg)
            self.published.set()

        outputs.tracks_detections = detections
        return outputs


@pytest.fixture
def tracking_node(ts, make_engine):
    from tracking_doubles import ShiftTracker

    def build(overrides=None):
        sink = TrackSink()
        tracker = ShiftTracker(velocity=(20, 10))
        engine = make_engine(overrides, tracker=tracker)
        logs = []
        core = NodeCore(
            engine, ts.types, sink.outputs(), engine.config.node, now_ns=lambda: 10**9, log=lambda *m: logs.append(m)
        )
        return core, sink, tracker, logs

    return build


def segment(ts, core, text, session=None):
    core.on_instruction(string(ts, json.dumps({"text": text, "session": session}) if session else text))
    assert core.process_next()


def test_track_once_publishes_every_object_where_it_is_now(ts, tracking_node):
    from tracking_doubles import shift

    core, sink, _, _ = tracking_node()
    core.on_image(image_msg(ts, stamp_ns=0))
    segment(ts, core, targets(BOX))
    segment(ts, core, targets({"label": "plate", "box": [5, 5, 20, 20]}), session="kitchen")
    (mug,) = sink.results()[0]["objects"]
    assert core.track_once() is None  # no newer frame yet
    core.on_image(image_msg(ts, stamp_ns=100_000_000, seed=1))
    step = core.track_once()
    assert step is not None and step.stamp_ns == 100_000_000
    (labels_msg,) = sink.topics["tracks_masks"]
    assert labels_msg.encoding == "mono16" and labels_msg.header.stamp.nanosec == 100_000_000
    assert labels_msg.header.frame_id == "camera"
    expected = np.where(shift(decode_rle(mug["mask"]), 2, 1), 1, 0)  # moved by 0.1 s × (20, 10) px/s
    np.testing.assert_array_equal(image_to_numpy(labels_msg), expected)  # the kitchen's object 1 is not drawn
    (detections,) = sink.topics["tracks_detections"]
    boxes = detections_to_boxes(detections)
    assert [(d[0], d[1], round(d[2], 6)) for d in boxes] == [("1", "mug", 0.8), ("kitchen/1", "plate", 0.8)]
    assert boxes[0][3] == mask_to_box(shift(decode_rle(mug["mask"]), 2, 1))
    for name, msg in (("sensor_msgs/msg/Image", labels_msg), ("vision_msgs/msg/Detection2DArray", detections)):
        ts.deserialize_cdr(ts.serialize_cdr(msg, name), name)


def test_a_failed_tracking_step_publishes_nothing_and_warns_in_diagnostics(ts, tracking_node):
    core, sink, tracker, logs = tracking_node({"tracking.rate_hz": 1e9})  # a step due on every call
    core.on_image(image_msg(ts, stamp_ns=0))
    segment(ts, core, targets(BOX))
    tracker.fail = True
    for k in (1, 2):
        core.on_image(image_msg(ts, stamp_ns=k * 100_000_000))
        assert core.track_once().error == "RuntimeError: tracker exploded"
    assert sink.topics["tracks_masks"] == [] and sink.topics["tracks_detections"] == []
    assert core.health() == (1, "tracking: tracking step failed: RuntimeError: tracker exploded")
    assert [m for m in logs if "tracker exploded" in m[1]] == [
        ("warn", "tracking step failed: RuntimeError: tracker exploded")
    ]
    status = core.status()
    assert status["tracking_errors"] == "2" and status["tracker_failures"] == "2"
    tracker.fail = False
    core.on_image(image_msg(ts, stamp_ns=300_000_000))
    assert core.track_once().error is None and len(sink.topics["tracks_masks"]) == 1
    assert core.health() == (0, "running")
    segment(ts, core, targets({"object_id": 1}))  # rounds were served all along
    assert sink.results()[-1]["ok"]


def test_tracking_diagnostics(ts, tracking_node):
    # two objects whatever the tiny SAM's masks overlap: re-identification off
    core, _, tracker, _ = tracking_node({"tracking.lost_after_s": 0.15, "memory.reidentify_iou": None})
    assert "tracker" in core.status() and core.status()["objects_tracked"] == "0"
    core.on_image(image_msg(ts, stamp_ns=0))
    segment(ts, core, targets(BOX))
    segment(ts, core, targets({"label": "plate", "box": [5, 5, 20, 20]}))
    tracker.hidden.add(2)
    for k in (1, 2, 3, 4, 5):
        core.on_image(image_msg(ts, stamp_ns=k * 100_000_000))
        assert core.track_once(force=True) is not None  # every frame stepped, whatever the schedule
    status = core.status()
    assert status["tracking_rate_hz"] == "10.0"  # one step per 0.1 s of camera time
    assert (status["objects_tracked"], status["objects_visible"], status["objects_lost"]) == ("2", "1", "1")
    assert status["objects_occluded"] == "0" and status["tracking_steps"] == "5"
    assert float(status["tracking_latency_ms_p50"]) >= 0 and "tracking_latency_ms_p95" in status
    keys = {kv.key for kv in core.diagnostics(5, "/reasonseg").status[0].values}
    assert {"tracking_rate_hz", "objects_tracked", "tracker_failures", "last_tracking_warning"} <= keys


def test_run_tracking_publishes_until_stopped(ts, tracking_node):
    core, sink, _, _ = tracking_node({"tracking.rate_hz": 200.0})
    core.on_image(image_msg(ts, stamp_ns=0))
    segment(ts, core, targets(BOX))
    stop = threading.Event()
    thread = threading.Thread(target=core.run_tracking, args=(stop,))
    thread.start()
    core.on_image(image_msg(ts, stamp_ns=100_000_000))
    assert sink.published.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert sink.topics["tracks_masks"][0].header.stamp.nanosec == 100_000_000


def test_run_tracking_returns_at_once_without_a_tracker(ts, node):
    core, _ = node()
    core.run_tracking(threading.Event())  # would block forever if it looped
    assert "tracker" not in core.status()


def test_node_publishes_a_moving_object_between_instructions_with_the_flow_backend(ts, make_engine):
    """The real flow tracker behind the node: seeded by a mask target, followed on frames with no instruction."""
    pytest.importorskip("cv2", reason="the cv extra is not installed")
    from tracking_doubles import moving_scene

    from reasonseg_ros.masks import encode_rle, mask_iou

    sink = TrackSink()
    engine = make_engine({"tracking.backend": "flow", "tracking.rate_hz": 1e9})  # a step due on every call
    core = NodeCore(engine, ts.types, sink.outputs(), engine.config.node)

    def frame_msg(k):
        image, _ = moving_scene(k)
        height, width = image.shape[:2]
        return image_msg(ts, k * 100_000_000, height, width, encoding="rgb8", data=image.reshape(-1).copy())

    core.on_image(frame_msg(0))
    segment(ts, core, json.dumps({"targets": [{"label": "square", "mask": encode_rle(moving_scene(0)[1])}]}))
    assert sink.results()[-1]["ok"], sink.results()[-1]["error"]
    for k in range(1, 6):
        core.on_image(frame_msg(k))
        assert core.track_once() is not None
        labels = image_to_numpy(sink.topics["tracks_masks"][-1])
        assert sink.topics["tracks_masks"][-1].header.stamp.nanosec == k * 100_000_000
        assert mask_iou(labels == 1, moving_scene(k)[1]) >= 0.95  # against the drawn square
    assert len(sink.results()) == 1  # no instruction since the first


def test_a_broken_logger_does_not_end_the_tracking_thread(ts, tracking_node):
    core, _, tracker, _ = tracking_node({"tracking.rate_hz": 1e9})  # a step due on every call
    core.on_image(image_msg(ts, stamp_ns=0))
    segment(ts, core, targets(BOX))
    tracker.fail = True
    stop, calls, escaped = threading.Event(), [], []

    def broken_log(level, text):
        calls.append(text)
        stop.set()  # one failing step is enough
        raise OSError("log sink gone")

    def run():
        try:
            core.run_tracking(stop)
        except Exception as exc:  # what would end the node's tracking thread
            escaped.append(exc)

    core._log = broken_log
    core.on_image(image_msg(ts, stamp_ns=100_000_000))
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and escaped == [] and calls
    assert core.tracking_counters["tracking_errors"] == 1


def test_a_reset_racing_a_cleanup_answers_not_ready(ts, node):
    core, _ = node()
    engine = core.engine

    class Cleaned(NodeCore):
        """The models are dropped (lifecycle cleanup) right after the reset looked at them."""

        @property
        def engine(self):
            value, self._engine = self._engine, None
            return value

        @engine.setter
        def engine(self, value):
            self._engine = value

    core.__class__ = Cleaned
    core._engine = engine
    assert core.reset(None) == (True, "cleared all sessions (0 with memory)")
    assert core.reset(None) == (False, "not ready: no models loaded (lifecycle node not configured)")
