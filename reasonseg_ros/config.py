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

"""One validated configuration shared by the CLI, the ROS node and bag replay.

The schema is the dataclasses below; a YAML file gives any subset of it.
An unknown key or a value of the wrong type is a :class:`ConfigError` that
names the key and the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from reasonseg_ros.deps import require
from reasonseg_ros.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The values a numeric config key accepts; ``Config.validate`` and the ROS parameter descriptors both read it."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """True: ``low`` itself is refused (a timeout or a period must be above 0)."""

    def check(self, name: str, value: float) -> None:
        """Raise a :class:`ConfigError` naming ``name`` when ``value`` is outside the range."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            if self.low_open and self.low == 0:
                raise ConfigError(f"{name} must be positive, got {value}")
            if self.low == 0:
                raise ConfigError(f"{name} must not be negative, got {value}")
            raise ConfigError(f"{name} must be at least {_number(self.low)}, got {value}")
        if self.high is not None and value > self.high:
            raise ConfigError(f"{name} must be at most {_number(self.high)}, got {value}")


def ranged(default: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False) -> Any:
    """A dataclass field whose value must lie in a :class:`Range` (None, for an optional key, is always allowed)."""
    return field(default=default, metadata={"range": Range(low, high, low_open)})


def field_range(owner: type, name: str) -> Range | None:
    """The :class:`Range` declared on field ``name`` of dataclass ``owner``, if any."""
    for f in dataclasses.fields(owner):
        if f.name == name:
            return f.metadata.get("range")
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class ExportConfig:
    """Shapes and opset of the exported graphs; also the TensorRT optimisation profiles."""

    opset: int = 17
    """ONNX opset of ``reasonseg export``."""
    max_prompts: int = ranged(8, low=1)
    """Most targets decoded in one call (TensorRT profile max of ``num_prompts``)."""
    max_points: int = ranged(16, low=1)
    """Most points per prompt (with a box and the sparse embeddings, the profile max of ``num_tokens``)."""
    max_embedding_tokens: int = ranged(4, low=0)
    """Most sparse-embedding tokens per prompt."""
    opt_prompts: int = ranged(1, low=1)
    """Number of prompts TensorRT tunes its kernels for."""


@dataclass
class OnnxConfig:
    """``segmenter.backend: onnx`` (ONNX Runtime)."""

    model_dir: str | None = None
    """Folder written by ``reasonseg export`` (None: ``<cache_dir>/onnx/<model_type>``)."""
    providers: str = "cuda,cpu"
    """Execution providers by preference, comma-separated: tensorrt, cuda, cpu; a missing one is skipped (logged)."""
    trt_fp16: bool = True
    """TensorRT execution provider: build fp16 engines."""
    trt_engine_cache_dir: str | None = None
    """TensorRT execution provider's engine and timing cache (None: ``<model_dir>/ort_trt_cache``)."""
    threads: int = ranged(0, low=0)
    """Intra-op threads of the CPU provider (0: ONNX Runtime's default)."""


@dataclass
class TensorRTConfig:
    """``segmenter.backend: tensorrt`` (native TensorRT 10 engines)."""

    engine_dir: str | None = None
    """Engine cache (None: ``<model_dir>/engines``); engines are keyed by ONNX hash, TensorRT version and GPU."""
    fp16: bool = True
    """fp16 engines, with layer norms and softmax preferred in fp32."""
    build: bool = True
    """Build a missing or stale engine at start (minutes); false: fail with the command that builds it."""
    workspace_mb: int = ranged(4096, low=1)
    """Builder workspace limit."""
    cuda_graph: bool = False
    """Capture the decoder into a CUDA graph per (prompts, tokens) shape and replay it."""


@dataclass
class Sam2SegmenterConfig:
    """``segmenter.backend: sam2`` (SAM 2.1 image predictor); weights come from ``segmenter.checkpoint``."""

    model: Literal["sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"] = "sam2.1_hiera_t"
    """SAM 2.1 architecture; ``segmenter.checkpoint: null`` looks for its official file in ``cache_dir``."""


