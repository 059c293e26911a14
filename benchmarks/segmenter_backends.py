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

"""Segmenter backends side by side, one run: torch vs ONNX Runtime on CPU; torch vs TensorRT on a GPU.

Random weights (timings do not depend on weight values), full-size architecture
(default ``vit_b``), a 1280×720 frame, masks upscaled to the frame in every
backend. Reports medians of interleaved repeats and their ratios:

CPU (always):
  * encoder: ONNX Runtime vs torch;
  * decoder, one box: ours in ONNX Runtime vs torch vs ``segment_anything``'s own
    ``SamOnnxModel`` export in ONNX Runtime (its graph upscales to the frame);
  * decoder, 5 boxes: one call vs 5 calls (per prompt), and a ``[SEG]``-style
    sparse-embedding prompt.
GPU (``--device cuda``, needs torch with CUDA, TensorRT 10):
  * encoder and decoder per backend, torch fp32 vs TensorRT fp16, 1 and 5 targets,
    and the whole non-LLM round (encode + decode + masks on the host).

Usage: python benchmarks/segmenter_backends.py [--model vit_b] [--device cpu|cuda]
       [--encoder-repeats 2] [--decoder-repeats 20] [--work DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from reasonseg_ros.config import load_config
from reasonseg_ros.segmenter.export import export_sam
from reasonseg_ros.segmenter.exported import ExportedSamSegmenter
from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter, build_sam
from reasonseg_ros.types import Prompt

HEIGHT, WIDTH = 720, 1280
BOXES = [[100 + 200 * i, 100 + 50 * i, 300 + 200 * i, 400 + 50 * i] for i in range(5)]


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, sync: Callable[[], None] = lambda: None) -> dict:
    """Median ms of each function, measured in rounds: each round runs every function ``block`` times in a row.

    Back-to-back calls of different runtimes slow each other on a CPU: torch's OpenMP workers and ONNX
    Runtime's pool keep spinning for a while after a call and hold the cores the other one needs. So each
    function gets a short block of its own after a pause (as in a process that runs one backend), and the
    blocks alternate so that load from other users still hits all functions alike.
    """
    block = max(1, min(5, repeats // 2))
    for fn in fns.values():  # warm-up (allocations, lazy init, CUDA graphs)
        fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    while min(len(v) for v in times.values()) < repeats:
        for name, fn in fns.items():
            time.sleep(0.3)
            fn()  # re-warm this runtime's threads after the pause
            sync()
            for _ in range(block):
                start = time.perf_counter()
                fn()
                sync()
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def export_official(sam, path: Path) -> None:
    """``segment_anything``'s own ONNX decoder (single mask, upscaled to ``orig_im_size`` in the graph)."""
    from segment_anything.utils.onnx import SamOnnxModel

    model = SamOnnxModel(sam, return_single_mask=True)
    grid = sam.prompt_encoder.image_embedding_size
    inputs = {
        "image_embeddings": torch.randn(1, 256, *grid),
        "point_coords": torch.randint(0, 1024, (1, 3, 2)).float(),
        "point_labels": torch.randint(0, 4, (1, 3)).float(),
        "mask_input": torch.zeros(1, 1, 4 * grid[0], 4 * grid[1]),
        "has_mask_input": torch.tensor([0.0]),
        "orig_im_size": torch.tensor([HEIGHT, WIDTH], dtype=torch.float),
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=["masks", "iou_predictions", "low_res_masks"],
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )


