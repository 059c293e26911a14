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

"""Every result pairs with its request by id: the envelope's ``id``, or one the node or replay assigns (issue 15)."""

from __future__ import annotations

import json
import time

import pytest
from helpers import scene, targets

from reasonseg_ros.config import load_config
from reasonseg_ros.errors import InputError
from reasonseg_ros.messages.result_json import MAX_ID_CHARS, parse_instruction, round_from_json

rosbags_types = pytest.importorskip("reasonseg_ros.messages.rosbags_types")
pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
pytest.importorskip("torch", reason="the torch extra is not installed")

from reasonseg_ros.eval.bag_io import BagWriter  # noqa: E402
from reasonseg_ros.messages import numpy_to_image  # noqa: E402
from reasonseg_ros.ros.node_core import NodeCore, Outputs  # noqa: E402

BOX = {"label": "mug", "box": [10, 10, 60, 40]}
PERIOD = 100_000_000


def test_the_envelope_takes_a_bounded_string_id():
    assert parse_instruction('{"text": "the mug", "id": "req-7"}').id == "req-7"
    assert parse_instruction('{"text": "the mug"}').id is None
    for bad in (5, "", "x" * (MAX_ID_CHARS + 1), ["a"]):
        with pytest.raises(InputError, match="'id' must be a non-empty string"):
            parse_instruction(json.dumps({"text": "the mug", "id": bad}))


@pytest.fixture(scope="module")
def ts():
    return rosbags_types.typestore()


def image(ts, stamp_ns):
    header = ts.types["std_msgs/msg/Header"](
        stamp=ts.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="c"
    )
    return numpy_to_image(ts.types["sensor_msgs/msg/Image"], header, scene(48, 64), "rgb8")


def test_ok_refused_and_dropped_results_all_echo_the_id(ts, make_engine):
    published = []
    engine = make_engine({"node.instruction_queue_size": 1})
    core = NodeCore(engine, ts.types, Outputs(result=published.append), engine.config.node)
    string = ts.types["std_msgs/msg/String"]
    core.on_image(image(ts, 0))
    core.on_instruction(string(data=json.dumps({"text": targets(BOX), "id": "a"})))
    core.on_instruction(string(data=json.dumps({"text": targets(BOX), "id": "b"})))  # drops "a"
    core.on_instruction(string(data=json.dumps({"text": targets(BOX), "id": "c", "stamp": "now"})))  # refused at once
    core.on_instruction(string(data=targets(BOX)))  # no envelope: an id is assigned; drops "b"
    huge = "x" * 1_000_000
    core.on_instruction(string(data=json.dumps({"text": huge, "id": "e", "colour": huge})))  # refused, not echoed
    while core.process_next():
        pass
    results = [round_from_json(m.data) for m in published]
    by_id = {r["instruction_id"]: r for r in results}
    assert by_id["a"]["error"]["kind"] == "dropped" and by_id["b"]["error"]["kind"] == "dropped"
    assert by_id["c"]["error"]["kind"] == "bad_input" and not by_id["c"]["id_assigned"]
    assert by_id["e"]["error"]["kind"] == "bad_input"
    assert len(published[-2].data) < 10_000  # neither the 1 MB text nor the 1 MB key comes back whole
    assigned = [r for r in results if r["id_assigned"]]
    assert len(assigned) == 1 and assigned[0]["ok"] and assigned[0]["instruction_id"].startswith("auto-")
    assert len(results) == 5 and len(by_id) == 5
    assert core.new_id() != core.new_id()


def test_realtime_replay_pairs_identical_texts_with_drops_by_id(tmp_path, monkeypatch):
    """Twelve identical texts at once while each round takes 40 ms: every result lands on its own instruction.

    Most are dropped. Each names a different frame, so the frame a result used (and the stamp it requested)
    tells which instruction it really answers.
    """
    from reasonseg_ros.eval.replay import ReplayOptions, replay
    from reasonseg_ros.reasoner.prompt import PromptReasoner

    reason = PromptReasoner.reason

    def slow(self, *args):
        time.sleep(0.04)
        return reason(self, *args)

    monkeypatch.setattr(PromptReasoner, "reason", slow)
    bag = tmp_path / "same_texts"
    named = [k * PERIOD for k in range(12)]
    with BagWriter(bag) as writer:
        ts_types = writer.types
        for k in range(20):
            header = ts_types["std_msgs/msg/Header"](
                stamp=ts_types["builtin_interfaces/msg/Time"](sec=0, nanosec=k * PERIOD), frame_id="c"
            )
            msg = numpy_to_image(ts_types["sensor_msgs/msg/Image"], header, scene(48, 64, seed=k), "rgb8")
            writer.write("/camera/image", "sensor_msgs/msg/Image", msg, k * PERIOD)
        # the first arrives alone, so the worker is busy with it while the others flood in
        when = [20 * PERIOD] + [23 * PERIOD + k * 1000 for k in range(1, 12)]
        for k, stamp in enumerate(named):
            envelope = {"text": targets(BOX), "stamp_ns": stamp}
            if k == 5:
                envelope["id"] = "client-5"
            writer.write(
                "/instruction",
                "std_msgs/msg/String",
                ts_types["std_msgs/msg/String"](data=json.dumps(envelope)),
                when[k],
            )
    config = load_config(
        None,
        {
            "segmenter.model_type": "vit_tiny",
            "segmenter.random_weights": True,
            "node.instruction_queue_size": 2,
            "engine.frame_buffer_size": 32,
        },
    )
    run = replay(bag, config, tmp_path / "out", ReplayOptions(mode="realtime", rate=10.0, progress=False))
    assert run.run["instructions_dropped"] >= 5 and run.run["mismatches"] == []
    assert sorted(run.results) == list(range(12))
    for index, result in run.results.items():
        assert result["requested_stamp_ns"] == named[index]
        assert result["instruction_id"] == ("client-5" if index == 5 else f"replay-{index}")
        assert result["id_assigned"] is (index != 5)
        if result["ok"]:
            assert result["frame"]["stamp_ns"] == named[index]
        else:
            assert result["error"]["kind"] == "dropped"
    assert any(r["ok"] for r in run.results.values())
