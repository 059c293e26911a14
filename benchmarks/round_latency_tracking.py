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

"""Round latency with tracking on at camera rate vs off: how much longer a round waits.

A camera thread submits 320×240 frames at ``--camera-hz``; with tracking on, a
tracking thread runs ``NodeCore.run_tracking`` at ``tracking.rate_hz`` with a
stand-in tracker whose every step (and seed) takes ``--step-ms`` (the figure
is about the engine's scheduling, not a tracker's cost). Rounds are ``prompt``
rounds re-segmenting 5 remembered objects by id from the boxes memory holds,
with the tiny SAM (random weights). A round with tracking on may wait for the step in progress (at most
one step), then runs one step on its own frame when the tracker has not
reached it yet, and seeds its objects; the rest of the round is unchanged.

Usage: python benchmarks/round_latency_tracking.py [--rounds 30] [--step-ms 20] [--camera-hz 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time

import numpy as np

from reasonseg_ros.config import load_config
from reasonseg_ros.engine import Engine
from reasonseg_ros.masks import mask_to_box
from reasonseg_ros.ros.node_core import NodeCore, Outputs
from reasonseg_ros.segmenter import create_segmenter
from reasonseg_ros.tracker.base import TrackState
from reasonseg_ros.types import Frame, Instruction, Prompt, ReasonerOutput, Target

HEIGHT, WIDTH, OBJECTS = 240, 320, 5


class SleepTracker:
    """Each step and seed costs ``step_s``; objects stay where they were seeded."""

    name = "stand-in (fixed step cost)"

    def __init__(self, step_s: float) -> None:
        self.step_s, self.masks = step_s, {}

    def seed(self, object_id, frame, mask) -> None:
        time.sleep(self.step_s / OBJECTS)  # a seed per object: one step's worth for all of them
        self.masks[object_id] = mask

    def step(self, frame):
        time.sleep(self.step_s)
        return {i: TrackState(m, mask_to_box(m), 0.9, True) for i, m in self.masks.items()}

    def remove(self, object_id) -> None:
        self.masks.pop(object_id, None)

    def clear(self) -> None:
        self.masks.clear()

    @property
    def tracked_ids(self) -> frozenset[int]:
        return frozenset(self.masks)


class Reasoner:
    """Answer "seed" with 5 squares given as masks (random SAM weights may find nothing), else every object by id."""

    name = "benchmark script"

    def reason(self, image, text, memory) -> ReasonerOutput:
        if text == "seed":
            targets = []
            for i in range(OBJECTS):
                mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
                mask[20:90, 10 + 60 * i : 60 + 60 * i] = True
                targets.append(Target(f"o{i}", Prompt(mask=mask)))
            return ReasonerOutput(targets=tuple(targets))
        # prompted from the box memory holds now, as the prompt reasoner does for an object id
        targets = tuple(Target(o.label, Prompt(box=o.box), 1.0, o.object_id) for o in memory.objects)
        return ReasonerOutput(targets=targets)


def measure(tracking: bool, rounds: int, step_ms: float, camera_hz: float) -> list[float]:
    tiny = {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True}
    config = load_config(None, {**tiny, "engine.frame_wait_s": 5.0})
    segmenter = create_segmenter(config.segmenter)
    tracker = SleepTracker(step_ms / 1000.0) if tracking else None
    engine = Engine(segmenter, Reasoner(), config, tracker=tracker)
    core = NodeCore(engine, {}, Outputs())
    rng = np.random.default_rng(0)
    stop = threading.Event()

    def camera() -> None:
        k = 0
        while not stop.is_set():
            engine.submit_frame(Frame(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), k * 10**9 // 30))
            k += 1
            stop.wait(1.0 / camera_hz)

    threads = [threading.Thread(target=camera)]
    if tracking:
        threads.append(threading.Thread(target=core.run_tracking, args=(stop,)))
    for thread in threads:
        thread.start()
    try:
        seeded = engine.handle(Instruction("seed"))
        assert seeded.ok, seeded.error
        timings: dict[str, list[float]] = {}
        gaps = np.random.default_rng(1)
        for _ in range(rounds):
            time.sleep(gaps.uniform(0.0, 0.2))  # instructions arrive at any phase of the tracking schedule
            result = engine.handle(Instruction("all of them"))
            assert result.ok, result.error
            for stage in ("total", "tracker_wait", "track", "seed"):
                timings.setdefault(stage, []).append(result.timings_ms.get(stage, 0.0))
        return timings
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--step-ms", type=float, default=20.0)
    parser.add_argument("--camera-hz", type=float, default=30.0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; tiny SAM with random weights", flush=True)
    for tracking in (False, True):
        timings = measure(tracking, args.rounds, args.step_ms, args.camera_hz)
        print(f"tracking {'on, ' + format(args.step_ms, 'g') + ' ms steps' if tracking else 'off'}:")
        for stage, values in timings.items():
            if tracking or stage == "total":
                p50, p95 = np.percentile(values, [50, 95])
                print(f"  {stage}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(values):.1f} ms")


if __name__ == "__main__":
    main()
