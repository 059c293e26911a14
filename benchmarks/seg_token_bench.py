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

"""Time one seg_token round, split into its stages, on random weights (plumbing and cost only).

Stages: CLIP (vision tower + projector), prefill (the language model over the
prompt with the image tokens), generation (the remaining decode steps),
projection + SasP (``text_hidden_fcs`` and Similarity-as-Points for every
``[SEG]``), SAM decode (all targets against the cached image embedding).
The SAM image encoder runs once per frame and is reported apart.

The answer is forced (a logits hook) to ``--tokens`` tokens holding
``--targets`` ``[SEG]`` tokens, so every run does the same work.

    python benchmarks/seg_token_bench.py --size tiny
    python benchmarks/seg_token_bench.py --size 1b --repeats 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import numpy as np

SIZES: dict[str, dict[str, Any]] = {
    # the tests' tiny model
    "tiny": {
        "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
        "image_size": 224,
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
        "vocab": 512,
        "projector": "linear",
        "sam": "vit_tiny",
    },
    # CLIP ViT-L/14-336 and LLaVA-1.5's projector at their real sizes; a 1.1B Llama (TinyLlama's shape)
    "1b": {
        "vision": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16},
        "image_size": 336,
        "text": {
            "hidden_size": 2048,
            "intermediate_size": 5632,
            "num_hidden_layers": 22,
            "num_attention_heads": 32,
            "num_key_value_heads": 4,
        },
        "vocab": 32003,
        "projector": "mlp2x_gelu",
        "sam": "vit_b",
    },
    # LLaVA-1.5-7B / READ-7B: needs about 28 GB in float32, 14 GB in bfloat16
    "7b": {
        "vision": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16},
        "image_size": 336,
        "text": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32},
        "vocab": 32003,
        "projector": "mlp2x_gelu",
        "sam": "vit_h",
    },
}
PROMPT_TOKENS = 60
"""Roughly LLaVA-v1's system prompt plus a one-line instruction."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--tokens", type=int, default=16, help="answer length in tokens")
    parser.add_argument("--targets", type=int, default=2, help="[SEG] tokens in the answer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--no-sasp", action="store_true")
    args = parser.parse_args()

    import torch
    import transformers

    from reasonseg_ros.reasoner.seg_token.model import IMAGE_PLACEHOLDER, build_llava
    from reasonseg_ros.reasoner.seg_token.sasp import SasPSettings, points_from_similarity, similarity
    from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter, build_sam
    from reasonseg_ros.types import Prompt

    spec = SIZES[args.size]
    torch.manual_seed(0)
    start = time.perf_counter()
    vision = transformers.CLIPVisionConfig(**spec["vision"], image_size=spec["image_size"], patch_size=14)
    text = transformers.LlamaConfig(**spec["text"], vocab_size=spec["vocab"], max_position_embeddings=4096)
    model = build_llava(vision, text, spec["projector"], dtype=getattr(torch, args.dtype))
    segmenter = TorchSamSegmenter(build_sam(spec["sam"]), batch_size=0)
    built_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())

    seg_id = spec["vocab"] - 1
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    ids = [1, *rng.integers(3, seg_id, PROMPT_TOKENS).tolist()]
    ids.insert(8, IMAGE_PLACEHOLDER)
    answer = rng.integers(3, seg_id, args.tokens).tolist()
    for k in range(args.targets):
        answer[(k + 1) * args.tokens // (args.targets + 1)] = seg_id

    calls: list[float] = []
    step = {"n": 0}

    def before(*_: Any) -> None:
        calls.append(time.perf_counter())

    def force(_module: Any, _args: Any, output: Any) -> Any:
        calls[-1] = time.perf_counter() - calls[-1]
        logits = torch.full_like(output.logits, -1e4)
        logits[..., answer[min(step["n"], len(answer) - 1)]] = 0
        step["n"] += 1
        output.logits = logits
        return output

    lm = model.language_model
    lm.register_forward_pre_hook(before)
    lm.register_forward_hook(force)
    clip_times: list[float] = []
    model.vision_tower.register_forward_pre_hook(lambda *_: clip_times.append(time.perf_counter()))
    model.mm_projector.register_forward_hook(
        lambda *_: clip_times.__setitem__(-1, time.perf_counter() - clip_times[-1])
    )

    sasp = None if args.no_sasp else SasPSettings()
    encode_start = time.perf_counter()
    embedding = segmenter.embed(image)
    sam_encode_ms = (time.perf_counter() - encode_start) * 1000

    rows = []
    for _ in range(args.repeats):
        calls.clear()
        clip_times.clear()
        step["n"] = 0
        with torch.inference_mode():
            t0 = time.perf_counter()
            generation = model.generate(ids, model.preprocess(image), args.tokens, None)
            t1 = time.perf_counter()
            marks = [j for j, token in enumerate(generation.new_ids) if token == seg_id]
            states = generation.states[[generation.prompt_length + j - 1 for j in marks]]
            embeddings = model.project(states).float().numpy()
            prompts = []
            for state, emb in zip(states, embeddings, strict=True):
                points = labels = None
                if sasp is not None:
                    image_states = generation.states[
                        generation.image_start : generation.image_start + model.num_patches
                    ]
                    points, labels = points_from_similarity(
                        similarity(state, image_states), image.shape[:2], model.image_size, sasp
                    )
                prompts.append(Prompt(points=points, point_labels=labels, embedding=emb[None]))
            t2 = time.perf_counter()
            segmenter.decode(embedding, prompts)
            t3 = time.perf_counter()
        clip_ms = clip_times[0] * 1000
        prefill_ms = calls[0] * 1000
        rows.append(
            {
                "clip_ms": clip_ms,
                "prefill_ms": prefill_ms,
                "generation_ms": (t1 - t0) * 1000 - clip_ms - prefill_ms,
                "projection_sasp_ms": (t2 - t1) * 1000,
                "sam_decode_ms": (t3 - t2) * 1000,
                "round_ms": (t3 - t0) * 1000,
                "targets": len(prompts),
            }
        )
    median = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    median["sasp_share_percent"] = 100 * median["projection_sasp_ms"] / median["round_ms"]
    report = {
        "size": args.size,
        "dtype": args.dtype,
        "parameters_llava": params,
        "sam": spec["sam"],
        "image": f"{args.width}x{args.height}",
        "prompt_tokens_before_image_expansion": len(ids),
        "image_tokens": model.num_patches,
        "answer_tokens": args.tokens,
        "sasp": sasp is not None,
        "repeats": args.repeats,
        "build_s": built_s,
        "sam_encode_ms_once_per_frame": sam_encode_ms,
        "median": median,
        "machine": f"{platform.machine()}, torch threads {torch.get_num_threads()}",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
