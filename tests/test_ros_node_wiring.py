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

"""``ros/node.py`` itself, run on stand-in rclpy modules that apply rclpy's rules (tests/fake_rclpy.py).

What the rclpy-gated tests check on a real ROS 2, checked here on every machine:
the logging path, parameter declaration and sets, start-up errors, shutdown
order, lifecycle wiring, QoS overrides, compressed images and tracking topics.
"""

import importlib
import inspect
import json
import re
import sys
import threading
import time
from types import SimpleNamespace

import fake_rclpy
import numpy as np
import pytest
from helpers import wait_for
from test_ros_worker import StandInEngine

import reasonseg_ros.ros
from reasonseg_ros.config import load_config

rosbags_types = pytest.importorskip("reasonseg_ros.messages.rosbags_types")
pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")


@pytest.fixture
def ros(monkeypatch):
    store = rosbags_types.typestore()
    fake_rclpy.install(monkeypatch, store)
    node_module = importlib.import_module("reasonseg_ros.ros.node")
    node_module._store = store
    yield node_module
    for node in list(fake_rclpy.NODES):
        if hasattr(node, "core") and not node.destroyed:
            node.destroy_node()
    # Forget the module built on the stand-ins, so that a real rclpy test later imports the real one.
    sys.modules.pop("reasonseg_ros.ros.node", None)
    if hasattr(reasonseg_ros.ros, "node"):
        delattr(reasonseg_ros.ros, "node")


def stand_in(node_module, monkeypatch, engine=None):
    engine = engine or StandInEngine()
    monkeypatch.setattr(node_module._Wiring, "_load_models", lambda self: engine)
    return engine


def string(ros, text):
    return ros._store.types["std_msgs/msg/String"](data=text)


def image(ros, encoding="rgb8"):
    t = ros._store.types
    header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="cam")
    return t["sensor_msgs/msg/Image"](
        header=header, height=2, width=2, encoding=encoding, is_bigendian=0, step=6, data=np.zeros(12, np.uint8)
    )


def test_warning_then_info_then_error_through_the_real_node(ros, monkeypatch):
    # The node's logger applies rclpy's call-site rule: a warning, then an info, then an error, then a
    # warning again, all through ReasonsegNode._log, as a bad image and reset_session did when the node crashed.
    stand_in(ros, monkeypatch)
    node = ros.ReasonsegNode()
    assert node.bring_up()
    node.subscription("image").callback(image(ros, "32FC1"))  # warn: image skipped
    node.subscription("reset_session").callback(string(ros, "default"))  # info: cleared
    node.core._log("error", "an error")
    node.subscription("image").callback(image(ros, "16UC1"))  # warn again, from the same call site
    severities = [severity for severity, _ in node.get_logger().records]
    assert severities[-4:] == ["warning", "info", "error", "warning"]
    errors = [json.loads(m.data)["error"] for m in node.publishers["result"].sent]
    assert [e["kind"] for e in errors] == ["image", "image"]  # the node publishes refused images as results
    assert errors[0]["message"].startswith("image skipped (frame 'cam' at 1.000000000 s)")


def test_an_integer_for_a_double_and_true_for_an_optional_bool(ros, monkeypatch, tmp_path):
    stand_in(ros, monkeypatch)
    path = tmp_path / "c.yaml"
    path.write_text("reasoner:\n  seg_token:\n    sasp:\n      enabled: true\n")
    fake_rclpy.OVERRIDES.update({"config_file": str(path), "engine.frame_wait_s": 2})
    node = ros.ReasonsegNode()
    assert node.config.engine.frame_wait_s == 2.0
    assert node.config.reasoner.seg_token.sasp.enabled is True
    assert load_config(path).reasoner.seg_token.sasp.enabled is True


