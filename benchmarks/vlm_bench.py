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

"""VLM reasoner costs on a tiny random Qwen2.5-VL (or a real model given with --model), CPU by default.

Reports, in one run:
  (a) a round in ``direct`` mode (the answer carries the points) vs ``query``
      mode (a shorter box-only answer, then yes/no scoring of candidate
      points); answer lengths are fixed token counts (--direct-tokens,
      --query-tokens) since a random model's answers are noise;
  (b) the cost per candidate point: scoring 20 candidates on the KV cache
      that generating the answer left (the end of the answer and the next
      turn's header, the target's text, then one packed forward of the 20
      points) vs generating 20 tokens;
  (c) prompt length in tokens with 1, 10 and 50 remembered objects, with the
      memory cap (``vlm.memory_objects``) and without it;
  (d) time to parse and validate an answer.

Random weights: timings measure compute, never answer quality.

Every figure is the best of --repeats runs after a warm-up.

Usage: python benchmarks/vlm_bench.py [--model DIR_OR_HUB_ID] [--device cpu] [--repeats 5] [--threads 1]
                                      [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from reasonseg_ros.config import load_config
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.reasoner.vlm.answer import read_answer
from reasonseg_ros.reasoner.vlm.client import QueryGroup
from reasonseg_ros.reasoner.vlm.coords import CoordinateFrame
from reasonseg_ros.reasoner.vlm.local import LocalVlm
from reasonseg_ros.reasoner.vlm.prompt import PromptText, build_prompt, query_question, query_target
from reasonseg_ros.reasoner.vlm.reasoner import VlmReasoner
from reasonseg_ros.reasoner.vlm.tiny import build_tiny_qwen2_5_vl
from reasonseg_ros.types import SegmentedObject

HEIGHT, WIDTH = 480, 640
CANDIDATES = 20


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` after a warm-up: the CPU is shared, and other work only ever adds time."""
    fn()
    return min(timed(fn) for _ in range(repeats))


class FixedLengthVlm(LocalVlm):
    """Generate exactly ``tokens`` tokens, then answer ``answer``.

    The tokens are the real compute (and in query mode the cache the questions continue); the scripted
    answer stands in because a random model's text would not parse, and query mode needs boxes.
    """

    tokens = 0
    answer = ""

    def _generate_options(self) -> dict[str, Any]:
        return {"max_new_tokens": self.tokens, "min_new_tokens": self.tokens, "do_sample": False}

    def generate(self, image: np.ndarray, prompt: PromptText) -> str:
        super().generate(image, prompt)
        return self.answer


