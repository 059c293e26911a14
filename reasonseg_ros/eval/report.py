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

"""``metrics.json``, ``report.md`` and the plots of a replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.eval.metrics import score_sample
from reasonseg_ros.eval.replay import ReplayRun

RANDOM_STAMP = (
    "**Randomly initialised weights: these numbers measure the plumbing and the speed, not segmentation quality.**"
)


def write_report(run: ReplayRun, out_dir: str | Path) -> list[Path]:
    """Write every artefact of ``run`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps({"metrics": run.metrics, "run": run.run}, indent=2) + "\n")
    plots = write_plots(run, out_dir)
    report_path = out_dir / "report.md"
    report_path.write_text(render_markdown(run, [p.name for p in plots]))
    return [metrics_path, report_path, *plots, out_dir / "output_bag"]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _protocols(m: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The accuracy rows: the run's own protocol, then the reference protocol's when both ran."""
    rows = [(m.get("protocol", "free"), m)]
    if "reference" in m:
        rows.append(("reference (ground-truth answer teacher-forced)", m["reference"]))
    return rows


def render_markdown(run: ReplayRun, plots: list[str]) -> str:
    m, r = run.metrics, run.run
    lines = ["# Replay report", ""]
    if r["random_weights"]:
        lines += [RANDOM_STAMP, ""]
        if r.get("fallback_reason"):
            lines += [f"Random weights because no checkpoint could be had: {r['fallback_reason']}", ""]
    lines += [
        "## Source",
        "",
        "| | |",
        "| --- | --- |",
        f"| bag | `{r['bag']}` |",
        f"| mode | {r['mode']}" + (f" (rate {r['rate']:g})" if r["mode"] == "realtime" else "") + " |",
        f"| topics | image `{r['topics']['image']}`, instruction `{r['topics']['instruction']}` |",
        f"| ground truth | {r['ground_truth']} |",
        f"| segmenter | {r['segmenter']} |",
        f"| reasoner | {r['reasoner']} |",
        f"| checkpoint | {_checkpoint(r)} |",
        *_provenance_rows(r.get("provenance")),
        "",
        "## Accuracy",
        "",
        "| protocol | gIoU | cIoU | N-acc | T-acc | samples (with / without target) |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {_fmt(a['gIoU'])} | {_fmt(a['cIoU'])} | {_fmt(a['N-acc'])} | {_fmt(a['T-acc'])} | "
            f"{a['samples']} ({a['samples_with_target']} / {a['samples_without_target']}) |"
            for name, a in _protocols(m)
        ],
        "",
        "Precision at IoU (samples with a target): "
        + ", ".join(f"Pr@{t} {_fmt(v)}" for t, v in m["precision"].items()),
        "",
        f"Per object (greedy one-to-one matching): {m['per_object']['objects']} objects, "
        f"mean IoU {_fmt(m['per_object']['mean_iou'])}, matched at IoU ≥ 0.5 {_fmt(m['per_object']['matched_at_0.5'])}",
        "",
        "### Per round",
        "",
        "| round | samples | cIoU | gIoU |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {k} | {v['samples']} | {_fmt(v['cIoU'])} | {_fmt(v['gIoU'])} |" for k, v in m["per_round"].items()]
    lines += ["", "cIoU is n/a for a round whose samples all have no target (N-acc scores those)."]
    lines += ["", "## Speed", "", *speed_table(run)]
    overhead, age = r["engine_overhead_ms"], r["frame_age_ms"]
    lines += [
        "",
        f"Rounds: {r['rounds_ok']} ok, {r['rounds_failed']} failed, of {r['instructions']} instructions; "
        f"{_fmt(r['rounds_per_s'], 2)} rounds/s over {_fmt(r['wall_s'], 2)} s; {r['encoder_runs']} encoder runs.",
        "",
        f"Engine overhead per round outside the models (p50 / p99): {_fmt(overhead.get('p50'), 3)} / "
        f"{_fmt(overhead.get('p99'), 3)} ms.",
        "",
        f"Age of the frame each round used (p50 / p90 / p99): {_fmt(age.get('p50'), 1)} / "
        f"{_fmt(age.get('p90'), 1)} / {_fmt(age.get('p99'), 1)} ms.",
        "",
        f"Frames: {r['frames_received']} used, {r['frames_skipped']} skipped"
        + f"; instructions dropped by the queue: {r['instructions_dropped']}.",
        "",
        *[f"- skipped {count}×: {reason}" for reason, count in r.get("frame_skip_reasons", {}).items()],
        *([""] if r.get("frame_skip_reasons") else []),
        *tracking_section(m.get("tracking")),
        "## Mismatches and errors",
        "",
    ]
    problems = [f"- mismatch: {p}" for p in r["mismatches"]] + [f"- error: {e}" for e in r["errors"]]
    lines += problems or ["None."]
    lines += ["", *instruction_table(run)]
    if r.get("overlays"):
        first, *rest = r["overlays"]
        lines += ["", "## Overlays", "", f"![the first round]({first})", ""]
        lines += [
            "Each mask outlined in its object's colour, its id and label, the prompt SAM was given "
            "(box, green positive and red negative points), rejected phrases at the bottom."
        ]
        if rest:
            lines += [
                "",
                "More: " + ", ".join(f"[{Path(p).stem}]({p})" for p in rest) + " (every round: `/overlay` "
                "in the output bag).",
            ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def write_plots(run: ReplayRun, out_dir: Path) -> list[Path]:
    matplotlib = require("matplotlib", "replay plots")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "replay plots")
    paths = []
    title_suffix = " (random weights)" if run.run["random_weights"] else ""

    ious = [score_sample(s).iou for s in run.samples]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.hist(ious, bins=np.linspace(0, 1, 21), color="#3b6ea8")
    axis.set(xlabel="IoU per instruction", ylabel="instructions", title="IoU histogram" + title_suffix)
    paths.append(_save(figure, out_dir / "iou_histogram.png", plt))

    per_round = run.metrics["per_round"]
    figure, axis = plt.subplots(figsize=(6, 4))
    rounds = list(per_round)
    _ciou_bars(axis, rounds, [per_round[k]["cIoU"] for k in rounds])
    axis.set(xlabel="dialogue round", ylabel="cIoU", ylim=(0, 1), title="cIoU per round" + title_suffix)
    paths.append(_save(figure, out_dir / "ciou_per_round.png", plt))

    figure = _latency_ecdf(run, plt, title_suffix)
    paths.append(_save(figure, out_dir / "latency_cdf.png", plt))
    if run.metrics.get("tracking"):
        tracking = run.metrics["tracking"]
        suffix = " (random-weight tracker)" if tracking.get("random_weights") else ""
        paths.append(plot_tracking(tracking, out_dir / "tracking_iou_over_time.png", plt, suffix))
    return paths


STAGE_ORDER = (
    "validate",
    "select_frame",
    "tracker_wait",
    "track",
    "reason",
    "validate_masks",
    "embed",
    "decode",
    "encode_masks",
    "reidentify",
    "memory",
    "seed",
    "total",
)
"""The stages of a round in the order they run (engine.py), ``total`` last."""
ECDF_STAGES = ("reason", "embed", "decode", "total")
MAX_INSTRUCTION_ROWS = 1000
"""A dataset replay has thousands of instructions: the report lists this many (every result is in the bag)."""


def _stage_key(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER) - 1, stage)


def _checkpoint(r: dict[str, Any]) -> str:
    if r["random_weights"]:
        return "none (random weights)"
    return f"`{r['checkpoint']}`" if r["checkpoint"] else "default for the model type"


def _provenance_rows(provenance: dict[str, Any] | None) -> list[str]:
    if not provenance:
        return []
    rows = [
        f"| package | reasonseg_ros {provenance['version']}, commit {provenance['commit']} |",
        f"| run | {provenance['date']} on {provenance['host']} |",
        f"| config | `{provenance['config']}` |",
    ]
    if provenance.get("command"):
        rows.append(f"| command | `{provenance['command']}` |")
    return rows


def speed_table(run: ReplayRun) -> list[str]:
    """Per-stage latency in pipeline order, with the number of rounds behind each figure."""
    counts: dict[str, int] = {}
    for sample in run.samples:
        for stage in sample.timings_ms:
            counts[stage] = counts.get(stage, 0) + 1
    lines = ["| stage | n | p50 ms | p90 ms | p99 ms |", "| --- | --- | --- | --- | --- |"]
    for stage in sorted(run.metrics["latency_ms"], key=_stage_key):
        p = run.metrics["latency_ms"][stage]
        lines.append(
            f"| {stage} | {counts.get(stage, 0)} | {_fmt(p.get('p50'), 2)} | {_fmt(p.get('p90'), 2)} | "
            f"{_fmt(p.get('p99'), 2)} |"
        )
    lines += ["", "n: scored rounds in which the stage ran (a round without targets runs no embed or decode)."]
    return lines


def instruction_table(run: ReplayRun) -> list[str]:
    """One row per instruction: text, session/round, IoU, predicted vs expected objects, error."""
    lines = [
        "## Per instruction",
        "",
        "| # | instruction | session / round | IoU | predicted / expected | error |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    scored = dict(zip(run.sample_indices, run.samples, strict=False))
    indices = sorted(set(run.results) | set(scored))
    for index in indices[:MAX_INSTRUCTION_ROWS]:
        result, sample = run.results.get(index), scored.get(index)
        text = _cell((result or {}).get("instruction", ""), 60)
        where = f"{result['session']} / {_fmt(result['round'])}" if result else "n/a"
        predicted = len(result["objects"]) if result and result["ok"] else 0
        expected = "n/a"
        iou = "n/a (not scored)"
        if sample is not None:
            score = score_sample(sample)
            expected = str(len(sample.expected))
            if score.has_target:
                iou = _fmt(score.iou)
            else:  # a no-target sample has no IoU; N-acc counts whether it was left empty
                iou = "n/a (no target, left empty)" if score.predicted_empty else "n/a (no target, yet predicted)"
        error = ""
        if result is None:
            error = "no result"
        elif not result["ok"]:
            error = _cell(f"{result['error']['kind']}: {result['error']['message']}", 80)
        lines.append(f"| {index} | {text} | {where} | {iou} | {predicted} / {expected} | {error} |")
    if len(indices) > MAX_INSTRUCTION_ROWS:
        shown = f"The first {MAX_INSTRUCTION_ROWS} of {len(indices)} instructions"
        lines += ["", f"{shown}; every result is in the output bag."]
    return lines


def _cell(text: str, width: int) -> str:
    """Text safe inside a markdown table cell, cut to ``width`` characters."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _ciou_bars(axis: Any, rounds: list[str], values: list[float | None]) -> None:
    """Bars for rounds with a cIoU; "n/a" written where a round had no target to score (not a zero bar)."""
    axis.bar(rounds, [v if v is not None else 0.0 for v in values], color="#5a9a5a")
    for x, value in enumerate(values):
        if value is None:
            axis.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=8, color="#666666")


def _latency_ecdf(run: ReplayRun, plt: Any, title_suffix: str) -> Any:
    """Step ECDF of the reason, embed, decode and total times of the rounds."""
    figure, axis = plt.subplots(figsize=(6, 4))
    stages: dict[str, list[float]] = {}
    for result in run.results.values():
        for stage, ms in (result.get("timings_ms") or {}).items():
            if stage in ECDF_STAGES:
                stages.setdefault(stage, []).append(ms)
    for stage in sorted(stages, key=_stage_key):
        values = np.sort(stages[stage])
        fractions = np.arange(1, len(values) + 1) / len(values)
        # the step rises from 0 at the fastest round: F(x) = share of rounds taking at most x
        axis.step(np.r_[values[0], values], np.r_[0.0, fractions], where="post", label=f"{stage} (n={len(values)})")
    axis.set(xlabel="ms", ylabel="fraction of rounds", ylim=(0, 1.02), title="latency ECDF" + title_suffix)
    if stages:
        axis.set_xscale("symlog", linthresh=1.0)
        axis.set_xlim(left=0)
        axis.legend(fontsize=7)
    return figure


def tracking_section(tracking: dict[str, Any] | None) -> list[str]:
    """The report's tracking tables (J, F, J&F per object; DAVIS definitions), empty when tracking was off."""
    if not tracking:
        return []
    latency = tracking["latency_ms"]
    backend = tracking.get("backend", "?")
    lines = [
        "## Tracking",
        "",
        f"Tracker `{backend}`"
        + (" with **randomly initialised weights**" if tracking.get("random_weights") else "")
        + ", seeded with each round's masks (exact where the rounds hand masks over: `oracle.prompt: mask`, "
        "`convert davis`; random where a random-weight segmenter decodes boxes or points).",
        "",
        f"Mode {tracking['mode']}: {tracking['steps']} tracking steps ({tracking['step_errors']} failed), "
        f"step latency p50 / p95 {_fmt(latency.get('p50'), 2)} / {_fmt(latency.get('p95'), 2)} ms. "
        "J is region IoU, F the boundary F-measure (tolerance "
        f"{tracking['bound_th']:g} of the image diagonal), both DAVIS definitions; frames after each object's "
        "seed round are scored.",
        "",
        "| object | label | frames | J | F | J&F | lost while visible |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, obj in tracking["per_object"].items():
        lines.append(
            f"| {key} | {obj['label']} | {obj['frames']} | {_fmt(obj['J'])} | {_fmt(obj['F'])} | "
            f"{_fmt(obj['J&F'])} | {_fmt(obj['lost_while_visible'])} |"
        )
    lines += [
        f"| **mean** | | {tracking['frames_scored']} | {_fmt(tracking['J'])} | {_fmt(tracking['F'])} | "
        f"{_fmt(tracking['J&F'])} | {_fmt(tracking['lost_while_visible'])} |",
        "",
        f"Of the frames where an object was in sight, it was reported occluded on "
        f"{_fmt(tracking['occluded_while_visible'])} and missing from the tracking output on "
        f"{_fmt(tracking['unreported_while_visible'])} (no step yet, or a failed one).",
        "",
    ]
    return lines


def plot_tracking(tracking: dict[str, Any], path: Path, plt: Any, title_suffix: str = "") -> Path:
    """IoU (J) over time per tracked object, on the bag's clock."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for key, obj in tracking["per_object"].items():
        if obj["iou_over_time"]:
            stamps, ious = zip(*obj["iou_over_time"], strict=True)
            axis.plot(np.asarray(stamps) / 1e9, ious, marker=".", markersize=3, label=f"{key} {obj['label']}")
    axis.set(xlabel="frame stamp (s)", ylabel="J (IoU)", ylim=(-0.02, 1.02), title="IoU over time" + title_suffix)
    if tracking["per_object"]:
        axis.legend(fontsize=7, loc="lower left")
    return _save(figure, path, plt)


def _save(figure: Any, path: Path, plt: Any) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