def cpu_figures(sam, model: str, work: Path, args: argparse.Namespace) -> dict:
    import onnxruntime as ort
    from segment_anything.utils.transforms import ResizeLongestSide

    start = time.perf_counter()
    if not (args.reuse and (work / "manifest.json").is_file()):
        export_sam(sam, model, work, weights="random weights", check=False, log=lambda _: None)
    export_s = time.perf_counter() - start
    overrides = {
        "segmenter.backend": "onnx",
        "segmenter.model_type": model,
        "segmenter.onnx.model_dir": str(work),
        "segmenter.onnx.providers": "cpu",
    }
    ours = ExportedSamSegmenter.from_config(load_config(None, overrides).segmenter)
    reference = TorchSamSegmenter(sam, device="cpu", batch_size=1)
    image = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)

    encoder = interleaved(
        {"torch": lambda: reference.embed(image), "onnxruntime": lambda: ours.embed(image)}, args.encoder_repeats
    )
    torch_embedding, ort_embedding = reference.embed(image), ours.embed(image)

    official_path = work / "official_decoder.onnx"
    export_official(sam, official_path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    official = ort.InferenceSession(str(official_path), options, providers=["CPUExecutionProvider"])
    box = np.array(BOXES[0], dtype=np.float32)
    corners = ResizeLongestSide(sam.image_encoder.img_size).apply_coords(box.reshape(2, 2), (HEIGHT, WIDTH))
    official_inputs = {
        "image_embeddings": ort_embedding.features,
        "point_coords": corners[None].astype(np.float32),
        "point_labels": np.array([[2, 3]], dtype=np.float32),
        "mask_input": np.zeros((1, 1, *(4 * np.array(ort_embedding.features.shape[-2:]))), dtype=np.float32),
        "has_mask_input": np.zeros(1, dtype=np.float32),
        "orig_im_size": np.array([HEIGHT, WIDTH], dtype=np.float32),
    }
    one = [Prompt(box=BOXES[0])]
    decoder_one = interleaved(
        {
            "torch": lambda: reference.decode(torch_embedding, one),
            "onnxruntime (ours)": lambda: ours.decode(ort_embedding, one),
            "onnxruntime (SamOnnxModel)": lambda: official.run(None, official_inputs),
        },
        args.decoder_repeats,
    )
    five = [Prompt(box=b) for b in BOXES]
    single_ours = copy.copy(ours)
    single_ours.batch_size = 1
    batched_torch = TorchSamSegmenter(sam, device="cpu", batch_size=5)
    embedding_prompt = [Prompt(embedding=np.random.default_rng(1).normal(size=(1, 256)).astype(np.float32))]
    decoder_five = interleaved(
        {
            "onnxruntime, 5 in one call": lambda: ours.decode(ort_embedding, five),
            "onnxruntime, 5 calls": lambda: single_ours.decode(ort_embedding, five),
            "torch, 5 in one call": lambda: batched_torch.decode(torch_embedding, five),
            "torch, 5 calls": lambda: reference.decode(torch_embedding, five),
            "onnxruntime, 1 sparse-embedding prompt": lambda: ours.decode(ort_embedding, embedding_prompt),
            "torch, 1 sparse-embedding prompt": lambda: reference.decode(torch_embedding, embedding_prompt),
        },
        max(3, args.decoder_repeats // 4),
    )
    return {"export_s": export_s, "encoder_ms": encoder, "decoder_1_box_ms": decoder_one, "decoder_5_ms": decoder_five}


def gpu_figures(sam, model: str, work: Path, args: argparse.Namespace) -> dict:
    if not any(work.glob("*.onnx")):
        export_sam(sam, model, work, weights="random weights", check=False, log=print)
    sync = torch.cuda.synchronize
    overrides = {
        "segmenter.backend": "tensorrt",
        "segmenter.model_type": model,
        "segmenter.device": "cuda",
        "segmenter.onnx.model_dir": str(work),
        "segmenter.tensorrt.fp16": True,
        "segmenter.export.max_prompts": 8,
    }
    start = time.perf_counter()
    trt = ExportedSamSegmenter.from_config(load_config(None, overrides).segmenter)
    build_s = time.perf_counter() - start
    graphed_config = load_config(None, {**overrides, "segmenter.tensorrt.cuda_graph": True}).segmenter
    trt_graph = ExportedSamSegmenter.from_config(graphed_config)
    reference = TorchSamSegmenter(sam.to("cuda"), device="cuda")
    image = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    encoder = interleaved(
        {"torch fp32": lambda: reference.embed(image), "tensorrt fp16": lambda: trt.embed(image)},
        args.decoder_repeats,
        sync,
    )
    torch_embedding, trt_embedding = reference.embed(image), trt.embed(image)
    figures = {"engine_start_s": build_s, "encoder_ms": encoder}
    for n in (1, 5):
        prompts = [Prompt(box=b) for b in BOXES[:n]]
        figures[f"decoder_{n}_ms"] = interleaved(
            {
                "torch fp32": lambda p=prompts: reference.decode(torch_embedding, p),
                "tensorrt fp16": lambda p=prompts: trt.decode(trt_embedding, p),
                "tensorrt fp16 + CUDA graph": lambda p=prompts: trt_graph.decode(trt_embedding, p),
            },
            args.decoder_repeats,
            sync,
        )
        figures[f"round_{n}_ms"] = interleaved(
            {
                "torch fp32": lambda p=prompts: reference.decode(reference.embed(image), p),
                "tensorrt fp16": lambda p=prompts: trt.decode(trt.embed(image), p),
            },
            args.decoder_repeats,
            sync,
        )
    figures["device"] = torch.cuda.get_device_name(0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--encoder-repeats", type=int, default=2)
    parser.add_argument("--decoder-repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--work", help="folder for the ONNX files and engines (default: a temporary one)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--reuse", action="store_true", help="reuse the ONNX files already in --work (same seed)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    sam = build_sam(args.model)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="reasonseg_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "model": f"{args.model} (random weights)",
        "frame": f"{WIDTH}x{HEIGHT}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "torch": torch.__version__,
        "load_average_before": load_average(),
    }
    if args.device == "cpu":
        import onnxruntime

        report["onnxruntime"] = onnxruntime.__version__
        with torch.inference_mode(False):
            report["cpu"] = cpu_figures(sam, args.model, work, args)
        cpu = report["cpu"]
        enc, one, five = cpu["encoder_ms"], cpu["decoder_1_box_ms"], cpu["decoder_5_ms"]
        report["ratios"] = {
            "encoder torch / onnxruntime": enc["torch"] / enc["onnxruntime"],
            "decoder torch / ours": one["torch"] / one["onnxruntime (ours)"],
            "decoder SamOnnxModel / ours": one["onnxruntime (SamOnnxModel)"] / one["onnxruntime (ours)"],
            "ours: per prompt, 5 in one call / 1 alone": five["onnxruntime, 5 in one call"]
            / 5
            / one["onnxruntime (ours)"],
            "ours: 5 in one call / 5 calls": five["onnxruntime, 5 in one call"] / five["onnxruntime, 5 calls"],
        }
    else:
        import tensorrt

        report["tensorrt"] = tensorrt.__version__
        report["gpu"] = gpu_figures(sam, args.model, work, args)
    report["load_average_after"] = load_average()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