def objects(count: int) -> tuple[SegmentedObject, ...]:
    return tuple(
        SegmentedObject(i, f"object {i}", (10.0 + i, 20.0, 110.0 + i, 140.0), {}, 0.9, 12000, i // 3, 0)
        for i in range(1, count + 1)
    )


def answer_json(count: int, frame: CoordinateFrame, points: bool) -> str:
    width = frame.model_size[1]
    targets = []
    for i in range(count):
        x = 10 + (i * 37) % (width - 120)
        target: dict[str, Any] = {"label": f"mug {i}", "box": [x, 40, x + 100, 200], "confidence": 0.8}
        if points:
            target |= {"points": [[x + 50, 120], [x + 40, 100]], "negative_points": [[x + 110, 120]]}
        targets.append(target)
    return json.dumps({"targets": targets, "rejections": [{"phrase": "the red cup", "reason": "none"}], "reply": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder or hub id (default: build the tiny random Qwen2.5-VL)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--direct-tokens", type=int, default=80, help="answer length in direct mode (one target)")
    parser.add_argument("--query-tokens", type=int, default=50, help="answer length in query mode (box only)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared CPU)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = args.model or build_tiny_qwen2_5_vl(tempfile.mkdtemp(prefix="tiny_qwen2_5_vl_"))
    overrides = {"reasoner.vlm.model": str(folder), "reasoner.vlm.device": args.device}
    if not args.model:
        overrides["reasoner.vlm.dtype"] = "float32"
    config = load_config(None, overrides).reasoner.vlm
    base = LocalVlm.load(config)
    client = FixedLengthVlm(base.model, base.processor, config, base.name)
    image = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    empty = MemoryView("bench", (), ())
    frame = CoordinateFrame("qwen2_5_vl", (HEIGHT, WIDTH), client.model_size(HEIGHT, WIDTH))
    figures: dict[str, Any] = {}

    # (a) direct vs query round
    client.tokens, client.answer = args.direct_tokens, answer_json(1, frame, points=True)
    direct = VlmReasoner(client, config)
    figures["direct_round_ms"] = best_ms(lambda: direct.reason(image, "the mug", empty), args.repeats)
    query_config = replace(config, point_mode="query", query_candidates=CANDIDATES)
    asker = FixedLengthVlm(base.model, base.processor, query_config, base.name)
    asker.tokens, asker.answer = args.query_tokens, answer_json(1, frame, points=False)
    query = VlmReasoner(asker, query_config)

    def query_round() -> None:
        out = query.reason(image, "the mug", empty)
        assert out.targets[0].prompt.points is not None or out.warnings

    figures["query_round_ms"] = best_ms(query_round, args.repeats)

    # (b) cost per candidate: batched scoring on the generation's cache vs generating as many tokens
    prompt = build_prompt("the mug", empty, frame, memory_cap=config.memory_objects, point_mode="query")
    groups = [
        QueryGroup(
            query_target("mug", [100, 40, 200, 200]),
            tuple(query_question(120 + 4 * i, 90) for i in range(CANDIDATES)),
        )
    ]
    inputs = client.encode(image, prompt.system, prompt.user)
    with torch.inference_mode():
        figures["prefill_ms"] = best_ms(lambda: client.model(**inputs, use_cache=True), args.repeats)
        figures["generate_20_tokens_ms"] = best_ms(
            lambda: client.model.generate(
                **inputs, max_new_tokens=CANDIDATES, min_new_tokens=CANDIDATES, do_sample=False
            ),
            args.repeats,
        )
    figures["decode_20_tokens_ms"] = figures["generate_20_tokens_ms"] - figures["prefill_ms"]
    scoring = []
    for _ in range(args.repeats + 1):
        answer = asker.generate(image, prompt)  # leaves the cache the questions continue
        scoring.append(timed(lambda answer=answer: asker.yes_probabilities(image, prompt, answer, groups)))
    figures["score_20_candidates_after_generate_ms"] = min(scoring[1:])

    # (c) prompt length as memory grows
    tokenizer = client.processor.tokenizer
    lengths: dict[str, dict[int, int]] = {}
    for cap_name, cap in (("capped", config.memory_objects), ("uncapped", 10_000)):
        lengths[cap_name] = {}
        for count in (1, 10, 50):
            prompt = build_prompt(
                "the one left of it",
                MemoryView("bench", objects(count), ()),
                frame,
                memory_cap=cap,
                point_mode="direct",
            )
            text = client._template(prompt.system, prompt.user)
            lengths[cap_name][count] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    figures["prompt_tokens"] = lengths
    figures["image_tokens"] = int(inputs["image_grid_thw"].prod()) // 4

    # (d) parse time
    for count in (1, 10):
        raw = f"```json\n{answer_json(count, frame, points=True)}\n```\nDone."
        figures[f"parse_{count}_targets_ms"] = best_ms(lambda raw=raw: read_answer(raw, frame, empty, "x"), 200)

    figures |= {
        "model": str(args.model or "tiny random Qwen2.5-VL (2 layers, hidden 64)"),
        "device": args.device,
        "image": f"{WIDTH}x{HEIGHT} -> {frame.model_size[1]}x{frame.model_size[0]} (smart_resize)",
        "direct_tokens": args.direct_tokens,
        "query_tokens": args.query_tokens,
        "candidates": CANDIDATES,
        "memory_cap": config.memory_objects,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s)",
        "load_average": os.getloadavg(),
        "repeats": args.repeats,
    }
    for key, value in figures.items():
        print(f"{key}: {round(value, 2) if isinstance(value, float) else value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