@dataclass
class SegmenterConfig:
    backend: Literal["torch", "onnx", "tensorrt", "sam2"] = "torch"
    model_type: str = "vit_b"
    """``vit_b``, ``vit_l``, ``vit_h`` (official SAM) or ``vit_tiny`` (tests and demos)."""
    checkpoint: str | None = None
    """Path of the weights; None looks for the official file in ``cache_dir``;
    ``from_reasoner`` takes the SAM inside the seg_token reasoner's checkpoint."""
    cache_dir: str = "~/.cache/reasonseg_ros"
    """Where official checkpoints are looked for (and downloaded to)."""
    download: bool = False
    """Fetch the official checkpoint into ``cache_dir`` when it is missing."""
    random_weights: bool = False
    """Build the architecture with random weights (plumbing and timing only; results are meaningless)."""
    random_fallback: str | None = None
    """Architecture built with random weights when the checkpoint is missing and cannot be downloaded (demos on
    offline machines, e.g. vit_tiny); None fails instead. Console, results and report say when it happened."""
    threads: int = ranged(1, low=0)
    """Torch intra-op CPU threads of the process (0: torch's default, one per core); 1 measured fastest on a
    loaded 2-core CPU (docs/performance.md)."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, ..."""
    multimask: bool = True
    """Decode SAM's three candidate masks and keep the one with the best predicted IoU."""
    decode_batch_size: int = ranged(0, low=0)
    """Targets per decoder call; 0 picks per device: all in one call on a GPU, one per call on a CPU (faster there)."""
    encoder_backend: Literal["onnx", "tensorrt"] | None = None
    """Mixed mode (onnx/tensorrt backends): run the image encoder on this backend instead of ``backend``."""
    decoder_backend: Literal["onnx", "tensorrt"] | None = None
    """Mixed mode: run the prompt encoder + mask decoder on this backend instead of ``backend``."""
    export: ExportConfig = field(default_factory=ExportConfig)
    onnx: OnnxConfig = field(default_factory=OnnxConfig)
    tensorrt: TensorRTConfig = field(default_factory=TensorRTConfig)
    sam2: Sam2SegmenterConfig = field(default_factory=Sam2SegmenterConfig)


@dataclass
class OracleConfig:
    prompt: Literal["box", "points", "box+points", "mask"] = "box"
    """What the oracle samples from each ground-truth mask; mask: the mask itself (no SAM decode), which
    measures tracking from exact seeds."""
    points_inside: int = 3
    """Positive points per object (points modes)."""
    points_outside: int = 1
    """Negative points per object (points modes)."""