def test_parameter_sets_through_the_node(ros, monkeypatch):
    stand_in(ros, monkeypatch)
    node = ros.ReasonsegNode()
    refused, read_only, accepted = node.set_parameters(
        [
            fake_rclpy.Parameter("engine.max_instruction_bytes", 0),
            fake_rclpy.Parameter("segmenter.model_type", "vit_h"),
            fake_rclpy.Parameter("engine.frame_wait_s", 3),
        ]
    )
    assert not refused.successful and "out of range" in refused.reason
    assert not read_only.successful
    assert accepted.successful and node.config.engine.frame_wait_s == 3.0
    assert node.describe_parameter("engine.max_instruction_bytes").integer_range[0].from_value == 1


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"engine.max_instruction_bytes": 0}, "reasonseg_node: parameter error: engine.max_instruction_bytes"),
        ({"engine.frame_wait_s": "soon"}, "reasonseg_node: parameter error: engine.frame_wait_s"),
        ({"node.diagnostics_period_s": 0.0}, "reasonseg_node: parameter error: node.diagnostics_period_s"),
        ({"config_file": "/no/such.yaml"}, "reasonseg_node: cannot read config /no/such.yaml"),
        (
            {"qos_overrides./image.subscription.reliability": "sometimes"},
            "reasonseg_node: parameter error: Unexpected QoS override for policy `reliability`",
        ),
    ],
)
def test_a_start_up_error_is_one_line_and_exit_code_1(ros, monkeypatch, capsys, overrides, expected):
    stand_in(ros, monkeypatch)
    fake_rclpy.OVERRIDES.update(overrides)
    assert ros.main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected), err


def test_qos_overrides_reach_the_subscriptions(ros, monkeypatch):
    stand_in(ros, monkeypatch)
    fake_rclpy.OVERRIDES.update({"qos_overrides./image.subscription.reliability": "reliable"})
    node = ros.ReasonsegNode()
    assert node.subscription("image").qos.reliability is fake_rclpy.ReliabilityPolicy.RELIABLE


def test_a_model_that_cannot_load_exits_with_1(ros, monkeypatch):
    def fail(self):
        raise FileNotFoundError("sam_vit_b_01ec64.pth not found")

    monkeypatch.setattr(ros._Wiring, "_load_models", fail)
    assert ros.main([]) == 1
    node = [n for n in fake_rclpy.NODES if hasattr(n, "core")][-1]
    assert node.get_logger().records[-1] == ("fatal", "loading the models failed: sam_vit_b_01ec64.pth not found")
    assert node.destroyed


def test_shutdown_stops_the_worker_before_the_node_is_destroyed(ros, monkeypatch):
    block = threading.Event()
    engine = stand_in(ros, monkeypatch, StandInEngine(block=block))
    node = ros.ReasonsegNode()
    assert node.bring_up()
    node.subscription("instruction").callback(string(ros, "a long round"))
    assert wait_for(lambda: not node.core.idle)
    closer = threading.Thread(target=node.destroy_node)
    closer.start()
    time.sleep(0.2)
    block.set()  # the round finishes while the node is shutting down
    closer.join(10.0)
    assert node.destroyed and engine.handled == ["a long round"]
    assert node.core.worker_alive is False and node.core.counters["worker_errors"] == 0  # no InvalidHandle


def test_a_round_that_outlives_the_shutdown_never_publishes_after_destroy(ros, monkeypatch):
    block = threading.Event()
    stand_in(ros, monkeypatch, StandInEngine(block=block))
    node = ros.ReasonsegNode()
    assert node.bring_up()
    node.subscription("instruction").callback(string(ros, "stuck"))
    assert wait_for(lambda: not node.core.idle)
    node.close(timeout_s=0.2)  # gives up waiting; the gate closes
    node.destroy_node()
    block.set()
    assert wait_for(lambda: node.core.worker_alive is False)
    assert node.core.counters["worker_errors"] == 0 and node._gate.dropped == 1


def test_main_shuts_the_executor_down_then_the_threads_then_the_node(ros, monkeypatch):
    stand_in(ros, monkeypatch)
    events = []

    def record(owner, name, label):
        real = getattr(owner, name)

        def wrapped(self, *args, **kwargs):
            events.append(label)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)

    record(fake_rclpy.MultiThreadedExecutor, "shutdown", "executor")
    record(ros._Wiring, "close", "threads")
    record(fake_rclpy.Node, "destroy_node", "node")
    done = []
    runner = threading.Thread(target=lambda: done.append(ros.main([])))
    runner.start()
    assert wait_for(lambda: any(getattr(n, "core", None) and n.core.state == "active" for n in fake_rclpy.NODES))
    node = [n for n in fake_rclpy.NODES if hasattr(n, "core")][-1]
    assert node.core.worker_alive
    fake_rclpy.EXECUTORS[-1]._stop.set()  # as Ctrl-C ends the spin
    runner.join(10.0)
    assert done == [0]
    assert events == ["node", "executor", "threads", "node"]  # the probe node, then the shutdown order
    assert node.core.worker_alive is False


