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

"""Coordinate table, prompt and answer parsing of the VLM reasoners (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vlm_helpers import memory_of, remembered

from reasonseg_ros.errors import ModelOutputError
from reasonseg_ros.reasoner.vlm.answer import extract_json, read_answer
from reasonseg_ros.reasoner.vlm.coords import CONVENTIONS, CoordinateFrame, smart_resize
from reasonseg_ros.reasoner.vlm.prompt import PROMPT_VERSION, build_prompt, select_memory

EMPTY = memory_of()


def qwen25(height: int = 480, width: int = 640) -> CoordinateFrame:
    return CoordinateFrame("qwen2_5_vl", (height, width), smart_resize(height, width))


# --- coordinates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "bounds"), [((480, 640), (3136, 12845056)), ((1080, 1920), (3136, 1003520))])
def test_smart_resize_gives_multiples_of_28_within_the_pixel_bounds(size, bounds):
    height, width = smart_resize(*size, 28, *bounds)
    assert height % 28 == 0 and width % 28 == 0
    assert bounds[0] <= height * width <= bounds[1]
    assert abs(width / height - size[1] / size[0]) < 0.05


def test_smart_resize_matches_the_transformers_image_processor():
    transformers = pytest.importorskip("transformers")
    processor = transformers.Qwen2VLImageProcessor(min_pixels=3136, max_pixels=28 * 28 * 64)
    image = np.zeros((123, 457, 3), dtype=np.uint8)
    grid = processor(images=[image], return_tensors="np")["image_grid_thw"][0]
    assert smart_resize(123, 457, 28, 3136, 28 * 28 * 64) == (int(grid[1]) * 14, int(grid[2]) * 14)


@pytest.mark.parametrize(
    ("family", "model_xy", "pixel_xy"),
    [
        ("qwen3_vl", (500, 250), (320.0, 120.0)),
        ("relative_1", (0.5, 0.25), (320.0, 120.0)),
        ("absolute", (320, 120), (320.0, 120.0)),
    ],
)
def test_each_family_maps_to_original_pixels_and_back(family, model_xy, pixel_xy):
    frame = CoordinateFrame(family, (480, 640))
    assert frame.to_pixels(*model_xy) == pytest.approx(pixel_xy)
    assert frame.from_pixels(*pixel_xy) == pytest.approx(model_xy)


def test_qwen25_maps_through_the_resized_image():
    frame = CoordinateFrame("qwen2_5_vl", (480, 640), (476, 644))
    assert frame.to_pixels(644, 476) == pytest.approx((640.0, 480.0))
    assert frame.to_pixels(322, 238) == pytest.approx((320.0, 240.0))
    with pytest.raises(ValueError, match="resized"):
        CoordinateFrame("qwen2_5_vl", (480, 640))
    with pytest.raises(ValueError, match="unknown"):
        CoordinateFrame("florence", (480, 640))


def test_the_table_names_every_family_in_the_config():
    from typing import get_args, get_type_hints

    from reasonseg_ros.config import VlmConfig

    assert set(get_args(get_type_hints(VlmConfig)["family"])) == set(CONVENTIONS)


# --- extraction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '```json\n{"targets": [], "reply": "ok"}\n```\nI hope this helps.',
        'Sure! Here it is: {"targets": [], "reply": "ok"} Let me know.',
        "{'targets': [], 'reply': 'ok'}",
        "{'targets': [], 'reply': 'ok', 'extra': None, 'flag': true,}",
        '```\n{"targets": [], "reply": "ok"}\n```',
    ],
)
def test_extract_json_tolerates_fences_trailing_text_and_single_quotes(raw):
    data = extract_json(raw)
    assert data["targets"] == [] and data["reply"] == "ok"


def test_extract_json_skips_bracketed_prose_before_the_answer():
    assert extract_json('Objects [see below]: {"reply": "x"}') == {"reply": "x"}


def test_extract_json_refuses_text_without_json():
    with pytest.raises(ValueError):
        extract_json("I cannot see any mug in this picture.")


# --- validation ----------------------------------------------------------------------------------


def test_qwen25_native_answer_in_a_fence_gives_one_target_per_box():
    frame = qwen25()
    model_h, model_w = frame.model_size
    raw = (
        "```json\n[\n"
        f'  {{"bbox_2d": [0, 0, {model_w // 2}, {model_h // 2}], "label": "mug"}},\n'
        f'  {{"bbox_2d": [{model_w // 2}, {model_h // 2}, {model_w}, {model_h}], "label": "mug"}}\n'
        "]\n```"
    )
    out = read_answer(raw, frame, EMPTY, "all the mugs")
    assert [t.label for t in out.targets] == ["mug", "mug"]
    np.testing.assert_allclose(
        out.targets[0].prompt.box, [0, 0, 640 * (model_w // 2) / model_w, 480 * (model_h // 2) / model_h]
    )
    np.testing.assert_allclose(out.targets[1].prompt.box[2:], [640, 480])
    assert out.raw_output == raw and not out.rejections and not out.warnings


def test_qwen3_relative_answer_with_points_maps_to_pixels():
    frame = CoordinateFrame("qwen3_vl", (480, 640))
    raw = json.dumps(
        {
            "targets": [
                {
                    "label": "cup",
                    "box": [100, 200, 300, 600],
                    "points": [[200, 400]],
                    "negative_points": [[350, 400]],
                    "confidence": 0.8,
                }
            ],
            "rejections": [],
            "reply": "The cup.",
        }
    )
    out = read_answer(raw, frame, EMPTY, "the cup")
    target = out.targets[0]
    np.testing.assert_allclose(target.prompt.box, [64, 96, 192, 288])
    np.testing.assert_allclose(target.prompt.points, [[128, 192], [224, 192]])
    assert target.prompt.point_labels.tolist() == [1, 0]
    assert target.score == pytest.approx(0.8) and out.reply == "The cup."


def test_point_2d_alone_is_a_point_prompt():
    frame = CoordinateFrame("relative_1", (100, 200))
    out = read_answer('[{"point_2d": [0.5, 0.5], "label": "knob"}]', frame, EMPTY, "the knob")
    assert out.targets[0].prompt.box is None
    np.testing.assert_allclose(out.targets[0].prompt.points, [[100, 50]])


def test_boxes_are_clipped_and_bad_ones_dropped_with_warnings():
    frame = CoordinateFrame("absolute", (100, 200))
    raw = json.dumps(
        {
            "targets": [
                {"label": "wide", "box": [-10, 5, 250, 50]},
                {"label": "inverted", "box": [50, 50, 10, 10]},
                {"label": "flat", "box": [10, 20, 60, 20]},
                {"label": "outside", "box": [300, 300, 400, 400]},
                {"label": "words", "box": "left side"},
            ]
        }
    )
    out = read_answer(raw, frame, EMPTY, "things")
    assert [t.label for t in out.targets] == ["wide"] and not out.rejections
    dropped = read_answer('[{"label": "mug", "box": [9, 9, 1, 1]}]', frame, EMPTY, "the mug")
    assert [(r.phrase, r.reason) for r in dropped.rejections] == [
        ("the mug", "the model's targets had no usable box or point")
    ]
    np.testing.assert_allclose(out.targets[0].prompt.box, [0, 5, 200, 50])
    text = " ".join(out.warnings)
    for phrase in ("clipped", "inverted", "outside", "not [x1, y1, x2, y2]"):
        assert phrase in text
    assert sum("dropped" in w for w in out.warnings) >= 4


def test_points_outside_the_image_are_dropped_but_the_box_kept():
    frame = CoordinateFrame("absolute", (100, 200))
    raw = '{"targets": [{"label": "a", "box": [10, 10, 50, 50], "points": [[20, 20], [500, 20]]}]}'
    out = read_answer(raw, frame, EMPTY, "a")
    assert out.targets[0].prompt.points.tolist() == [[20, 20]]
    assert any("outside the image" in w for w in out.warnings)


def test_remembered_ids_resolve_and_unknown_ids_are_rejected():
    memory = memory_of(remembered(3, "mug", (10, 10, 40, 40), 0))
    frame = CoordinateFrame("absolute", (100, 200))
    raw = '{"targets": [{"object_id": 3}, {"label": "plate", "object_id": 9}], "reply": "the same mug"}'
    out = read_answer(raw, frame, memory, "that mug again and the plate")
    assert len(out.targets) == 1
    target = out.targets[0]
    assert (target.object_id, target.label) == (3, "mug")
    np.testing.assert_allclose(target.prompt.box, [10, 10, 40, 40])
    assert [(r.phrase, "9" in r.reason) for r in out.rejections] == [("plate", True)]
    assert any("object 9 is not remembered" in w for w in out.warnings)


def test_rejections_in_either_shape_and_an_empty_answer_rejects_the_instruction():
    frame = CoordinateFrame("absolute", (100, 200))
    out = read_answer(
        '{"targets": [], "rejections": ["the red cup", {"phrase": "the fork", "reason": "no fork"}]}',
        frame,
        EMPTY,
        "the red cup and the fork",
    )
    assert [(r.phrase, r.reason) for r in out.rejections] == [("the red cup", ""), ("the fork", "no fork")]
    nothing = read_answer('{"targets": [], "reply": "nothing there"}', frame, EMPTY, "the unicorn")
    assert [r.phrase for r in nothing.rejections] == ["the unicorn"] and nothing.reply == "nothing there"


def test_confidence_is_clipped_and_a_bad_one_warned():
    frame = CoordinateFrame("absolute", (100, 200))
    raw = '{"targets": [{"box": [1, 1, 9, 9], "confidence": 7}, {"box": [1, 1, 9, 9], "confidence": "high"}]}'
    out = read_answer(raw, frame, EMPTY, "x")
    assert [t.score for t in out.targets] == [1.0, 1.0]
    assert any("confidence 'high'" in w for w in out.warnings)


@pytest.mark.parametrize(
    "raw",
    ["I see a mug on the left.", '{"answer": "a mug"}', '{"targets": "the mug"}', ""],
)
def test_unreadable_answers_raise_with_the_raw_text(raw):
    with pytest.raises(ModelOutputError) as caught:
        read_answer(raw, CoordinateFrame("absolute", (100, 200)), EMPTY, "the mug")
    assert caught.value.raw_output == raw
    assert caught.value.kind == "unreadable_output"


def test_keep_raw_false_leaves_the_raw_text_out():
    out = read_answer('{"targets": []}', CoordinateFrame("absolute", (10, 10)), EMPTY, "x", keep_raw=False)
    assert out.raw_output is None


# --- prompt --------------------------------------------------------------------------------------


def test_prompt_names_version_schema_coordinates_and_memory_in_model_coordinates():
    memory = memory_of(remembered(1, "mug", (64, 96, 192, 288), 0), remembered(2, "plate", (0, 0, 64, 48), 1))
    frame = CoordinateFrame("qwen3_vl", (480, 640))
    prompt = build_prompt("the one left of it", memory, frame, memory_cap=10, point_mode="direct")
    assert '"targets"' in prompt.system and '"rejections"' in prompt.system and "0 to 1000" in prompt.system
    assert 'id 1: "mug", box [100, 200, 300, 600], round 0' in prompt.user
    assert prompt.user.index("id 2") < prompt.user.index("id 1")  # most recent first
    assert prompt.user.endswith("Instruction: the one left of it")
    assert prompt.listed_ids == (2, 1)
    assert PROMPT_VERSION.startswith("vlm-json-")


def test_qwen25_prompt_states_the_resized_size():
    frame = qwen25()
    prompt = build_prompt("x", EMPTY, frame, memory_cap=5, point_mode="query")
    height, width = frame.model_size
    assert f"{width} wide and {height} high" in prompt.system
    assert "Remembered objects: none." in prompt.user
    assert 'Leave "points"' in prompt.system


def test_memory_block_is_capped_most_recent_first():
    objects = [remembered(i, f"obj{i}", (0, 0, 10, 10), round_index=i // 2) for i in range(1, 51)]
    memory = memory_of(*objects)
    frame = CoordinateFrame("absolute", (100, 100))
    prompt = build_prompt("x", memory, frame, memory_cap=5, point_mode="direct")
    assert prompt.listed_ids == (50, 49, 48, 47, 46)
    assert "(45 older objects are not listed.)" in prompt.user
    lengths = [
        len(build_prompt("x", memory_of(*objects[:n]), frame, memory_cap=5, point_mode="direct").user) for n in (5, 50)
    ]
    assert lengths[1] - lengths[0] < 60  # only the "not listed" line grows


def test_a_re_segmented_object_counts_as_recent():
    memory = memory_of(remembered(1, "old but referred to", (0, 0, 5, 5), 7), remembered(2, "newer", (0, 0, 5, 5), 3))
    assert [o.object_id for o in select_memory(memory, 1)] == [1]


# --- configuration and packaging -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["vlm_local.yaml", "remote_vlm.yaml"])
def test_shipped_vlm_configs_load(name):
    from pathlib import Path

    from reasonseg_ros.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "config" / name)
    assert config.reasoner.backend in ("vlm", "remote")
    assert config.reasoner.vlm.model == "Qwen/Qwen2.5-VL-7B-Instruct" or config.reasoner.backend == "remote"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"reasoner.vlm.query_negative": 0.9}, "query_negative <= query_positive"),
        ({"reasoner.vlm.max_pixels": 10}, "below min_pixels"),
        ({"reasoner.remote.timeout_s": 0}, "timeout_s must be positive"),
        ({"reasoner.remote.max_in_flight": 0}, "max_in_flight must be at least 1"),
        ({"reasoner.vlm.family": "florence2"}, "must be one of"),
    ],
)
def test_bad_vlm_settings_are_config_errors(override, message):
    from reasonseg_ros.config import load_config
    from reasonseg_ros.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(None, override)


def test_vlm_modules_import_with_numpy_alone_and_the_factory_names_the_extra():
    import subprocess
    import sys
    from pathlib import Path

    script = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "tokenizers", "PIL"}:
            raise ImportError(f"blocked {name}")
sys.meta_path.insert(0, Block())
import reasonseg_ros.reasoner.vlm.remote, reasonseg_ros.reasoner.vlm.local, reasonseg_ros.reasoner.vlm.query
from reasonseg_ros.config import load_config
from reasonseg_ros.reasoner import create_reasoner
from reasonseg_ros.errors import MissingDependencyError
try:
    create_reasoner(load_config(None, {"reasoner.backend": "vlm"}).reasoner)
except MissingDependencyError as exc:
    print(exc)
print(create_reasoner(load_config(None, {"reasoner.backend": "remote"}).reasoner).name)
"""
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, check=False)
    assert run.returncode == 0, run.stderr
    assert "pip install 'reasonseg_ros[vlm]'" in run.stdout
    assert "remote Qwen/Qwen2.5-VL-7B-Instruct at http://127.0.0.1:8000" in run.stdout