@dataclass
class VlmConfig:
    """A grounding VLM that writes SAM prompts as JSON text.

    ``vlm`` runs it locally; ``remote`` reads the prompt, parsing and point settings from here too.
    """

    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    """Hugging Face hub id or local folder (``vlm`` backend)."""
    family: Literal["qwen2_5_vl", "qwen3_vl", "relative_1", "absolute"] = "qwen2_5_vl"
    """Coordinate convention of the model's answers (docs/vlm.md has the table)."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """Torch dtype of the weights; auto takes the checkpoint's."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, ..."""
    attn_implementation: str | None = None
    """eager, sdpa, flash_attention_2; None lets transformers choose."""
    local_files_only: bool = False
    """Never contact the hub (an offline robot with the model already in its cache or folder)."""
    min_pixels: int = ranged(3136, low=1)
    """Smallest image area the Qwen image processor resizes to (also the client-side resize of ``remote``)."""
    max_pixels: int = ranged(1003520, low=1)
    """Largest image area the Qwen image processor resizes to (1280 patches of 28×28)."""
    max_new_tokens: int = ranged(512, low=1)
    """Longest answer generated."""
    do_sample: bool = False
    """Greedy decoding (false) keeps rounds reproducible."""
    temperature: float = ranged(1.0, low=0.0, low_open=True)
    """Sampling temperature, used only with do_sample."""
    point_mode: Literal["direct", "query"] = "direct"
    """direct: the answer carries the points (PPG); query: candidate points asked yes/no (PQPP)."""
    query_layout: Literal["ring", "paper"] = "ring"
    """Query-mode candidates and rule: ring (grid in the box + ring around it, the query_* thresholds and cap)
    or paper (SAM4MLLM's 15 in-box points, P(yes) > 0.75 positive, P(no) > 0.9 negative; docs/vlm.md)."""
    query_candidates: int = ranged(20, low=1)
    """Candidate points per target in query mode (inside and around its box)."""
    query_margin: float = ranged(0.15, low=0.0)
    """How far around the box the outer candidates lie, as a fraction of the box size."""
    query_positive: float = ranged(0.6, low=0.0, high=1.0)
    """P(yes) at or above which a candidate becomes a positive point."""
    query_negative: float = ranged(0.4, low=0.0, high=1.0)
    """P(yes) at or below which a candidate becomes a negative point."""
    query_max_points: int = ranged(4, low=0)
    """Most positive and most negative points kept per target (each)."""
    memory_objects: int = ranged(20, low=0)
    """Remembered objects listed in the prompt (most recently segmented first); bounds the prompt length."""
    keep_prompt: bool = False
    """Keep the prompt text in the result (debugging)."""
    keep_raw: bool = True
    """Keep the model's raw answer in the result (debugging)."""
    grammar: Literal["none", "xgrammar"] = "none"
    """``vlm`` backend: xgrammar constrains generation to the answer's JSON schema (the ``grammar`` extra);
    none: free text, read by the tolerant parser. ``remote`` uses ``remote.structured_output`` instead."""


@dataclass
class RemoteConfig:
    """An OpenAI-compatible chat-completions server (vLLM, SGLang, TGI, Ollama, hosted APIs)."""

    url: str = "http://127.0.0.1:8000/v1"
    """Base URL; ``/chat/completions`` is appended."""
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    """Model name the server knows."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (the key itself never goes in config or logs)."""
    timeout_s: float = ranged(30.0, low=0.0, low_open=True)
    """Per request (and never past the round's ``reasoner.deadline_s``)."""
    retries: int = ranged(3, low=0)
    """Extra attempts after a 429, a 5xx, a timeout or a dropped connection."""
    backoff_s: float = ranged(0.5, low=0.0)
    """First retry delay; doubles each retry (a server's Retry-After is honoured, up to 30 s)."""
    max_in_flight: int = ranged(4, low=1)
    """Requests open at once (query mode sends one per candidate point)."""
    image_format: Literal["png", "jpeg"] = "jpeg"
    """How the frame travels in the data URL; jpeg needs pillow, png needs nothing."""
    jpeg_quality: int = ranged(90, low=1, high=100)
    """JPEG quality (1-100) of the frames sent (image_format: jpeg)."""
    max_response_bytes: int = ranged(1 << 20, low=1)
    """Largest response body read; a longer one is an ``unreadable_output`` error, read no further and not kept."""
    structured_output: Literal["auto", "json_schema", "off"] = "auto"
    """Send the answer's JSON schema as ``response_format`` (vLLM guided decoding). auto: drop it for good
    after a server refuses it with HTTP 400; json_schema: always send it; off: never (the tolerant parser reads
    free text either way)."""


@dataclass
class SasPConfig:
    """READ's Similarity-as-Points: extra SAM points from the [SEG]/image-token similarity map."""

    enabled: bool | None = None
    """None: on for the ``read`` layout, off otherwise."""
    positive_threshold: float = ranged(0.8, low=0.0, high=1.0)
    """Normalised similarity at or above which a grid cell becomes a positive point (READ-7B: 0.8; 13B: 0.6)."""
    negative_threshold: float = ranged(0.2, low=0.0, high=1.0)
    """Normalised similarity at or below which a grid cell becomes a negative point."""
    num_points: int = ranged(30, low=1)
    """Points per target, the rest padded with the neutral label (READ-7B: 30; 13B: 60)."""
    down_sample: int = ranged(2, low=1)
    """The patch grid is shrunk by this factor before points are picked (READ-7B: 2; 13B: 1)."""
    refine: bool = True
    """Move each point to the similarity-weighted mean of its neighbourhood, as READ does."""


