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

from pathlib import Path

import pytest

from reasonseg_ros.config import Config, load_config
from reasonseg_ros.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_file(tmp_path):
    assert load_config() == Config()
    config = load_config(
        write(tmp_path, "segmenter:\n  model_type: vit_h\n  device: cuda\nengine:\n  frame_wait_s: 2\n")
    )
    assert config.segmenter.model_type == "vit_h" and config.segmenter.device == "cuda"
    assert config.engine.frame_wait_s == 2.0 and isinstance(config.engine.frame_wait_s, float)
    assert config.memory == Config().memory


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "segmenter:\n  modle_type: vit_h\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'segmenter\.modle_type'"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown key 'ros'"):
        load_config(write(tmp_path, "ros: {}\n"))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("engine:\n  frame_buffer_size: many\n", r"'engine\.frame_buffer_size' must be int"),
        ("engine:\n  frame_buffer_size: true\n", r"'engine\.frame_buffer_size' must be int"),
        ("segmenter:\n  random_weights: 1\n", r"'segmenter\.random_weights' must be bool"),
        ("segmenter:\n  checkpoint: 5\n", r"'segmenter\.checkpoint' must be str or null"),
        ("segmenter:\n  backend: caffe\n", r"'segmenter\.backend' must be one of 'torch'"),
        ("segmenter: 3\n", r"segmenter must be a mapping"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("memory:\n  max_rounds: 0\n", r"memory\.max_rounds must be at least 1"),
        ("engine:\n  frame_wait_s: -1\n", r"engine\.frame_wait_s must not be negative"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_values(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_overrides_and_missing_file(tmp_path):
    config = load_config(None, {"segmenter.model_type": "vit_tiny", "memory.max_rounds": 3})
    assert config.segmenter.model_type == "vit_tiny" and config.memory.max_rounds == 3
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_every_key_is_documented():
    import dataclasses
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    for section in dataclasses.fields(Config):
        assert f"## `{section.name}`" in docs
        for key in dataclasses.fields(section.default_factory()):
            assert f"| `{key.name}` |" in docs, f"{section.name}.{key.name} is not in docs/configuration.md"


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_map_to_parameters(path):
    from reasonseg_ros.ros.params import parameter_specs

    config = load_config(path)
    specs = {spec.name: spec for spec in parameter_specs(config)}
    assert specs["segmenter.backend"].default == config.segmenter.backend
    assert specs["reasoner.backend"].default == config.reasoner.backend
