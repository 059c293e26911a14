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

"""The ``detector`` reasoner's round on the full-size architectures, random weights, CPU.

Grounding DINO tiny (``GroundingDinoConfig()``'s defaults: Swin-T + BERT-base)
and OWLv2 base/16 (``Owlv2Config()``'s defaults), built from their configs with
random weights (the cost does not depend on the values; no hub download). The
tokenizers are small ones trained here: the text is a few tokens either way.
Times ``DetectorReasoner.detect`` on a 640×480 frame with two phrases.

Usage: python benchmarks/detector_bench.py [--repeats 2] [--threads 1] [--family grounding-dino,owlv2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from reasonseg_ros.config import DetectorConfig
from reasonseg_ros.reasoner.detector import DetectorReasoner

# The tests' small CLIP tokenizer (tests/detector_tiny.py): the text is a few tokens either way.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

WORDS = "a red mug and the plate fork cup on table bowl bottle".split()


def grounding_dino() -> DetectorReasoner:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    tokenizer = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=256)
    model = transformers.GroundingDinoForObjectDetection(transformers.GroundingDinoConfig()).eval()
    processor = transformers.GroundingDinoProcessor(transformers.GroundingDinoImageProcessor(), tokenizer)
    return DetectorReasoner(model, processor, DetectorConfig(model="grounding-dino-tiny architecture"))


def owlv2() -> DetectorReasoner:
    from detector_tiny import clip_tokenizer

    tokenizer, bos, eos = clip_tokenizer([" ".join(WORDS)])
    config = transformers.Owlv2Config(
        text_config={"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": eos},
        vision_config={"image_size": 960},  # the published checkpoint's input side (the class default is 768)
    )
    model = transformers.Owlv2ForObjectDetection(config).eval()
    processor = transformers.Owlv2Processor(transformers.Owlv2ImageProcessor(), tokenizer)
    return DetectorReasoner(model, processor, DetectorConfig(model="owlv2-base-patch16 architecture"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--family", default="grounding-dino,owlv2")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; transformers {transformers.__version__}"
    )
    builders = {"grounding-dino": grounding_dino, "owlv2": owlv2}
    for family in args.family.split(","):
        torch.manual_seed(0)
        reasoner = builders[family]()
        params = sum(p.numel() for p in reasoner.model.parameters()) / 1e6
        reasoner.detect(image, ["red mug", "plate"])  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            reasoner.detect(image, ["red mug", "plate"])
            times.append((time.perf_counter() - start) * 1000)
        print(
            f"{family}: {params:.0f} M parameters, detect 640x480 with 2 phrases: "
            f"median {statistics.median(times):.0f} ms ({min(times):.0f}-{max(times):.0f}) over {args.repeats}"
        )


if __name__ == "__main__":
    main()
