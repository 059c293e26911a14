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

"""Host-side work around the exported SAM graphs, shared by the ONNX Runtime and TensorRT backends.

The graphs see fixed-size tensors only: the encoder a square float image, the
decoder prompt tokens and the image embedding. Everything that depends on the
frame's size (resize, padding, cropping and upscaling the masks) happens here,
so TensorRT never gets a shape-tensor input. Works on numpy arrays and, for
the mask upscale, on torch tensors too (the TensorRT backend keeps masks on
the GPU).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from reasonseg_ros.deps import available, require
from reasonseg_ros.errors import InputError
from reasonseg_ros.segmenter.prompt_batch import PromptBatch, resized_shape
from reasonseg_ros.types import Prompt

PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)

# Token labels of the decoder graph: SAM's point labels, box corners as in SAM's own ONNX export, and one more
# for a token that is taken verbatim from the sparse-embedding input ([SEG]-token reasoners).
LABEL_PAD = -1
LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT = 2, 3
LABEL_EMBEDDING = 4


@dataclass(frozen=True)
class DecoderTokens:
    """One decoder call's inputs: ``N`` prompts of ``K`` tokens each."""

    coords: np.ndarray
    """``(N, K, 2)`` float32 xy in the encoder's input frame (0 for embedding and pad tokens)."""
    labels: np.ndarray
    """``(N, K)`` float32 token labels (``LABEL_*``)."""
    embeddings: np.ndarray
    """``(N, K, C)`` float32: the sparse prompt where the label is ``LABEL_EMBEDDING``, 0 elsewhere."""


def decoder_tokens(batch: PromptBatch, channels: int = 256) -> DecoderTokens:
    """Lay a :class:`PromptBatch` out as decoder tokens: points, box corners, embeddings.

    The layout and padding are those of the torch backend (``sam_torch``), so
    every backend decodes a batch to the same masks.
    """
    n = batch.size
    coords, labels, embeds = [], [], []
    if batch.point_coords is not None and batch.point_labels is not None:
        coords.append(batch.point_coords.astype(np.float32))
        labels.append(batch.point_labels.astype(np.float32))
        embeds.append(np.zeros((n, batch.point_labels.shape[1], channels), dtype=np.float32))
    if batch.boxes is not None and batch.has_box is not None:
        coords.append(batch.boxes.reshape(n, 2, 2).astype(np.float32))
        corner = np.where(batch.has_box[:, None], [[LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]], LABEL_PAD)
        labels.append(corner.astype(np.float32))
        embeds.append(np.zeros((n, 2, channels), dtype=np.float32))
    if batch.embeddings is not None and batch.embedding_mask is not None:
        if batch.embeddings.shape[-1] != channels:
            raise InputError(f"prompt embeddings are {batch.embeddings.shape[-1]}-d, SAM expects {channels}-d")
        t = batch.embeddings.shape[1]
        coords.append(np.zeros((n, t, 2), dtype=np.float32))
        labels.append(np.where(batch.embedding_mask, LABEL_EMBEDDING, LABEL_PAD).astype(np.float32))
        embeds.append(np.where(batch.embedding_mask[..., None], batch.embeddings, 0).astype(np.float32))
    return DecoderTokens(
        np.ascontiguousarray(np.concatenate(coords, axis=1)),
        np.ascontiguousarray(np.concatenate(labels, axis=1)),
        np.ascontiguousarray(np.concatenate(embeds, axis=1)),
    )


def choose_outputs(iou: np.ndarray, prompts: Sequence[Prompt], multimask: bool) -> np.ndarray:
    """Index of the decoder output to keep per prompt.

    Output 0 is SAM's single-mask answer, 1..3 its multimask candidates;
    sparse-embedding prompts keep output 0 (the ``[SEG]``-token models were
    trained with ``multimask_output=False``).
    """
    single = np.zeros(len(prompts), dtype=np.int64)
    if not multimask:
        return single
    best = np.asarray(iou)[:, 1:].argmax(axis=1) + 1
    uses_embedding = np.array([p.embedding is not None for p in prompts], dtype=bool)
    return np.where(uses_embedding, single, best)


