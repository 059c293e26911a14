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

"""Engine vs naive SamPredictor on the full-size SAM ViT-B architecture (random weights), CPU.

Timings do not depend on weight values, so random weights measure the real
cost. Reports, in one run:
  (a) a repeated instruction on the same frame: engine (embedding cached)
      vs ``SamPredictor.set_image`` + ``predict`` per instruction, against the
      ideal (encode + decode) / decode measured in the same run;
  (b) a round with 5 targets vs 1 target on a new frame, and 5 targets
      decoded in one batched call vs 5 separate decodes.

Usage: python benchmarks/segmenter_bench.py [--model vit_b] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from segment_anything import SamPredictor

from reasonseg_ros.config import load_config
from reasonseg_ros.engine import Engine
from reasonseg_ros.reasoner.prompt import PromptReasoner
from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter, build_sam
from reasonseg_ros.types import Frame, Instruction, Prompt

HEIGHT, WIDTH = 720, 1280
BOXES = [[100 + 200 * i, 100 + 50 * i, 300 + 200 * i, 400 + 50 * i] for i in range(5)]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeats))


def instruction(n_targets: int) -> Instruction:
    return Instruction(json.dumps({"targets": [{"label": f"t{i}", "box": BOXES[i]} for i in range(n_targets)]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    torch.manual_seed(0)
    sam = build_sam(args.model)
    segmenter = TorchSamSegmenter(sam, name=f"torch SAM {args.model} (random weights)")
    config = load_config(None, {"segmenter.model_type": args.model, "segmenter.random_weights": True})
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(args.repeats + 2)]
    box = np.array(BOXES[0], dtype=np.float32)

    # Naive: what a node built on SamPredictor does for every instruction.
    predictor = SamPredictor(sam)
    predictor.set_image(frames[0])  # warm-up
    encode_ms = median_ms(lambda: predictor.set_image(frames[0]), args.repeats)
    decode_ms = median_ms(lambda: predictor.predict(box=box, multimask_output=True), args.repeats * 3)
    naive_ms = median_ms(
        lambda: (predictor.set_image(frames[0]), predictor.predict(box=box, multimask_output=True)), args.repeats
    )

    # (a) Engine: the first instruction embeds the frame, the next ones reuse it.
    engine = Engine(segmenter, PromptReasoner(), config)
    engine.submit_frame(Frame(frames[0], 0))
    first = engine.handle(instruction(1))
    cached_rounds = [engine.handle(instruction(1)) for _ in range(args.repeats * 3)]
    assert all(r.ok and r.embedding_cached for r in cached_rounds), [r.error for r in cached_rounds]
    cached_ms = statistics.median(r.timings_ms["total"] for r in cached_rounds)
    # The ideal: a cached round costs one decode. With SamPredictor's decode as the unit, and with the
    # engine's own decode stage (cheaper: it upsamples only the chosen mask to full size).
    ideal = (encode_ms + decode_ms) / decode_ms
    engine_decode_ms = statistics.median(r.timings_ms["decode"] for r in cached_rounds)
    ideal_own = (encode_ms + engine_decode_ms) / engine_decode_ms
    speedup = naive_ms / cached_ms

    # (b) New frame per round: 1 target vs 5 targets.
    def fresh_round(n_targets: int, index: int) -> float:
        engine.submit_frame(Frame(frames[index], index))
        result = engine.handle(instruction(n_targets))
        assert result.ok and not result.embedding_cached, result.error
        return result.timings_ms["total"]

    # Interleaved on the same images, so drift in machine load hits both alike.
    pairs = [(fresh_round(1, 2 + i), fresh_round(5, 2 + i)) for i in range(args.repeats)]
    one = statistics.median(p[0] for p in pairs)
    five = statistics.median(p[1] for p in pairs)

    embedding = segmenter.embed(frames[0])
    prompts = [Prompt(box=b) for b in BOXES]
    one_call = TorchSamSegmenter(sam, batch_size=len(prompts))
    one_call.decode(embedding, prompts)  # warm-up
    batched_ms = median_ms(lambda: one_call.decode(embedding, prompts), args.repeats * 3)
    separate_ms = median_ms(lambda: [one_call.decode(embedding, [p]) for p in prompts], args.repeats * 3)
    default_ms = median_ms(lambda: segmenter.decode(embedding, prompts), args.repeats * 3)
    boxes_t = predictor.transform.apply_boxes_torch(torch.as_tensor(BOXES, dtype=torch.float32), (HEIGHT, WIDTH))
    predict_torch_ms = median_ms(lambda: predictor.predict_torch(None, None, boxes=boxes_t), args.repeats * 3)
    predict_single_ms = median_ms(
        lambda: [predictor.predict(box=np.asarray(b, dtype=np.float32)) for b in BOXES], args.repeats * 3
    )

    figures = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "model": f"SAM {args.model}, random weights, {WIDTH}x{HEIGHT} frame, CPU",
        "encode_ms": encode_ms,
        "decode_ms": decode_ms,
        "a_naive_per_instruction_ms": naive_ms,
        "a_engine_first_round_ms": first.timings_ms["total"],
        "a_engine_cached_round_ms": cached_ms,
        "a_engine_cached_stages_ms": {k: round(v, 2) for k, v in cached_rounds[-1].timings_ms.items()},
        "a_speedup": speedup,
        "a_ideal": ideal,
        "a_fraction_of_ideal": speedup / ideal,
        "a_engine_decode_stage_ms": engine_decode_ms,
        "a_ideal_own_decode": ideal_own,
        "a_fraction_of_ideal_own_decode": speedup / ideal_own,
        "b_round_1_target_ms": one,
        "b_round_5_targets_ms": five,
        "b_ratio_5_vs_1": five / one,
        "b_decode_5_batched_ms": batched_ms,
        "b_decode_5_separate_ms": separate_ms,
        "b_decode_5_engine_default_ms": default_ms,
        "b_predictor_predict_torch_5_boxes_ms": predict_torch_ms,
        "b_predictor_5_single_predicts_ms": predict_single_ms,
    }
    for key, value in figures.items():
        print(f"{key:40s} {value:.2f}" if isinstance(value, float) else f"{key:40s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
