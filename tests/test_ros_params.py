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

"""Parameters built from the config, checked with rclpy's typing and range rules (issue 14, defects 3 and 4)."""

import math
from pathlib import Path

import pytest
from ros_doubles import (
    INT64_MAX,
    INT64_MIN,
    FakeDescriptor,
    FakeRange,
    InvalidParameterTypeException,
    InvalidParameterValueException,
    RclpyRuleParameters,
    floating_range_ok,
    parameter_type,
)

from reasonseg_ros.config import Config, flat_fields, load_config
from reasonseg_ros.errors import ConfigError
from reasonseg_ros.ros.params import (
    DYNAMIC,
    ParameterRules,
    check_value,
    descriptor_fields,
    from_parameter,
    parameter_specs,
    with_changes,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


def fake_descriptor(spec):
    fields = descriptor_fields(spec)
    return FakeDescriptor(
        type=fields["type"],
        description=fields["description"],
        additional_constraints=fields["additional_constraints"],
        read_only=fields["read_only"],
        dynamic_typing=fields["dynamic_typing"],
        integer_range=[FakeRange(**r) for r in fields["integer_range"]],
        floating_point_range=[FakeRange(**r) for r in fields["floating_point_range"]],
    )


def declare_all(config, overrides=None):
    """What ReasonsegNode._declare_parameters does, on a double with rclpy's rules: (config, params, rules)."""
    specs = {s.name: s for s in parameter_specs(config)}
    params = RclpyRuleParameters(overrides)
    rules = ParameterRules(specs)
    params.callbacks.append(rules.on_set)  # registered before declaring, as the node does
    values = {
        name: from_parameter(spec, params.declare(name, spec.default, fake_descriptor(spec)))
        for name, spec in specs.items()
    }
    built = load_config(None, values)  # the node: load_config(config_file, values)
    rules.config = built
    return built, params, rules


def test_one_parameter_per_config_key_with_type_and_description():
    config = Config()
    specs = {s.name: s for s in parameter_specs(config)}
    assert set(specs) == set(flat_fields(config))
    assert specs["segmenter.model_type"].kind is str and specs["segmenter.model_type"].read_only
    assert specs["engine.frame_buffer_size"].kind is int
    assert specs["engine.frame_wait_s"].kind is float and not specs["engine.frame_wait_s"].read_only
    assert specs["node.publish_overlay"].kind is bool
    assert "newest frames kept" in specs["engine.frame_buffer_size"].description.lower()
    assert specs["node.image_qos_reliability"].choices == ("best_effort", "reliable")
    assert DYNAMIC <= set(specs)
    undocumented = [name for name, spec in specs.items() if not spec.description]
    assert undocumented == []


@pytest.mark.parametrize("path", [None, *CONFIGS], ids=lambda p: "defaults" if p is None else p.name)
def test_every_default_declares_under_rclpys_rules_and_round_trips(path):
    config = load_config(path)
    specs = parameter_specs(config)
    for spec in specs:
        descriptor = descriptor_fields(spec)
        # A static parameter's type is the ParameterType of its default (declare_parameters).
        if not descriptor["dynamic_typing"]:
            assert parameter_type(spec.default) == descriptor["type"], spec.name
        for r in descriptor["integer_range"]:
            assert all(type(r[k]) is int for k in ("from_value", "to_value", "step")), spec.name
            assert INT64_MIN <= r["from_value"] <= r["to_value"] <= INT64_MAX and r["step"] >= 0
        for r in descriptor["floating_point_range"]:
            assert all(type(r[k]) is float for k in ("from_value", "to_value", "step")), spec.name
            assert math.isfinite(r["from_value"]) and math.isfinite(r["to_value"])
    built, _, _ = declare_all(config)
    assert built == config


def test_an_integer_for_a_double_is_accepted_and_converted():
    config, params, _ = declare_all(Config(), {"engine.frame_wait_s": 2})
    assert config.engine.frame_wait_s == 2.0 and isinstance(config.engine.frame_wait_s, float)
    assert params.set("engine.frame_wait_s", 3) == (True, "")
    assert params.set("engine.frame_wait_s", "3") == (False, "engine.frame_wait_s must be a float, got str '3'")


def test_without_dynamic_typing_rclpy_refuses_the_integer():
    # What the node did before: the type fixed by the double default.
    spec = {s.name: s for s in parameter_specs(Config())}["engine.frame_wait_s"]
    descriptor = fake_descriptor(spec)
    descriptor.dynamic_typing = False
    with pytest.raises(InvalidParameterTypeException):
        RclpyRuleParameters({"engine.frame_wait_s": 2}).declare(spec.name, spec.default, descriptor)


def test_out_of_range_values_are_refused_at_start_and_when_set():
    with pytest.raises(InvalidParameterValueException, match="out of range"):
        declare_all(Config(), {"engine.max_instruction_bytes": 0})
    _, params, rules = declare_all(Config())
    ok, reason = params.set("engine.max_instruction_bytes", 0)
    assert not ok and "out of range" in reason
    assert params.values["engine.max_instruction_bytes"] == 65536
    assert rules.config.engine.max_instruction_bytes == 65536
    ok, _ = params.set("engine.max_instruction_bytes", 1000)
    assert ok and rules.config.engine.max_instruction_bytes == 1000


def test_an_open_lower_bound_is_enforced_by_the_node_not_by_rclpy():
    spec = {s.name: s for s in parameter_specs(Config())}["node.diagnostics_period_s"]
    fp = descriptor_fields(spec)["floating_point_range"][0]
    # rclpy's closed range accepts the bound itself ...
    assert floating_range_ok(0.0, FakeRange(**fp)) == (True, "")
    # ... and the node's check, the YAML config's rule, refuses it.
    assert check_value(spec, 0.0) == "node.diagnostics_period_s must be positive, got 0.0"
    with pytest.raises(InvalidParameterValueException, match="must be positive"):
        declare_all(Config(), {"node.diagnostics_period_s": 0.0})


def test_floating_point_range_tolerance_is_closed_by_the_config_rule():
    # FloatingPointRange bounds are compared with math.isclose(rel_tol=1e-6) in rclpy; the config's high is exact.
    spec = {s.name: s for s in parameter_specs(Config())}["reasoner.vlm.query_positive"]
    fp = FakeRange(**descriptor_fields(spec)["floating_point_range"][0])
    assert (fp.from_value, fp.to_value, fp.step) == (0.0, 1.0, 0.0)  # step 0: continuous
    assert floating_range_ok(1.0000005, fp)[0]
    assert not floating_range_ok(1.01, fp)[0]
    assert check_value(spec, 1.0000005) == "reasoner.vlm.query_positive must be at most 1, got 1.0000005"


def test_a_set_is_validated_like_the_yaml_config_including_cross_key_rules():
    config = Config()
    specs = {s.name: s for s in parameter_specs(config)}
    with pytest.raises(ConfigError, match="max_pixels"):
        with_changes(config, specs, {"reasoner.vlm.max_pixels": 10})
    with pytest.raises(ConfigError, match="one of best_effort, reliable"):
        with_changes(config, specs, {"node.image_qos_reliability": "sometimes"})
    assert check_value(specs["segmenter.encoder_backend"], "") is None  # the unset sentinel of an optional choice
    assert check_value(specs["segmenter.encoder_backend"], "cuda") is not None


def test_read_only_keys_are_refused_by_rclpy_before_the_callback():
    _, params, _ = declare_all(Config())
    ok, reason = params.set("segmenter.model_type", "vit_h")
    assert not ok and reason.startswith("Trying to set a read-only parameter")


@pytest.mark.parametrize("key", ["reasoner.seg_token.sasp.enabled", "reasoner.seg_token.segllm_memory"])
@pytest.mark.parametrize(("yaml_value", "expected"), [("true", True), ("false", False), (None, None)])
def test_an_optional_bool_from_a_config_file_survives_the_parameters(tmp_path, key, yaml_value, expected):
    section, leaf = key.rsplit(".", 1)
    text = "\n".join(f"{'  ' * i}{part}:" for i, part in enumerate(section.split(".")))
    depth = len(section.split("."))
    if yaml_value is not None:
        text += f"\n{'  ' * depth}{leaf}: {yaml_value}"
    else:
        text += f"\n{'  ' * depth}{leaf}: null"
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    config = load_config(path)
    assert _get(config, key) is expected
    built, _, _ = declare_all(config)
    assert _get(built, key) is expected


@pytest.mark.parametrize(("given", "expected"), [(True, True), ("true", True), ("FALSE", False), ("auto", None)])
def test_an_optional_bool_takes_a_bool_or_a_word_from_the_command_line(given, expected):
    # `-p x:=true` arrives as a bool (the value is parsed as YAML), so the string parameter takes bools too.
    built, _, _ = declare_all(Config(), {"reasoner.seg_token.sasp.enabled": given})
    assert built.reasoner.seg_token.sasp.enabled is expected


def test_an_optional_bool_refuses_other_words():
    with pytest.raises(InvalidParameterValueException, match="auto, true or false"):
        declare_all(Config(), {"reasoner.seg_token.sasp.enabled": "yes please"})


def test_optional_numbers_use_minus_one_and_keep_their_range_in_the_check():
    specs = {s.name: s for s in parameter_specs(Config())}
    checkpoint, tolerance = specs["segmenter.checkpoint"], specs["engine.stamp_tolerance_s"]
    assert checkpoint.default == "" and from_parameter(checkpoint, "") is None
    assert from_parameter(checkpoint, "/w/sam.pth") == "/w/sam.pth"
    assert tolerance.default == -1.0 and from_parameter(tolerance, -1.0) is None
    assert from_parameter(tolerance, 2) == 2.0 and isinstance(from_parameter(tolerance, 2), float)
    assert descriptor_fields(tolerance)["floating_point_range"] == []  # -1 lies outside [0, ...]
    assert check_value(tolerance, -0.5) == "engine.stamp_tolerance_s must not be negative, got -0.5"
    assert check_value(tolerance, -1.0) is None


def test_parameter_values_round_trip_into_a_valid_config():
    config = load_config(None, {"engine.stamp_tolerance_s": 0.1, "segmenter.checkpoint": "/x.pth"})
    specs = parameter_specs(config)
    overrides = {s.name: from_parameter(s, s.default) for s in specs}
    assert load_config(None, overrides) == config


def _get(config, dotted):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