@dataclass
class SegTokenConfig:
    """LISA / GSVA / READ checkpoints: a LLaVA-type model whose [SEG] states prompt SAM."""

    checkpoint: str | None = None
    """Local folder (config.json + safetensors or .bin shards) or Hugging Face hub id, e.g. xinlai/LISA-7B-v1."""
    layout: Literal["auto", "lisa", "gsva", "read"] = "auto"
    """Key layout of the checkpoint; auto guesses it from config.json and the keys."""
    vision_tower: str | None = None
    """CLIP vision tower (hub id or folder); None reads ``mm_vision_tower`` from the checkpoint's config."""
    image_size: int | None = None
    """CLIP input side (224 or 336); None: from the vision tower."""
    projector: Literal["auto", "linear", "mlp2x_gelu"] = "auto"
    """LLaVA projector; auto reads ``mm_projector_type`` from the checkpoint's config (absent: linear)."""
    template: Literal["auto", "llava_v1", "llava_llama_2"] = "auto"
    """Conversation template; auto picks llava_v1 (Vicuna) or llava_llama_2 from the checkpoint's config."""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """Weights dtype (float32 on CPU; bfloat16 or float16 on a GPU)."""
    device: str = "cpu"
    """Torch device of the reasoner."""
    load_in_8bit: bool = False
    """Quantise the language model's linear layers to 8 bit (bitsandbytes, CUDA only)."""
    load_in_4bit: bool = False
    """Quantise the language model's linear layers to 4 bit NF4 (bitsandbytes, CUDA only)."""
    max_new_tokens: int = ranged(64, low=1)
    """Longest answer generated."""
    lora_alpha: float = 16.0
    """LoRA scale of checkpoints saved with unmerged LoRA factors (GSVA's .bin); LISA/GSVA trained with 16."""
    instruction_format: str = "{text}"
    """How the instruction is put to the model; ``{text}`` is replaced by it (see docs/seg_token.md)."""
    history_rounds: int = ranged(4, low=0)
    """Earlier rounds of the session given to the model as LLaVA multi-turn history (0: none)."""
    sasp: SasPConfig = field(default_factory=SasPConfig)
    segllm_memory: bool | None = None
    """Feed remembered objects back as mask and box embeddings; None: on when the checkpoint has the weights."""


@dataclass
class DetectorConfig:
    """An open-vocabulary detector (OWLv2, OWL-ViT, Grounding DINO) that turns noun phrases into boxes for SAM."""

    model: str = "IDEA-Research/grounding-dino-tiny"
    """Hugging Face hub id or local folder of a zero-shot object detection model (transformers)."""
    threshold: float | None = ranged(None, low=0.0, high=1.0)
    """Score at or above which a box is a target; None: per family (OWLv2 0.2, OWL-ViT 0.1, Grounding DINO 0.35)."""
    nms_iou: float = ranged(0.5, low=0.0, high=1.0)
    """Boxes of one phrase overlapping a higher-scoring one by more than this IoU are dropped."""
    max_per_phrase: int = ranged(10, low=1)
    """Most targets one noun phrase may produce (highest scores first)."""
    memory_iou: float = ranged(0.3, low=0.0, high=1.0)
    """A box overlapping a remembered object of the same label by at least this IoU keeps that object's id."""
    device: str = "cpu"
    """Torch device of the detector."""
    local_files_only: bool = False
    """Never contact the hub (an offline robot with the model already in its cache or folder)."""


