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

"""``reasonseg export``: SAM → ONNX encoder and decoder, checked against torch right after writing."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError, ModelError
from reasonseg_ros.segmenter.checkpoints import arch_of, file_digest

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ExportReport:
    out_dir: Path
    encoder: Path
    decoder: Path
    max_mask_diff: float
    """Largest |ONNX Runtime − torch| low-res mask logit over the random prompts."""
    max_iou_diff: float
    """Largest |ONNX Runtime − torch| predicted IoU over the random prompts."""


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest that ``export`` wrote next to the ONNX files."""
    path = model_dir / MANIFEST_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"no {MANIFEST_FILE} in {model_dir}: export the model there with "
            f"`reasonseg export --sam vit_b --checkpoint FILE --out {model_dir}`"
        ) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}; export the model again") from exc


def export_sam(
    sam: Any,
    model_type: str,
    out_dir: str | Path,
    opset: int = 17,
    weights: str = "",
    check: bool = True,
    log: Callable[[str], None] = print,
) -> ExportReport:
    """Write ``encoder.onnx``, ``decoder.onnx`` and ``manifest.json`` for ``sam`` into ``out_dir``.

    Each file goes through ``onnx.checker``; with ``check`` the decoder is run
    in ONNX Runtime against torch on random point, box and embedding prompts
    and the encoder on one random image.
    """
    torch = require("torch", "exporting SAM to ONNX")
    onnx = require("onnx", "exporting SAM to ONNX")
    from reasonseg_ros.segmenter import onnx_graphs as graphs

    arch = arch_of(model_type)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    sam = sam.eval().to("cpu")
    encoder, decoder = graphs.EncoderGraph(sam).eval(), graphs.DecoderGraph(sam).eval()
    size, grid = arch.image_size, arch.image_size // 16
    image = torch.rand(1, 3, size, size) * 255
    with torch.no_grad():
        features = encoder(image)
    example = _random_tokens(torch, 2, 3, size, features.shape[1], seed=0)

    paths = {"encoder": out / ENCODER_FILE, "decoder": out / DECODER_FILE}
    for part, module, args, inputs, outputs, axes in (
        ("encoder", encoder, (image,), graphs.ENCODER_INPUTS, graphs.ENCODER_OUTPUTS, None),
        ("decoder", decoder, (features, *example), graphs.DECODER_INPUTS, graphs.DECODER_OUTPUTS, None),
    ):
        dynamic = graphs.DECODER_DYNAMIC_AXES if part == "decoder" else axes
        log(f"exporting the {part} to {paths[part]} (opset {opset})")
        start = time.perf_counter()
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about every Python-side shape computation; SAM's are constant per architecture.
            # The TorchScript exporter is chosen on purpose (it needs no onnxscript and its dynamic axes are what
            # TensorRT parses); torch flags it as legacy.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                args,
                str(paths[part]),
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        if part == "decoder":
            num_outputs = int(sam.mask_decoder.num_mask_tokens)
            shapes = {"low_res_masks": [None, num_outputs, 4 * grid, 4 * grid], "iou_predictions": [None, num_outputs]}
        else:
            shapes = {"image_embeddings": list(features.shape)}
        _set_static_dims(onnx, paths[part], shapes)
        try:
            onnx.checker.check_model(str(paths[part]), full_check=True)
        except Exception as exc:
            raise ModelError(f"the exported {part} {paths[part]} fails onnx.checker: {exc}") from exc
        log(f"  wrote {paths[part].stat().st_size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s; checker ok")

    manifest = {
        "version": MANIFEST_VERSION,
        "model_type": model_type,
        "weights": weights,
        "opset": opset,
        "image_size": size,
        "embedding_grid": grid,
        "channels": int(features.shape[1]),
        "low_res_size": grid * 4,
        "mask_threshold": float(sam.mask_threshold),
        "encoder": {"file": ENCODER_FILE, "sha256": file_digest(paths["encoder"])},
        "decoder": {"file": DECODER_FILE, "sha256": file_digest(paths["decoder"])},
        "fp32_modules": graphs.fp32_modules(sam),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")

    mask_diff = iou_diff = float("nan")
    if check:
        mask_diff, iou_diff = check_against_torch(sam, out, features, log)
    return ExportReport(out, paths["encoder"], paths["decoder"], mask_diff, iou_diff)


def _set_static_dims(onnx: Any, path: Path, shapes: dict[str, list[int | None]]) -> None:
    """Write the known sizes of outputs' axes (None: leave that axis dynamic).

    The exporter leaves them symbolic once any axis is dynamic, or names them after the op that made them;
    written in, consumers (TensorRT, ONNX Runtime's allocator) see them as constants.
    """
    model = onnx.load(str(path))
    for output in model.graph.output:
        for axis, size in enumerate(shapes.get(output.name, [])):
            if size is not None:
                dim = output.type.tensor_type.shape.dim[axis]
                dim.ClearField("dim_param")
                dim.dim_value = int(size)
    onnx.save(model, str(path))


def _random_tokens(torch: Any, n: int, k: int, size: int, channels: int, seed: int) -> tuple[Any, Any, Any]:
    """Random decoder tokens covering every label (points, pads, box corners, embeddings)."""
    gen = torch.Generator().manual_seed(seed)
    coords = torch.rand(n, k, 2, generator=gen) * size
    labels = torch.randint(-1, 5, (n, k), generator=gen).float()
    embeddings = torch.randn(n, k, channels, generator=gen) * (labels == 4).unsqueeze(-1)
    return coords, labels, embeddings


def check_against_torch(
    sam: Any, model_dir: Path, features: Any, log: Callable[[str], None] = print, tolerance: float = 1e-3
) -> tuple[float, float]:
    """Run the exported graphs in ONNX Runtime (CPU) and SAM in torch on random inputs; raise if they disagree.

    The decoder is compared with ``segment_anything``'s own mask decoder, not with the rewritten graph it was
    exported from, so the check covers the rewrite too.
    """
    torch = require("torch")
    ort = require("onnxruntime", "checking the ONNX export")
    from reasonseg_ros.segmenter.onnx_graphs import DecoderGraph, EncoderGraph

    size = int(sam.image_encoder.img_size)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    decoder_session = ort.InferenceSession(str(model_dir / DECODER_FILE), options, providers=["CPUExecutionProvider"])
    decoder = DecoderGraph(sam).eval()
    mask_diff = iou_diff = 0.0
    for seed, (n, k) in enumerate([(1, 1), (1, 4), (3, 2), (5, 7)]):
        coords, labels, embeddings = _random_tokens(torch, n, k, size, features.shape[1], seed=seed + 1)
        with torch.no_grad():
            masks, iou = decoder.reference(features, coords, labels, embeddings)
        got_masks, got_iou = decoder_session.run(
            None,
            {
                "image_embeddings": features.numpy(),
                "point_coords": coords.numpy(),
                "point_labels": labels.numpy(),
                "token_embeddings": embeddings.numpy(),
            },
        )
        mask_diff = max(mask_diff, float(np.abs(got_masks - masks.numpy()).max()))
        iou_diff = max(iou_diff, float(np.abs(got_iou - iou.numpy()).max()))
    log(f"decoder parity (ONNX Runtime CPU vs torch, 4 random batches): |Δmask| {mask_diff:.2e}, |ΔIoU| {iou_diff:.2e}")

    encoder_session = ort.InferenceSession(str(model_dir / ENCODER_FILE), options, providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(7)) * 255
    with torch.no_grad():
        expected = EncoderGraph(sam).eval()(image).numpy()
    (got,) = encoder_session.run(None, {"image": image.numpy()})
    scale = float(np.abs(expected).max()) or 1.0
    encoder_diff = float(np.abs(got - expected).max()) / scale
    log(f"encoder parity (ONNX Runtime CPU vs torch, 1 random image): max |Δ| / max |x| {encoder_diff:.2e}")
    if iou_diff > tolerance or encoder_diff > tolerance:
        raise ModelError(
            f"the ONNX export in {model_dir} disagrees with torch (IoU Δ {iou_diff:.2e}, "
            f"encoder Δ {encoder_diff:.2e}): try another opset (--opset)"
        )
    return mask_diff, iou_diff


def export_checkpoint(
    model_type: str,
    checkpoint: str | None,
    out_dir: str | Path,
    opset: int = 17,
    check: bool = True,
    log: Callable[[str], None] = print,
) -> ExportReport:
    """Load a SAM checkpoint (None: random weights, for plumbing and timing only) and export it."""
    torch = require("torch", "exporting SAM to ONNX")
    from reasonseg_ros.segmenter.sam_torch import build_sam, check_arch, load_state_dict, load_weights

    arch_of(model_type)
    if checkpoint is None:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            sam = build_sam(model_type)
        weights = "random weights"
    else:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(f"SAM checkpoint not found: {path}; pass the .pth file with --checkpoint")
        state = load_state_dict(path)
        check_arch(state, model_type, path, setting="--sam")
        sam = build_sam(model_type)
        load_weights(sam, state, model_type, path)
        weights = path.name
    return export_sam(sam, model_type, out_dir, opset=opset, weights=weights, check=check, log=log)