def test_lifecycle_node_wiring(ros, monkeypatch):
    engine = stand_in(ros, monkeypatch)
    fake_rclpy.OVERRIDES.update({"node.lifecycle": True})
    assert ros.wants_lifecycle()
    node = ros.ReasonsegLifecycleNode()
    assert node.subscriptions[0].topic == "reset_session" and len(node.subscriptions) == 1
    assert node.core.state == "unconfigured"
    success = fake_rclpy.TransitionCallbackReturn.SUCCESS
    assert node.trigger_configure() == success and node.core.engine is engine
    assert node.trigger_activate() == success
    topics = {s.topic: s for s in node.subscriptions}
    assert {"image", "camera_info", "instruction"} <= set(topics)
    assert topics["image"].qos_overriding_options is not None and topics["instruction"].qos_overriding_options
    assert node.trigger_deactivate() == success
    assert [s.topic for s in node.subscriptions] == ["reset_session"] and node.core.engine is engine
    assert node.core.state == "inactive"  # the behaviour class takes no input either, not only the node
    assert node.trigger_cleanup() == success and node.core.engine is None


def test_the_executor_still_sees_every_subscription(ros, monkeypatch):
    # rclpy's Node keeps its subscriptions in ``_subscriptions``; a node attribute of that name hid the
    # TimeSource's /clock (sim time never advanced) and reset_session from the executor.
    stand_in(ros, monkeypatch)
    fake_rclpy.OVERRIDES.update({"use_sim_time": True})
    node = ros.ReasonsegNode()
    topics = [s.topic for s in node.subscriptions]
    assert sorted(topics) == ["/clock", "camera_info", "image", "instruction", "reset_session"]
    lifecycle = ros.ReasonsegLifecycleNode()
    success = fake_rclpy.TransitionCallbackReturn.SUCCESS
    assert lifecycle.trigger_configure() == success and lifecycle.trigger_activate() == success
    assert lifecycle.trigger_deactivate() == success and lifecycle.trigger_activate() == success
    assert sorted(s.topic for s in lifecycle.subscriptions) == sorted(topics)


# Private names rclpy's Node and LifecycleNodeMixin use (rclpy/node.py, rclpy/lifecycle/node.py; Humble and Jazzy).
RCLPY_PRIVATE_NAMES = set(
    """_allow_undeclared_parameters _apply_descriptor _apply_descriptor_and_set _apply_descriptors
    _apply_floating_point_range _apply_integer_range _call_post_set_parameters_callback
    _call_pre_set_parameters_callback _callbacks _check_undeclared_parameters _clients _clock _context
    _count_clients_or_servers _count_publishers_or_subscribers _declare_parameter_common _default_callback_group
    _descriptors _enabled _get_info_by_topic _guards _logger _logger_service _managed_entities
    _on_set_parameters_callbacks _parameter_event_publisher _parameter_overrides _parameter_service _parameters
    _parameters_callbacks _post_set_parameters_callbacks _pre_set_parameters_callbacks _publishers _rate_group
    _service_change_state _service_get_available_states _service_get_available_transitions _service_get_state
    _service_get_transition_graph _services _set_parameters _set_parameters_atomically
    _set_parameters_atomically_common _state_machine _subscriptions _time_source _timers
    _type_description_service _validate_qos_or_depth_parameter _validate_topic_or_service_name
    _wake_executor""".split()
)


def test_no_node_attribute_or_method_shadows_rclpy(ros):
    source = inspect.getsource(ros)
    assigned = set(re.findall(r"self\.(_\w+)\s*(?::[^=]+)?=[^=]", source))
    assert "_gate" in assigned  # the pattern finds the node's own attributes
    methods = {n for cls in (ros._Wiring, ros.ReasonsegNode, ros.ReasonsegLifecycleNode) for n in vars(cls)}
    assert not (assigned | methods) & RCLPY_PRIVATE_NAMES


def test_a_failed_activate_leaves_no_input_subscription(ros, monkeypatch):
    stand_in(ros, monkeypatch)
    fake_rclpy.OVERRIDES.update({"qos_overrides./instruction.subscription.history": "keep_some"})
    node = ros.ReasonsegLifecycleNode()
    assert node.trigger_configure() == fake_rclpy.TransitionCallbackReturn.SUCCESS
    for _ in range(2):
        assert node.trigger_activate() == fake_rclpy.TransitionCallbackReturn.FAILURE
        assert [s.topic for s in node.subscriptions] == ["reset_session"] and node.core.state == "inactive"


