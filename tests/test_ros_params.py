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

from reasonseg_ros.config import Config, flat_fields, load_config
from reasonseg_ros.ros.params import DYNAMIC, from_parameter, parameter_specs


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


def test_optional_keys_use_sentinels_both_ways():
    specs = {s.name: s for s in parameter_specs(Config())}
    checkpoint, tolerance = specs["segmenter.checkpoint"], specs["engine.stamp_tolerance_s"]
    assert checkpoint.default == "" and from_parameter(checkpoint, "") is None
    assert from_parameter(checkpoint, "/w/sam.pth") == "/w/sam.pth"
    assert tolerance.default == -1.0 and from_parameter(tolerance, -1.0) is None
    assert from_parameter(tolerance, 2) == 2.0 and isinstance(from_parameter(tolerance, 2), float)


def test_parameter_values_round_trip_into_a_valid_config():
    config = load_config(None, {"engine.stamp_tolerance_s": 0.1, "segmenter.checkpoint": "/x.pth"})
    specs = parameter_specs(config)
    overrides = {s.name: from_parameter(s, s.default) for s in specs}
    assert load_config(None, overrides) == config
