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

"""The replay report on a hand-built run: per-instruction rows, stage order, n, provenance, n/a rounds, ECDF."""

import numpy as np
import pytest

pytest.importorskip("pycocotools")

from reasonseg_ros.eval.metrics import Sample, summarize
from reasonseg_ros.eval.replay import ReplayRun, provenance
from reasonseg_ros.eval.report import _latency_ecdf, render_markdown
from reasonseg_ros.masks import encode_rle


def _mask(x1, x2):
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, x1:x2] = True
    return encode_rle(mask)


TIMINGS = {"total": 9.0, "memory": 0.1, "decode": 3.0, "reason": 1.0, "embed": 4.0, "validate": 0.01}


@pytest.fixture
def run():
    # instruction 0: IoU 1/3 by hand (columns 2-5 vs 4-7, six rows: 12 px shared, 36 in the union);
    # 1: nothing expected, nothing predicted; 2: an error; 3: no ground truth at all
    samples = [
        Sample([_mask(2, 6)], [_mask(4, 8)], 0, TIMINGS),
        Sample([], [], 1, {"total": 2.0, "reason": 1.0, "validate": 0.01}),
        Sample([], [_mask(0, 3)], 1, {}),
    ]
    results = {
        0: {"instruction": "the mug", "session": "default", "round": 0, "ok": True, "objects": [{"id": 1}]},
        1: {"instruction": "the fork", "session": "default", "round": 1, "ok": True, "objects": []},
        2: {
            "instruction": "bad | pipe",
            "session": "s2",
            "round": None,
            "ok": False,
            "objects": [],
            "error": {"kind": "bad_input", "message": "no noun phrase"},
        },
        3: {"instruction": "extra", "session": "s2", "round": 0, "ok": True, "objects": [{"id": 1}, {"id": 2}]},
    }
    info = {
        "bag": "b",
        "mode": "deterministic",
        "rate": 1.0,
        "topics": {"image": "/i", "instruction": "/t"},
        "ground_truth": "gt",
        "segmenter": "torch SAM vit_tiny (random weights)",
        "reasoner": "oracle",
        "random_weights": True,
        "checkpoint": None,
        "instructions": 4,
        "rounds_ok": 3,
        "rounds_failed": 1,
        "frames_received": 5,
        "frames_skipped": 0,
        "instructions_dropped": 0,
        "encoder_runs": 1,
        "wall_s": 1.0,
        "rounds_per_s": 4.0,
        "engine_overhead_ms": {},
        "frame_age_ms": {},
        "mismatches": [],
        "errors": [],
        "last_skip_reason": None,
        "provenance": provenance("config/demo_oracle.yaml", "reasonseg replay demo_bag"),
    }
    return ReplayRun(summarize(samples), info, results, samples, sample_indices=[0, 1, 2])


def test_per_instruction_table(run):
    text = render_markdown(run, [])
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ") and " / " in line}
    assert "| 0 | the mug | default / 0 | 0.333 | 1 / 1 |" in rows["| 0"]
    assert "n/a (no target, left empty) | 0 / 0" in rows["| 1"]
    assert "bad \\| pipe" in rows["| 2"] and "bad_input: no noun phrase" in rows["| 2"] and "| 0 / 1 |" in rows["| 2"]
    assert "n/a (not scored) | 2 / n/a" in rows["| 3"]


def test_stages_in_pipeline_order_with_n(run):
    text = render_markdown(run, [])
    speed = text.split("## Speed")[1].split("\n\n")[1].splitlines()[2:]
    assert [row.split(" | ")[0].lstrip("| ") for row in speed] == [
        "validate",
        "reason",
        "embed",
        "decode",
        "memory",
        "total",
    ]
    n = {row.split(" | ")[0].lstrip("| "): row.split(" | ")[1] for row in speed}
    assert n == {"validate": "2", "reason": "2", "embed": "1", "decode": "1", "memory": "1", "total": "2"}


def test_provenance_and_random_checkpoint(run):
    text = render_markdown(run, [])
    assert "| checkpoint | none (random weights) |" in text
    assert "| config | `config/demo_oracle.yaml` |" in text and "| command | `reasonseg replay demo_bag` |" in text
    assert "| package | reasonseg_ros " in text and " UTC on " in text
    run.run["random_weights"], run.run["checkpoint"] = False, "/w/sam_vit_b_01ec64.pth"
    assert "| checkpoint | `/w/sam_vit_b_01ec64.pth` |" in render_markdown(run, [])


def test_a_round_without_targets_is_na_not_a_zero_bar(run):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reasonseg_ros.eval.report import _ciou_bars

    assert run.metrics["per_round"]["1"]["cIoU"] == 0.0  # round 1 has a target (instruction 2): a real zero
    figure, axis = plt.subplots()
    _ciou_bars(axis, ["0", "1", "2"], [0.5, 0.0, None])
    assert [t.get_text() for t in axis.texts] == ["n/a"] and axis.texts[0].get_position()[0] == 2
    plt.close(figure)


def test_latency_ecdf_is_a_step_plot_of_four_stages(run):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.results[0]["timings_ms"] = TIMINGS
    run.results[1]["timings_ms"] = {"total": 2.0, "reason": 1.0, "validate": 0.01}
    figure = _latency_ecdf(run, plt, "")
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["reason (n=2)", "embed (n=1)", "decode (n=1)", "total (n=2)"]
    assert all(line.get_drawstyle() == "steps-post" for line in lines)
    np.testing.assert_allclose(lines[3].get_xdata(), [2.0, 2.0, 9.0])  # totals of 2 and 9 ms: F = 0, 1/2, 1
    np.testing.assert_allclose(lines[3].get_ydata(), [0.0, 0.5, 1.0])
    plt.close(figure)


def test_the_instruction_table_is_capped(run, monkeypatch):
    import reasonseg_ros.eval.report as report

    monkeypatch.setattr(report, "MAX_INSTRUCTION_ROWS", 2)
    text = render_markdown(run, [])
    assert "| 1 | the fork |" in text and "| 2 | bad" not in text and "The first 2 of 4 instructions" in text