def test_lifecycle_from_the_config_file(ros, monkeypatch, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("node:\n  lifecycle: true\n")
    fake_rclpy.OVERRIDES.update({"config_file": str(path)})
    assert ros.wants_lifecycle()
    fake_rclpy.OVERRIDES.clear()
    assert not ros.wants_lifecycle()


def test_a_failed_configure_is_a_failed_transition(ros, monkeypatch):
    def fail(self):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(ros._Wiring, "_load_models", fail)
    node = ros.ReasonsegLifecycleNode()
    assert node.trigger_configure() == fake_rclpy.TransitionCallbackReturn.FAILURE
    assert node.core.health() == (2, "loading the models failed: CUDA out of memory")


def test_compressed_transport_and_tracking_topics(ros, monkeypatch):
    stand_in(ros, monkeypatch)
    fake_rclpy.OVERRIDES.update({"node.image_transport": "compressed", "tracking.backend": "flow"})
    started = threading.Event()

    def run_tracking(self, stop):
        started.set()
        stop.wait()

    monkeypatch.setattr(ros.NodeCore, "run_tracking", run_tracking)
    node = ros.ReasonsegNode()
    subscription = node.subscription("/image/compressed")
    assert subscription.msg_type is ros._store.types["sensor_msgs/msg/CompressedImage"]
    assert subscription.qos_overriding_options is not None
    assert {"tracks/masks", "tracks/detections"} <= set(node.publishers)
    assert node.bring_up() and started.wait(5.0)
    node.destroy_node()
    assert node._tracking is None


def test_a_tracking_thread_that_outlives_its_stop_does_not_come_back(ros, monkeypatch):
    # deactivate gives a slow tracking step 5 s; activate must not revive that thread by clearing its stop event.
    stand_in(ros, monkeypatch)
    fake_rclpy.OVERRIDES.update({"tracking.backend": "flow"})
    release, threads = threading.Event(), []

    def run_tracking(self, stop):
        threads.append(threading.current_thread())
        release.wait(10.0)  # a long step that ignores the stop request
        while not stop.is_set():
            stop.wait(0.01)

    monkeypatch.setattr(ros.NodeCore, "run_tracking", run_tracking)
    node = ros.ReasonsegNode()
    node._start_tracking()
    node._stop_tracking(timeout_s=0.05)
    node._start_tracking()
    release.set()
    threads[0].join(5.0)
    assert not threads[0].is_alive() and threads[1].is_alive()
    node.destroy_node()
    assert not threads[1].is_alive()


def test_diagnostics_run_on_a_steady_clock_and_say_loading(ros, monkeypatch):
    release = threading.Event()

    def slow(self):
        release.wait(10.0)
        return StandInEngine()

    monkeypatch.setattr(ros._Wiring, "_load_models", slow)
    node = ros.ReasonsegNode()
    ((_, publish_diagnostics, clock),) = node.timers
    assert clock.clock_type == fake_rclpy.ClockType.STEADY_TIME
    loader = threading.Thread(target=node.bring_up)
    loader.start()
    assert wait_for(lambda: node.core.state == "loading")
    publish_diagnostics()
    status = node.publishers["/diagnostics"].sent[-1].status[0]
    assert status.message == "loading the models"
    release.set()
    loader.join(10.0)
    assert node.core.state == "active"


def test_a_reset_that_fails_is_answered_not_raised(ros, monkeypatch):
    # Service callbacks are not wrapped by rclpy: an exception would end spin() and the node.
    engine = stand_in(ros, monkeypatch)

    def broken_reset(session=None):
        raise RuntimeError("CUDA error: an illegal memory access")

    engine.reset = broken_reset
    node = ros.ReasonsegNode()
    assert node.bring_up()
    response = node.services["reset"](None, SimpleNamespace(success=True, message=""))
    assert not response.success
    assert response.message == "reset failed: RuntimeError: CUDA error: an illegal memory access"
    assert node.get_logger().records[-1] == ("error", response.message)


def test_an_unexpected_exception_in_a_callback_is_logged_not_raised(ros, monkeypatch):
    # rclpy's executor re-raises a callback's exception out of spin(), which would end the node.
    def boom(self, msg):
        raise RuntimeError("boom")

    monkeypatch.setattr(ros.NodeCore, "on_image", boom)
    stand_in(ros, monkeypatch)
    node = ros.ReasonsegNode()
    node.subscription("image").callback(image(ros))
    node.subscription("image").callback(image(ros))
    assert node.get_logger().records.count(("error", "image callback failed: RuntimeError: boom")) == 1