def encoder_input(image: np.ndarray, image_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``(1, 3, S, S)`` float32 pixels for the encoder graph, and the resized ``(h, w)`` inside it.

    The resize is SAM's own (PIL bilinear, longest side to ``S``). The padding
    is filled with the mean pixel, which the graph's normalisation turns into
    exactly the zeros that SAM pads with, so the graph needs no size input.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    pil = require("PIL.Image", "resizing frames for the exported SAM encoder")
    h, w = resized_shape(image.shape[0], image.shape[1], image_size)
    resized = np.asarray(pil.fromarray(np.ascontiguousarray(image)).resize((w, h), pil.BILINEAR))
    pixels = np.empty((1, 3, image_size, image_size), dtype=np.float32)
    pixels[0] = PIXEL_MEAN[:, None, None]
    pixels[0, :, :h, :w] = resized.transpose(2, 0, 1)
    return pixels, (h, w)


def _bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """``(out, in)`` weights of a bilinear resize with half-pixel centres (torch ``align_corners=False``)."""
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = src - low
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


@lru_cache(maxsize=16)
def upscale_matrices(
    low_res: int, image_size: int, input_size: tuple[int, int], original_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Row and column matrices of SAM's mask post-processing, composed into one linear map per axis.

    SAM upscales the low-res masks to the padded input, crops the resized
    image and resizes that to the frame; all three are linear per axis, so
    ``rows @ mask[:r, :c] @ cols.T`` gives the same values in one step. Only
    the first ``r`` rows and ``c`` columns of the low-res mask reach the crop.
    """
    axes = []
    for axis in (0, 1):
        to_input = _bilinear_matrix(image_size, low_res)[: input_size[axis]]
        to_frame = _bilinear_matrix(original_size[axis], input_size[axis]) @ to_input
        used = int(np.flatnonzero(to_frame.any(axis=0)).max()) + 1
        axes.append((np.ascontiguousarray(to_frame[:, :used], dtype=np.float32), used))
    (rows, r), (cols, c) = axes
    return rows, np.ascontiguousarray(cols.T), r, c


@lru_cache(maxsize=1)
def _blas_threads() -> Any:
    """threadpoolctl's controller of the BLAS that numpy loaded (None without threadpoolctl)."""
    if not available("threadpoolctl"):
        return None
    return require("threadpoolctl").ThreadpoolController()


_BLAS_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_blas_thread() -> Any:
    """Run numpy's matrix products on one thread.

    Right after an ONNX Runtime call its worker threads still spin, and a
    multi-threaded BLAS product then competes with them for the cores: on a
    2-core CPU that doubled the whole decode (104 vs 39 ms median for a box
    on vit_b). The limit is process-wide and applied when it is created, so
    it is taken under a lock: a second thread setting it meanwhile would
    save the first one's single thread as the value to restore.
    """
    controller = _blas_threads()
    if controller is None:
        yield
        return
    with _BLAS_LIMIT_LOCK, controller.limit(limits=1, user_api="blas"):
        yield


def upscale_masks(
    low_res: Any, image_size: int, input_size: tuple[int, int], original_size: tuple[int, int], threshold: float = 0.0
) -> Any:
    """``(N, h, w)`` low-res mask logits → ``(N, H, W)`` bool masks of the frame (numpy or torch in, same out)."""
    rows, cols, r, c = upscale_matrices(int(low_res.shape[-1]), image_size, input_size, original_size)
    if isinstance(low_res, np.ndarray):
        with _one_blas_thread():
            return (rows @ low_res[:, :r, :c].astype(np.float32, copy=False) @ cols) > threshold
    torch = require("torch")
    rows_t = torch.as_tensor(rows, device=low_res.device)
    cols_t = torch.as_tensor(cols, device=low_res.device)
    return (rows_t @ low_res[:, :r, :c].float() @ cols_t) > threshold
