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

"""Tracking cost per frame and memory over long runs (docs/performance.md, "Tracking").

Parts (``--parts``, comma-separated; default all but ``sam2-full``):
  flow       the flow tracker, 5 textured objects moving at 1280×720: ms per frame (median, p95), wall and
             this thread's CPU time (the CPU time is what a busy shared machine distorts least); mean IoU
  sam2-tiny  the sam2 tracker on the tests' tiny random SAM 2.1: ms per step for 1, 5, 10 objects
  sam2-full  the same on the full-size sam2.1_hiera_t architecture (random weights, 1024-pixel input): a few
             steps only, each of them seconds on a CPU
  rss-flow   10 000 flow steps (5 objects, 640×360): RSS after warm-up and at the end
  rss-sam2   sam2 tiny steps (3 objects, ``--sam2-frames``): memory-bank sizes and RSS

For 1/5/10 objects the sam2 banks are filled first (one warm step per object count is not enough: a bank
fills over ``max_obj_ptrs_in_encoder`` steps), so the timed steps attend to full banks, as in steady state.

Usage: python benchmarks/bench_tracking.py [--parts flow,sam2-tiny] [--sam2-frames 2000]
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

from reasonseg_ros.masks import mask_iou
from reasonseg_ros.types import Frame

# The synthetic videos and the tiny SAM 2.1 are the tests' own (tests/flow_scenes.py, tests/sam2_tiny.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def looping_scene(*args: float):  # the tests' Scene
    from flow_scenes import looping_scene as make

    return make(*args)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_flow(steps: int = 200) -> None:
    import cv2

    from reasonseg_ros.tracker.flow import FlowTracker

    scene = looping_scene(720, 1280, 5, 40, 70)
    for threads, label in ((cv2.getNumThreads(), "OpenCV default threads"), (1, "OpenCV 1 thread")):
        cv2.setNumThreads(threads)
        tracker = FlowTracker()
        for i in scene.masks[0]:
            tracker.seed(i, Frame(scene.frames[0]), scene.masks[0][i])
        wall, cpu, ious = [], [], []
        for k in range(1, steps + 1):
            t = k % len(scene.frames)
            frame = Frame(scene.frames[t], k)
            w0, c0 = time.perf_counter(), time.thread_time()
            out = tracker.step(frame)
            cpu.append((time.thread_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            ious.extend(mask_iou(out[i].mask, scene.masks[t][i]) for i in out)
        wall, cpu = wall[10:], cpu[10:]
        print(
            f"flow 1280x720, 5 objects, {label}: wall median {statistics.median(wall):.2f} ms "
            f"p95 {np.percentile(wall, 95):.2f} ms; thread CPU median {statistics.median(cpu):.2f} ms "
            f"p95 {np.percentile(cpu, 95):.2f} ms; mean IoU {np.mean(ious):.3f} over {steps} steps"
        )


def fill_banks(tracker, step: int = 40) -> None:
    """Give every bank a full window of recent memories and pointers (copies of its conditioning ones)."""
    tracker._step = step
    for bank in tracker._banks.values():
        bank.seeded_at = 0
        bank.recent.clear()
        bank.pointers.clear()
        for k in range(bank.recent.maxlen or 0, 0, -1):
            bank.recent.append((step - k, bank.cond_memory.clone()))
        for k in range(bank.pointers.maxlen or 0, 0, -1):
            bank.pointers.append((step - k, bank.cond_pointer.clone()))


def bench_sam2(full: bool, steps: int, device: str = "cpu") -> None:
    import torch

    def sync() -> None:  # CUDA runs asynchronously: time what the GPU did, not what was queued
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    from reasonseg_ros.segmenter.sam2_image import Sam2Model
    from reasonseg_ros.tracker.sam2_tracker import Sam2Tracker

    if full:
        sam2 = Sam2Model.build("sam2.1_hiera_t", None, "", device, True, "tracking.sam2")
        recent, label = 6, f"full-size sam2.1_hiera_t (random weights, 1024 input, {device})"
    else:
        from sam2_tiny import RECENT_FRAMES, tiny_overrides

        sam2 = Sam2Model.build("sam2.1_hiera_t", None, "", device, True, "tracking.sam2", tiny_overrides())
        recent, label = RECENT_FRAMES, f"tiny SAM 2.1 (tests' model, 256 input, {device})"
    scene = looping_scene(720, 1280, 10, 8, 50)
    results = {}
    for n in (1, 5, 10):
        tracker = Sam2Tracker(sam2, recent)
        for i in range(1, n + 1):
            tracker.seed(i, Frame(scene.frames[0]), scene.masks[0][i])
        fill_banks(tracker)
        times, encodes = [], []
        for k in range(steps):
            frame = Frame(scene.frames[1 + k % 7].copy(), k)  # a new array: a real encode every step
            sync()
            start = time.perf_counter()
            with torch.inference_mode():
                sam2.encode(frame.image)
            sync()
            encodes.append(time.perf_counter() - start)
            start = time.perf_counter()
            tracker.step(frame)  # the encode is memoised: this is the per-object part
            sync()
            times.append(time.perf_counter() - start)
        encode = statistics.median(encodes) * 1000
        per_step = statistics.median(times) * 1000
        results[n] = encode + per_step
        sizes = set(tracker.memory_sizes().values())
        print(
            f"sam2 {label}, {n} objects: step {encode + per_step:.1f} ms = encode {encode:.1f} ms + memory "
            f"attention/decode/memory encode {per_step:.1f} ms (median of {steps}); banks {sizes}"
        )
    print(f"sam2 {label}: 10 objects cost {results[10] / results[1]:.2f}x one object")


def bench_rss_flow(frames: int = 10_000) -> None:
    from reasonseg_ros.tracker.flow import FlowTracker

    scene = looping_scene(360, 640, 5, 40, 35)
    tracker = FlowTracker()
    for i in scene.masks[0]:
        tracker.seed(i, Frame(scene.frames[0]), scene.masks[0][i])
    warm = None
    start = time.perf_counter()
    for k in range(1, frames + 1):
        tracker.step(Frame(scene.frames[k % len(scene.frames)], k))
        if k == 500:
            warm = rss_mb()
    end = rss_mb()
    print(
        f"flow RSS over {frames} steps (640x360, 5 objects): {warm:.1f} MB after 500 steps, {end:.1f} MB at the end "
        f"({100 * (end - warm) / warm:+.2f} %); {(time.perf_counter() - start):.0f} s"
    )


def bench_rss_sam2(frames: int) -> None:
    from sam2_tiny import RECENT_FRAMES, tiny_overrides

    from reasonseg_ros.segmenter.sam2_image import Sam2Model
    from reasonseg_ros.tracker.sam2_tracker import Sam2Tracker

    sam2 = Sam2Model.build("sam2.1_hiera_t", None, "", "cpu", True, "tracking.sam2", tiny_overrides())
    scene = looping_scene(240, 320, 3, 40, 25)
    tracker = Sam2Tracker(sam2, RECENT_FRAMES)
    for i in scene.masks[0]:
        tracker.seed(i, Frame(scene.frames[0]), scene.masks[0][i])
    warm, largest = None, (0, 0, 0)
    warm_at = min(200, frames // 4)
    start = time.perf_counter()
    for k in range(1, frames + 1):
        tracker.step(Frame(scene.frames[k % len(scene.frames)].copy(), k))
        largest = max(largest, *tracker.memory_sizes().values())
        if k == warm_at:
            warm = rss_mb()
    end = rss_mb()
    print(
        f"sam2 tiny RSS over {frames} steps (3 objects): {warm:.1f} MB after {warm_at} steps, {end:.1f} MB at the end "
        f"({100 * (end - warm) / warm:+.2f} %); largest bank (cond, recent, pointers) {largest}; "
        f"{(time.perf_counter() - start):.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="flow,sam2-tiny,rss-flow,rss-sam2")
    parser.add_argument("--sam2-frames", type=int, default=2000, help="steps of the sam2 RSS run")
    parser.add_argument("--steps", type=int, default=5, help="timed sam2 steps per object count (tiny model)")
    parser.add_argument("--device", default="cpu", help="torch device of the sam2 parts (cuda on a GPU machine)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}")
    parts = args.parts.split(",")
    if "flow" in parts:
        bench_flow()
    if "sam2-tiny" in parts:
        bench_sam2(False, args.steps, args.device)
    if "sam2-full" in parts:
        bench_sam2(True, 1 if args.device == "cpu" else args.steps, args.device)  # seconds a step on a CPU
    if "rss-flow" in parts:
        bench_rss_flow()
    if "rss-sam2" in parts:
        bench_rss_sam2(args.sam2_frames)


if __name__ == "__main__":
    main()
