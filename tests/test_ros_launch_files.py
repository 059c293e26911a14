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

"""What the launch files build, on stand-in launch modules (issue 14, defect 6)."""

import importlib.util
from pathlib import Path

import fake_launch
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(monkeypatch, name):
    fake_launch.install(monkeypatch)
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), ROOT / "launch" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay_values(tmp_path, **change):
    bag = tmp_path / "in_bag"
    bag.mkdir(exist_ok=True)
    values = {
        "bag": str(bag),
        "output_bag": str(tmp_path / "out_bag"),
        "rate": "1.0",
        "config_file": "/c.yaml",
        "namespace": "",
        "image_topic": "/camera/image",
        "instruction_topic": "/instruction",
        "storage": "",
        "record_delay_s": "2.0",
    }
    values.update(change)
    return fake_launch.LaunchContext(values)


def handler(entities, cls, **match):
    """The entities of the RegisterEventHandler whose handler is ``cls`` with ``match`` keywords."""
    for entity in entities:
        if type(entity).__name__ == "RegisterEventHandler":
            (inner,) = entity.args
            if type(inner).__name__ == cls and all(inner.kwargs.get(k) == v for k, v in match.items()):
                return inner.kwargs.get("entities", inner.kwargs.get("on_exit"))
    raise AssertionError(f"no {cls} handler with {match}")


def test_replay_refuses_an_existing_output_folder_before_starting_anything(monkeypatch, tmp_path):
    module = load(monkeypatch, "replay.launch.py")
    (tmp_path / "out_bag").mkdir()
    with pytest.raises(RuntimeError, match="out_bag' already exists"):
        module._replay(replay_values(tmp_path))
    with pytest.raises(RuntimeError, match="does not exist"):
        module._replay(replay_values(tmp_path, bag=str(tmp_path / "missing"), output_bag=str(tmp_path / "new")))


def test_replay_plays_on_sim_time_only_once_the_node_is_active_and_ends_after_draining(monkeypatch, tmp_path):
    module = load(monkeypatch, "replay.launch.py")
    entities = module._replay(replay_values(tmp_path))
    (node,) = [e for e in entities if type(e).__name__ == "LifecycleNode"]
    assert node.kwargs["parameters"] == [{"config_file": "/c.yaml", "node.lifecycle": True, "use_sim_time": True}]
    assert ("image", "/camera/image") in node.kwargs["remappings"]
    # configure first (the last entity), activate once inactive
    assert type(entities[-1]).__name__ == "EmitEvent"
    assert entities[-1].kwargs["event"].kwargs["transition_id"] == 1
    (activate,) = handler(entities, "OnStateTransition", start_state="configuring", goal_state="inactive")
    assert activate.kwargs["event"].kwargs["transition_id"] == 3
    # the recorder and (after the delay) the player start only when the node is active
    on_active = handler(entities, "OnStateTransition", goal_state="active")
    record = next(e for e in on_active if type(e).__name__ == "ExecuteProcess")
    timer = next(e for e in on_active if type(e).__name__ == "TimerAction")
    (play,) = timer.kwargs["actions"]
    assert record.kwargs["cmd"][:4] == ["ros2", "bag", "record", "--use-sim-time"]
    assert str(tmp_path / "out_bag") in record.kwargs["cmd"] and "/result" in record.kwargs["cmd"]
    assert (
        play.kwargs["cmd"][:4] == ["ros2", "bag", "play", str(tmp_path / "in_bag")] and "--clock" in play.kwargs["cmd"]
    )
    # the end of the bag drains the node, and the drain's end shuts the launch down
    after_play = handler(entities, "OnProcessExit", target_action=play)
    drain = next(e for e in after_play if type(e).__name__ == "ExecuteProcess")
    assert drain.kwargs["cmd"][:4] == ["ros2", "service", "call", "/reasonseg/drain"]
    (shutdown,) = handler(entities, "OnProcessExit", target_action=drain)
    assert type(shutdown.kwargs["event"]).__name__ == "Shutdown"
    # a node that cannot load its models ends the launch
    failed = handler(entities, "OnStateTransition", start_state="configuring", goal_state="unconfigured")
    assert any(type(e).__name__ == "EmitEvent" and type(e.kwargs["event"]).__name__ == "Shutdown" for e in failed)


def test_replay_namespace_and_storage(monkeypatch, tmp_path):
    module = load(monkeypatch, "replay.launch.py")
    entities = module._replay(replay_values(tmp_path, namespace="/robot1", storage="mcap"))
    on_active = handler(entities, "OnStateTransition", goal_state="active")
    record = next(e for e in on_active if type(e).__name__ == "ExecuteProcess")
    assert ["--storage", "mcap"] == record.kwargs["cmd"][6:8] and "/robot1/result" in record.kwargs["cmd"]
    play = next(e for e in on_active if type(e).__name__ == "TimerAction").kwargs["actions"][0]
    drain = next(
        e for e in handler(entities, "OnProcessExit", target_action=play) if type(e).__name__ == "ExecuteProcess"
    )
    assert drain.kwargs["cmd"][3] == "/robot1/reasonseg/drain"


@pytest.mark.parametrize(
    ("lifecycle", "autostart", "expected"),
    [
        ("false", "true", ["Node"]),
        ("true", "false", ["LifecycleNode"]),
        ("true", "true", ["LifecycleNode", "RegisterEventHandler", "EmitEvent"]),
    ],
)
def test_reasonseg_launch_plain_or_lifecycle(monkeypatch, lifecycle, autostart, expected):
    module = load(monkeypatch, "reasonseg.launch.py")
    context = fake_launch.LaunchContext(
        {"lifecycle": lifecycle, "autostart": autostart, "use_sim_time": "false", "params_file": "/qos.yaml"}
    )
    entities = module._node(context)
    assert [type(e).__name__ for e in entities] == expected
    assert entities[0].kwargs["parameters"][0]["node.lifecycle"] is (lifecycle == "true")
    assert entities[0].kwargs["parameters"][1] == "/qos.yaml"  # after config_file's values, so it wins