@dataclass
class ReasonerConfig:
    backend: Literal["prompt", "oracle", "vlm", "remote", "seg_token", "detector"] = "prompt"
    """prompt: JSON boxes/points/ids; oracle: prompts from ground truth (bag replay only);
    vlm: a local grounding VLM (transformers); remote: the same VLM prompt on an OpenAI-compatible server;
    seg_token: LISA/GSVA/READ checkpoints; detector: noun phrases to boxes with an open-vocabulary detector."""
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    vlm: VlmConfig = field(default_factory=VlmConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    seg_token: SegTokenConfig = field(default_factory=SegTokenConfig)
    deadline_s: float | None = ranged(60.0, low=0.0, low_open=True)
    """Most seconds one round's reasoning may take across every request, retry and backoff (remote), or
    generation (vlm: stops there with a model_failure); None: no deadline."""


@dataclass
class EngineConfig:
    frame_buffer_size: int = ranged(8, low=1)
    """Newest frames kept for instructions to choose from."""
    embedding_cache_size: int = ranged(4, low=1)
    """Image embeddings kept, keyed by frame (LRU)."""
    frame_wait_s: float = ranged(0.0, low=0.0)
    """How long a round waits for a first frame before it errors."""
    stamp_tolerance_s: float | None = ranged(None, low=0.0)
    """An instruction naming a stamp fails if no kept frame is this close to it. None: derived from the camera,
    0.6 × its period (10th percentile of the last 32 frame intervals; 0.1 s until known), so the neighbour
    of a missing frame is refused; ``.inf`` always takes the nearest frame."""
    max_instruction_bytes: int = ranged(65536, low=1)
    """Longer instructions are refused with an error round."""
    min_mask_pixels: int = ranged(1, low=0)
    """A decoded mask smaller than this becomes a rejection instead of an object."""


@dataclass
class MemoryConfig:
    max_rounds: int = ranged(50, low=1)
    """Rounds kept per session (oldest evicted)."""
    max_objects: int = ranged(100, low=1, high=65535)
    """Objects kept per session (least recently segmented evicted)."""
    max_sessions: int = ranged(16, low=1)
    """Sessions kept (least recently used evicted)."""
    reidentify_iou: float | None = ranged(0.5, low=0.0, high=1.0, low_open=True)
    """A new mask overlapping a remembered object's current mask by this IoU takes that object's id (null: off)."""


@dataclass
class FlowTrackingConfig:
    """``tracking.backend: flow``: optical flow per object (OpenCV, no weights).

    Sparse pyramidal Lucas-Kanade on corners inside each mask and a robust similarity fit.
    """

    max_side: int = ranged(640, low=64)
    """Frames are shrunk so that their longest side is at most this before flow runs (cost grows with area)."""
    max_points: int = ranged(24, low=4)
    """Corner features followed per object."""
    quality_level: float = ranged(0.01, low=0.0, high=1.0, low_open=True)
    """Shi-Tomasi corner quality relative to the best corner in the mask."""
    win_size: int = ranged(9, low=5)
    """Lucas-Kanade window side, pixels of the shrunk frame."""
    pyramid_levels: int = ranged(3, low=0)
    """Extra pyramid levels (each halves the image): the largest motion followed is about win_size × 2^levels."""
    fb_max_error: float = ranged(1.0, low=0.0, low_open=True)
    """A point whose forward-backward round trip misses its start by more than this (pixels) is dropped."""
    max_patch_error_ratio: float = ranged(2.0, low=1.0)
    """A point whose Lucas-Kanade patch error exceeds this many times the object's median is dropped (its window
    was partly covered)."""
    ransac_threshold: float = ranged(2.0, low=0.0, low_open=True)
    """Largest reprojection error (pixels) of an inlier of the similarity fit."""
    min_inliers: int = ranged(6, low=3)
    """Fewer consistent points than this: no motion is measured on this frame."""
    appearance_threshold: float = ranged(20.0, low=0.0, low_open=True)
    """A mask pixel whose grey level (3×3 mean) differs from the object's look by more than this is hidden."""
    min_visible: float = ranged(0.5, low=0.0, high=1.0)
    """Share of the moved mask that still looks like the object, below which it is occluded on this frame."""
    reacquire_margin: float = ranged(1.0, low=0.0)
    """While occluded, the object is searched for in its predicted box grown by this fraction of its size per side."""
    refresh_steps: int = ranged(10, low=1)
    """The object's reference look and mask are renewed after this many steps fully in sight (lighting, pose)."""


@dataclass
class Sam2TrackingConfig:
    """``tracking.backend: sam2``: SAM 2.1 streaming memory, one bounded memory bank per object."""

    model: Literal["sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"] = "sam2.1_hiera_t"
    """SAM 2.1 architecture; with ``segmenter.backend: sam2`` of the same model, checkpoint and device the
    tracker shares the segmenter's model and image encodes."""
    checkpoint: str | None = None
    """Weights file; None looks for the official file in ``cache_dir``."""
    cache_dir: str = "~/.cache/reasonseg_ros"
    """Where the official checkpoint is looked for."""
    random_weights: bool = False
    """Random weights (benchmarks and plumbing only: the tracks mean nothing)."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, ..."""
    recent_frames: int = ranged(6, low=0, high=6)
    """Memories of the latest tracked frames kept per object, beside the one of the frame it was seeded on
    (SAM 2.1 was trained with 6; at most the model's ``num_maskmem`` - 1)."""


@dataclass
class TrackingConfig:
    """Live memory: every remembered object followed on the newest frames (docs/tracking.md)."""

    backend: Literal["none", "flow", "sam2"] = "none"
    """none: objects stay where they were segmented; flow: optical flow (OpenCV, no weights); sam2: SAM 2.1 memory."""
    rate_hz: float = ranged(10.0, low=0.0, low_open=True)
    """Tracking steps per second on the newest frame (frames in between are skipped, never queued)."""
    max_objects: int = ranged(16, low=1)
    """Objects followed at once; beyond it the least recently referenced one stops being tracked (with a warning)."""
    lost_after_s: float = ranged(1.0, low=0.0)
    """An object not visible for this long is reported lost instead of occluded."""
    forget_after_s: float = ranged(30.0, low=0.0)
    """An object unseen for this long stops being tracked; memory keeps it, marked lost."""
    flow: FlowTrackingConfig = field(default_factory=FlowTrackingConfig)
    sam2: Sam2TrackingConfig = field(default_factory=Sam2TrackingConfig)


@dataclass
class NodeConfig:
    """How instructions are queued and results published; shared by the ROS node and bag replay."""

    instruction_queue_size: int = ranged(4, low=1)
    """Instructions waiting for the worker; when full, the oldest waiting one is dropped with an error result."""
    lifecycle: bool = False
    """ROS node only: run as a managed (lifecycle) node: configure loads the models, activate subscribes."""
    image_transport: Literal["raw", "compressed"] = "raw"
    """raw: sensor_msgs/Image on ``image``; compressed: sensor_msgs/CompressedImage (jpeg, png) on
    ``image/compressed`` (ROS node only)."""
    image_qos_depth: int = ranged(2, low=1)
    """History depth of the image subscription."""
    image_qos_reliability: Literal["best_effort", "reliable"] = "best_effort"
    """best_effort (sensor data) or reliable."""
    instruction_qos_depth: int = ranged(10, low=1)
    """History depth of the instruction subscription (reliable)."""
    publish_masks: bool = True
    """Publish the mono16 label image on masks."""
    publish_detections: bool = True
    """Publish vision_msgs/Detection2DArray on detections."""
    publish_result: bool = True
    """Publish the round as JSON on result."""
    publish_rejection: bool = True
    """Publish a sentence per rejected target on rejection."""
    publish_overlay: bool = True
    """The overlay is drawn only while the topic has subscribers."""
    result_masks: bool = True
    """Include each object's RLE mask in the result JSON."""
    default_session: str = "default"
    """Session of instructions that name none."""
    diagnostics_period_s: float = ranged(1.0, low=0.0, low_open=True)
    """Period of the /diagnostics status."""
    latency_window: int = ranged(200, low=1)
    """Rounds over which latency percentiles are reported."""


@dataclass
class ReplayConfig:
    """Topics that bag replay reads (``reasonseg replay``); the command line can override them."""

    image_topic: str = "/camera/image"
    """Images (sensor_msgs/Image)."""
    instruction_topic: str = "/instruction"
    """Instructions (std_msgs/String: text or the JSON envelope)."""
    ground_truth_topic: str = "/ground_truth"
    """Ground-truth records (std_msgs/String JSON), used when no sidecar file is given."""


@dataclass
class Config:
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    reasoner: ReasonerConfig = field(default_factory=ReasonerConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)

    def validate(self) -> Config:
        """Check the ranges the types cannot express; returns self."""
        check_ranges(self)
        self._validate_vlm()
        if self.segmenter.checkpoint == "from_reasoner" and self.reasoner.backend != "seg_token":
            raise ConfigError("segmenter.checkpoint: from_reasoner needs reasoner.backend: seg_token")
        if "{text}" not in self.reasoner.seg_token.instruction_format:
            raise ConfigError("reasoner.seg_token.instruction_format must contain {text}")
        sasp = self.reasoner.seg_token.sasp
        if not 0.0 <= sasp.negative_threshold <= sasp.positive_threshold <= 1.0:
            raise ConfigError("reasoner.seg_token.sasp thresholds must satisfy 0 <= negative <= positive <= 1")
        if self.segmenter.random_fallback is not None:
            from reasonseg_ros.segmenter.checkpoints import arch_of

            arch_of(self.segmenter.random_fallback)  # names the known architectures when it is not one
        if self.segmenter.export.opt_prompts > self.segmenter.export.max_prompts:
            raise ConfigError("segmenter.export.opt_prompts must not exceed segmenter.export.max_prompts")
        return self

    def _validate_vlm(self) -> None:
        vlm = self.reasoner.vlm
        if vlm.max_pixels < vlm.min_pixels:
            raise ConfigError(f"reasoner.vlm.max_pixels ({vlm.max_pixels}) is below min_pixels ({vlm.min_pixels})")
        if not 0.0 <= vlm.query_negative <= vlm.query_positive <= 1.0:
            raise ConfigError("reasoner.vlm needs 0 <= query_negative <= query_positive <= 1")


T = TypeVar("T")
NONE_TYPE = type(None)


def check_ranges(section: Any, prefix: str = "") -> None:
    """Check every field with a declared :class:`Range`, in ``section`` and the sections under it."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, f"{prefix}{f.name}.")
        elif "range" in f.metadata and value is not None:
            f.metadata["range"].check(f"{prefix}{f.name}", value)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML file (None: defaults) and apply dotted ``overrides`` such as ``{"segmenter.device": "cuda"}``."""
    source = "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        source = str(path)
        yaml = require("yaml", "reading config files")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {source}: {exc.strerror or exc}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping, got {type(loaded).__name__}")
        data = loaded or {}
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    config = from_dict(Config, data, source)
    try:
        return config.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def from_dict(cls: type[T], data: dict[str, Any], source: str, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: unknown key '{name}' (known here: {known})")
        kwargs[key] = _convert(hints[key], value, source, name)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, source: str, name: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, source, f"{name}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return _convert(option, value, source, name)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{source}: '{name}' must be {_describe(hint)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{source}: '{name}' must be one of {', '.join(map(repr, args))}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: '{name}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return origin(_convert(item, v, source, f"{name}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{name}' must be a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is NONE_TYPE:
        if value is None:
            return None
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, hint):
        return value
    raise ConfigError(f"{source}: '{name}' must be {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if hint is NONE_TYPE:
        return "null"
    return getattr(hint, "__name__", str(hint))


def flat_fields(config: Config) -> dict[str, tuple[Any, Any]]:
    """Every leaf key as ``"section.key": (type hint, value)``, for the ROS node's parameters."""
    flat: dict[str, tuple[Any, Any]] = {}

    def walk(obj: Any, prefix: str) -> None:
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                flat[f"{prefix}{f.name}"] = (hints[f.name], value)

    walk(config, "")
    return flat


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain data (for reports and the node's parameters)."""
    return dataclasses.asdict(config)
