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

"""``segmenter.backend: tensorrt``: the exported SAM graphs as native TensorRT 10 engines.

Execution uses TensorRT's own API (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``) on one CUDA stream per engine. Device memory, the stream
and the optional CUDA graphs come from torch, which also upscales the masks on
the GPU: one well-tested owner of CUDA memory instead of raw pointers, and
JetPack ships a CUDA torch for Jetson. Buffers are allocated once, at the
largest shapes of the engine's profile, and reused by every call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError, InputError, ModelError
from reasonseg_ros.segmenter.exported_io import DecoderTokens
from reasonseg_ros.segmenter.trt_build import device_index, ensure_engine

log = logging.getLogger(__name__)


class TrtEngine:
    """One deserialised engine, its execution context, stream and preallocated I/O buffers."""

    def __init__(self, path: Path, device: int = 0) -> None:
        trt = require("tensorrt", "the tensorrt segmenter")
        torch = require("torch", "the tensorrt segmenter (device buffers and streams)")
        self._trt, self._torch = trt, torch
        self.path = path
        self.device = torch.device("cuda", device)
        torch.cuda.set_device(self.device)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise CheckpointError(
                f"TensorRT cannot load {path} (built by another TensorRT version or for another GPU?): "
                "delete it and let it rebuild (segmenter.tensorrt.build: true) or run `reasonseg export ... --tensorrt`"
            )
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(self.device)
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.max_shapes: dict[str, tuple[int, ...]] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.inputs.append(name)
                shape = tuple(self.engine.get_tensor_shape(name))
                if -1 in shape:
                    shape = tuple(self.engine.get_tensor_profile_shape(name, 0)[2])
                self.max_shapes[name] = shape
                self._set_shape(name, shape)
            else:
                self.outputs.append(name)
        for name in self.outputs:
            self.max_shapes[name] = tuple(self.context.get_tensor_shape(name))
        self.buffers: dict[str, Any] = {}
        for name, shape in self.max_shapes.items():
            dtype = _torch_dtype(torch, trt, self.engine.get_tensor_dtype(name))
            self.buffers[name] = torch.empty(int(np.prod(shape)), dtype=dtype, device=self.device)
            # The buffers never move, so their addresses are bound once for every later call.
            self.context.set_tensor_address(name, self.buffers[name].data_ptr())
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._graphs: dict[tuple[tuple[int, ...], ...], Any] = {}
        self._last_key: tuple[tuple[int, ...], ...] | None = None

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if not self.context.set_input_shape(name, shape):
            raise InputError(
                f"{self.path.name}: input {name} of shape {shape} is outside the engine's profile "
                f"(max {self.max_shapes.get(name)}): raise segmenter.export.max_prompts / max_points and rebuild"
            )

    def view(self, name: str) -> Any:
        """The buffer of ``name`` at the shape of the last call."""
        shape = self.shapes[name]
        return self.buffers[name][: int(np.prod(shape))].view(shape)

    def run(self, inputs: dict[str, Any], cuda_graph: bool = False) -> dict[str, Any]:
        """Copy ``inputs`` (numpy or torch) into the buffers, execute, and return views of the outputs.

        The views are overwritten by the next call; the stream is synchronised before returning.
        """
        torch = self._torch
        # Inputs may still be in flight on the caller's stream (the encoder's clone of its embedding, for one).
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            for name in self.inputs:
                value = torch.as_tensor(inputs[name])
                shape = tuple(value.shape)
                if self.shapes.get(name) != shape:
                    self._set_shape(name, shape)
                    self.shapes[name] = shape
                self.view(name).copy_(value, non_blocking=True)
            for name in self.outputs:
                self.shapes[name] = tuple(self.context.get_tensor_shape(name))
            key = tuple(self.shapes[name] for name in self.inputs)
            if key not in self._graphs:
                # A captured graph bakes in the context's shapes; keep only the one for the current shapes.
                self._graphs.clear()
            graph = self._graphs.get(key) if cuda_graph else None
            if graph is not None:
                graph.replay()
            else:
                self._execute()
                # Capture once a shape repeats: alternating shapes would pay a capture (a device sync) per call.
                if cuda_graph and key == self._last_key:
                    self._graphs[key] = self._capture()
            self._last_key = key
        self.stream.synchronize()
        return {name: self.view(name) for name in self.outputs}

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise ModelError(f"TensorRT failed to run {self.path.name} (see the TensorRT log)")

    def _capture(self) -> Any:
        """A CUDA graph of one execution at the current shapes (after a normal run, as TensorRT requires).

        The capture is a side run: its execution is recorded, not performed, so the outputs of this call come
        from the normal run just before.
        """
        torch = self._torch
        graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA work of the node's other threads during the capture neither breaks it nor is captured.
        with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
            self._execute()
        return graph


def _torch_dtype(torch: Any, trt: Any, dtype: Any) -> Any:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32, trt.int64: torch.int64}
    if dtype not in table:
        raise ModelError(f"unsupported engine I/O type {dtype}: export the model again")
    return table[dtype]


def open_engine(
    part: str, model_dir: Path, manifest: dict[str, Any], config: SegmenterConfig, log_line: Callable[[str], None]
) -> TrtEngine:
    """Find or build the engine, and rebuild once when a cached file will not deserialise here."""
    path, _ = ensure_engine(part, model_dir, manifest, config, log=log_line)
    index = device_index(config.device)
    try:
        return TrtEngine(path, index)
    except CheckpointError:
        if not config.tensorrt.build:
            raise
        log.warning("TensorRT engine %s does not load here; rebuilding it", path)
        path.unlink(missing_ok=True)
        path, _ = ensure_engine(part, model_dir, manifest, config, build=True, log=log_line)
        return TrtEngine(path, index)


class TrtEncoder:
    def __init__(self, engine: TrtEngine, fp16: bool) -> None:
        self.engine = engine
        self.where = f"tensorrt {'fp16' if fp16 else 'fp32'}"

    @classmethod
    def open(cls, model_dir: Path, manifest: dict[str, Any], config: SegmenterConfig) -> TrtEncoder:
        return cls(open_engine("encoder", model_dir, manifest, config, log.info), config.tensorrt.fp16)

    def encode(self, pixels: np.ndarray) -> Any:
        (features,) = self.engine.run({"image": pixels}).values()
        return features.clone()  # the engine cache keeps embeddings; the buffer is reused by the next frame


class TrtDecoder:
    def __init__(self, engine: TrtEngine, fp16: bool, cuda_graph: bool) -> None:
        self.engine = engine
        self.cuda_graph = cuda_graph
        self.where = f"tensorrt {'fp16' if fp16 else 'fp32'}"
        self.max_prompts = int(engine.max_shapes["point_labels"][0])
        self.max_tokens = int(engine.max_shapes["point_labels"][1])

    @classmethod
    def open(cls, model_dir: Path, manifest: dict[str, Any], config: SegmenterConfig) -> TrtDecoder:
        engine = open_engine("decoder", model_dir, manifest, config, log.info)
        return cls(engine, config.tensorrt.fp16, config.tensorrt.cuda_graph)

    def decode(self, features: Any, tokens: DecoderTokens) -> tuple[Any, np.ndarray]:
        outputs = self.engine.run(
            {
                "image_embeddings": features,
                "point_coords": tokens.coords,
                "point_labels": tokens.labels,
                "token_embeddings": tokens.embeddings,
            },
            cuda_graph=self.cuda_graph,
        )
        # Masks stay on the GPU (upscaled there); the IoU is tiny and is needed on the host to pick outputs.
        return outputs["low_res_masks"], outputs["iou_predictions"].float().cpu().numpy()
