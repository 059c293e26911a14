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

"""Torch CPU threads (``segmenter.threads``): a tiny-SAM round and one SAM decode, per thread count.

Random weights (the cost does not depend on the values). Runs each thread
count in turn, interleaved over the repeats, so that a change in the
machine's load hits every setting alike; prints the median and the range.

Usage: python benchmarks/cpu_threads.py [--repeats 5] [--threads 0,1,2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from reasonseg_ros.segmenter.base import ImageEmbedding
from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter, build_sam
from reasonseg_ros.types import Prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="0,1,2", help="0 is torch's default (one per core)")
    args = parser.parse_args()
    default = torch.get_num_threads()
    counts = [int(t) for t in args.threads.split(",")]
    torch.manual_seed(0)
    tiny = TorchSamSegmenter(build_sam("vit_tiny"))
    decoder = TorchSamSegmenter(build_sam("vit_tiny"))
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    prompt = [Prompt(box=[100, 100, 300, 300])]
    # SAM's decoder is the same for every encoder size: a 64×64 embedding is what vit_b/l/h hand it.
    full = ImageEmbedding(torch.randn(1, 256, 64, 64), (720, 1280), (576, 1024))
    decoder.sam.prompt_encoder.image_embedding_size = (64, 64)
    decoder.sam.image_encoder.img_size = 1024
    rounds: dict[int, list[float]] = {t: [] for t in counts}
    decodes: dict[int, list[float]] = {t: [] for t in counts}
    for _ in range(args.repeats):
        for threads in counts:
            torch.set_num_threads(threads or default)
            start = time.perf_counter()
            tiny.decode(tiny.embed(image), prompt)
            rounds[threads].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            decoder.decode(full, prompt)
            decodes[threads].append((time.perf_counter() - start) * 1000)
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load:.1f}; torch {torch.__version__}")
    for threads in counts:
        name = f"{threads} ({default}, default)" if threads == 0 else str(threads)
        r, d = rounds[threads], decodes[threads]
        print(
            f"threads {name}: tiny round {statistics.median(r):.0f} ms ({min(r):.0f}-{max(r):.0f}), "
            f"SAM decode at 64x64 {statistics.median(d):.0f} ms ({min(d):.0f}-{max(d):.0f})"
        )


if __name__ == "__main__":
    main()
