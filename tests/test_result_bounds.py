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

"""Nothing a client or a model sends grows a result without bound (issue 15).

And a refused frame is never answered on its neighbour, through the node as on the engine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import frame, scene, targets

from reasonseg_ros.errors import ModelOutputError
from reasonseg_ros.messages.result_json import round_to_json
from reasonseg_ros.types import Instruction, ReasonerOutput

MB = 1_000_000


class Chatty:
    """A reasoner whose answer, prompt and failure text are each a megabyte."""

    name = "chatty"

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def reason(self, image: np.ndarray, text: str, memory: object) -> ReasonerOutput:
        if self.fail:
            raise ModelOutputError("unreadable: " + "y" * MB, raw_output="z" * MB)
        return ReasonerOutput(reply="ok", raw_output="r" * MB, prompt="p" * MB)


def test_a_megabyte_instruction_is_refused_with_a_capped_echo(make_engine):
    engine = make_engine()
    engine.submit_frame(frame())
    result = engine.handle(Instruction("x" * MB))
    assert result.error_kind == "bad_input" and "over the limit" in result.error
    assert result.instruction.endswith(f"… truncated, {MB} bytes") and len(round_to_json(result)) < 10_000


@pytest.mark.parametrize("fail", [False, True])
def test_a_megabyte_model_answer_prompt_and_error_are_capped(make_engine, fail):
    engine = make_engine(reasoner=Chatty(fail))
    engine.submit_frame(frame())
    result = engine.handle(Instruction("the mug"))
    data = json.loads(round_to_json(result))
    assert len(round_to_json(result)) < 12_000
    assert data["raw_output"].endswith(f"… truncated, {MB} bytes")
    if fail:
        assert data["error"]["kind"] == "unreadable_output" and len(data["error"]["message"]) < 1100
    else:
        assert data["prompt"].endswith(f"… truncated, {MB} bytes")


def test_the_node_refuses_an_instruction_naming_a_refused_frame_and_counts_every_skip_reason(make_engine):
    rosbags_types = pytest.importorskip("reasonseg_ros.messages.rosbags_types")
    pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
    from reasonseg_ros.messages import numpy_to_image
    from reasonseg_ros.messages.result_json import round_from_json
    from reasonseg_ros.ros.node_core import NodeCore, Outputs

    ts = rosbags_types.typestore()
    published = []
    engine = make_engine()
    core = NodeCore(engine, ts.types, Outputs(result=published.append), engine.config.node)

    def image(stamp_ns: int, **change: object) -> object:
        header = ts.types["std_msgs/msg/Header"](
            stamp=ts.types["builtin_interfaces/msg/Time"](sec=0, nanosec=stamp_ns), frame_id="c"
        )
        msg = numpy_to_image(ts.types["sensor_msgs/msg/Image"], header, scene(48, 64), "rgb8")
        for key, value in change.items():
            setattr(msg, key, value)
        return msg

    period = 100_000_000
    core.on_image(image(0))
    core.on_image(image(period))
    core.on_image(image(2 * period, data=np.zeros(10, np.uint8)))  # truncated: refused
    core.on_image(image(3 * period, encoding="32FC1"))  # unsupported: refused
    core.on_image(image(4 * period, data=np.zeros(10, np.uint8)))
    core.on_image(image(5 * period))
    for stamp in (2 * period, period):
        text = json.dumps({"text": targets({"label": "a", "box": [5, 5, 30, 30]}), "stamp_ns": stamp})
        core.on_instruction(ts.types["std_msgs/msg/String"](data=text))
    while core.process_next():
        pass
    refused, answered = (round_from_json(m.data) for m in published)
    assert not refused["ok"] and refused["error"]["kind"] == "bad_input" and refused["frame"] is None
    assert refused["requested_stamp_ns"] == 2 * period
    assert answered["ok"] and answered["frame"]["stamp_ns"] == period and answered["frame_gap_ms"] == 0.0
    reasons = core.frame_skip_reasons
    assert sum(reasons.values()) == 3 and len(reasons) == 2
    assert any("32fc1" in r.lower() for r in reasons) and sorted(reasons.values()) == [1, 2], reasons
