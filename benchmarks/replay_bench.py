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

"""Replay throughput, engine overhead outside the models, and memory over a long synthetic replay.

Tiny SAM with random weights (plumbing and overhead, not accuracy). Two parts:
  1. the demo bag replayed deterministically with the oracle reasoner: rounds/s
     and the engine's own time per round outside the models (goal: < 2 ms);
  2. 10 000 rounds through the node's behaviour class (the code replay drives),
     a new frame every 10 rounds, RSS sampled every 500 rounds: it must be flat
     after warm-up (goal: <= 1 % growth).

Usage: python benchmarks/replay_bench.py [--rounds 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from reasonseg_ros.config import load_config
from reasonseg_ros.engine import Engine
from reasonseg_ros.eval.demo_bag import render, write_demo_bag
from reasonseg_ros.eval.replay import ReplayOptions, replay
from reasonseg_ros.messages import numpy_to_image
from reasonseg_ros.messages.rosbags_types import typestore
from reasonseg_ros.ros.node_core import NodeCore, Outputs

TINY = {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True}


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def demo_replay() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        bag = write_demo_bag(Path(tmp) / "demo", frames=40)
        config = load_config(None, {**TINY, "reasoner.backend": "oracle"})
        replay(bag, config, Path(tmp) / "warm", ReplayOptions(progress=False))  # warm-up: first-call costs
        run = replay(bag, config, Path(tmp) / "out", ReplayOptions(progress=False))
    return {
        "demo_rounds": run.run["instructions"],
        "demo_rounds_per_s": run.run["rounds_per_s"],
        "demo_round_ms_p50": run.metrics["latency_ms"]["total"]["p50"],
        "engine_overhead_ms": run.run["engine_overhead_ms"],
    }


def long_replay(rounds: int) -> dict:
    ts = typestore()
    config = load_config(None, {**TINY, "node.instruction_queue_size": 4})
    engine = Engine.from_config(config)
    results = 0

    def count(_: object) -> None:
        nonlocal results
        results += 1

    core = NodeCore(
        engine, ts.types, Outputs(masks=lambda m: None, detections=lambda m: None, result=count), config.node
    )
    image, masks = render(0)
    boxes = [
        [int(v) for v in np.argwhere(m)[:, ::-1].min(0)] + [int(v) + 1 for v in np.argwhere(m)[:, ::-1].max(0)]
        for m in masks[:2]
    ]
    instruction = ts.types["std_msgs/msg/String"](data=json.dumps({"targets": [{"box": b} for b in boxes]}))
    samples = []
    start = time.perf_counter()
    for i in range(rounds):
        if i % 10 == 0:
            stamp = ts.types["builtin_interfaces/msg/Time"](sec=i // 10, nanosec=0)
            header = ts.types["std_msgs/msg/Header"](stamp=stamp, frame_id="bench")
            core.on_image(numpy_to_image(ts.types["sensor_msgs/msg/Image"], header, image, "rgb8"))
        core.on_instruction(instruction)
        core.process_next()
        if (i + 1) % 500 == 0:
            samples.append((i + 1, rss_mib()))
    elapsed = time.perf_counter() - start
    warm = [mib for n, mib in samples if n >= rounds // 5]  # after the first fifth
    return {
        "long_rounds": rounds,
        "long_results": results,
        "long_rounds_per_s": rounds / elapsed,
        "rss_mib_samples": [[n, round(mib, 1)] for n, mib in samples],
        "rss_growth_after_warmup": (warm[-1] - warm[0]) / warm[0] if len(warm) > 1 else None,
        "memory_rounds_kept": len(engine.memory.view("default").rounds),
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    figures = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", **demo_replay(), **long_replay(args.rounds)}
    for key, value in figures.items():
        print(f"{key:28s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
