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

"""The ``sam2`` tracker: SAM 2.1's streaming memory, frames arriving one at a time.

``SAM2VideoPredictor`` wants the whole video up front; a robot has only the
frames so far. This tracker drives SAM 2's per-frame modules itself and keeps,
per object, a bounded memory bank:

* the conditioning memory of the frame the object was seeded on (its mask
  taken as SAM 2's mask input), replaced when it is seeded again;
* the memories of its last ``recent_frames`` tracked frames;
* the object pointers of its conditioning frame and of its last
  ``max_obj_ptrs_in_encoder - 1`` tracked frames.

A step encodes the frame once for all objects; memory attention, the mask
decoder and the memory encoder run batched over the objects whose banks have
the same layout (all of them once each bank is full). Memories are assembled
exactly as ``SAM2Base._prepare_memory_conditioned_features`` assembles them
for a video (same order, temporal encodings and pointer positions; memories
stored in bfloat16 as the video predictor stores them), with each object's
own frame distances, so a step equals the video predictor on the same frames
and prompts (tests/test_tracker_sam2.py). Visible/occluded is SAM 2's object
score (its no-object head): logit > 0. A seed counts as the step just taken
(its frame is usually the round's, a frame or two behind the newest), so the
next step is one frame after it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reasonseg_ros.config import Sam2TrackingConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import ConfigError, InputError
from reasonseg_ros.masks import mask_to_box
from reasonseg_ros.segmenter.sam2_image import Sam2Model, resolve_sam2_checkpoint
from reasonseg_ros.tracker.base import TrackState
from reasonseg_ros.types import Frame

FILL_HOLE_AREA = 8
"""Holes up to this many low-resolution pixels are filled, as ``build_sam2_video_predictor`` sets it (needs sam2's
CUDA extension; skipped without it, as the video predictor skips it)."""


@dataclass
class _Bank:
    """One object's memory: bounded by construction (a deque of fixed length each)."""

    seeded_at: int
    """Step index of the conditioning frame."""
    cond_memory: Any
    """``1×C×h×w`` bfloat16 memory of the conditioning frame."""
    cond_pointer: Any
    """``1×C`` object pointer of the conditioning frame."""
    frame_size: tuple[int, int]
    recent: deque = field(default_factory=deque)
    """``(step, 1×C×h×w bfloat16 memory)`` of the latest tracked frames, oldest first."""
    pointers: deque = field(default_factory=deque)
    """``(step, 1×C object pointer)`` of the latest tracked frames, oldest first."""

    def layout(self, step: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Distances of the recent memories and pointers a step at ``step`` attends to.

        Objects with equal layouts are batched.
        """
        return tuple(step - t for t, _ in self.recent), tuple(step - t for t, _ in self.pointers)


class Sam2Tracker:
    """Streaming SAM 2.1 over frames arriving one at a time; one encode per step for all objects."""

    def __init__(self, sam2: Sam2Model, recent_frames: int = 6) -> None:
        self.sam2 = sam2
        self.torch = sam2.torch
        model = sam2.model
        self.model = model
        if not 0 <= recent_frames <= model.num_maskmem - 1:
            raise ConfigError(
                f"tracking.sam2.recent_frames must be between 0 and {model.num_maskmem - 1} for this model "
                f"(num_maskmem {model.num_maskmem}), got {recent_frames}"
            )
        self.recent_frames = recent_frames
        # Pointers of the last (max - 1) frames besides the conditioning frame's, as SAM 2 reads them for a video
        # at least that long.
        self.max_pointers = model.max_obj_ptrs_in_encoder - 1 if model.use_obj_ptrs_in_encoder else 0
        self.name = f"sam2 streaming tracker, {sam2.name}, {recent_frames} recent frames"
        self._banks: dict[int, _Bank] = {}
        self._step = 0
        self._memory_position: Any = None
        self._warnings: list[str] = []
        self._last_size: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._fill_holes = _hole_filler(sam2)
        self.last_logits: dict[int, Any] = {}
        """Low-resolution mask logits (``1×h×w`` tensors) of each object on the last step, for inspection."""

    @classmethod
    def from_config(cls, config: Sam2TrackingConfig, segmenter: Any = None) -> Sam2Tracker:
        """Share the segmenter's SAM 2.1 when it is the same model, weights and device; else load one."""
        shared = getattr(segmenter, "sam2", None)
        if isinstance(shared, Sam2Model):
            weights = (
                "random"
                if config.random_weights
                else str(resolve_sam2_checkpoint(config.model, config.checkpoint, config.cache_dir, "tracking.sam2"))
            )
            if shared.key == (config.model, weights, config.device):
                return cls(shared, config.recent_frames)
        sam2 = Sam2Model.build(
            config.model, config.checkpoint, config.cache_dir, config.device, config.random_weights, "tracking.sam2"
        )
        return cls(sam2, config.recent_frames)

    # -- Tracker protocol ------------------------------------------------------------------------------------

    @property
    def tracked_ids(self) -> frozenset[int]:
        return frozenset(self._banks)

    def seed(self, object_id: int, frame: Frame, mask: np.ndarray) -> None:
        """Condition ``object_id`` on ``mask`` (SAM 2's mask input on ``frame``); an earlier bank is replaced."""
        torch, model = self.torch, self.model
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != frame.size:
            raise InputError(f"seed mask of object {object_id} is {mask.shape}, its frame is {frame.size}")
        with self._lock:
            feats, pos, sizes = self._features(frame)
            size = model.image_size
            with torch.inference_mode():
                mask_in = torch.as_tensor(mask, device=self.sam2.device)[None, None].float()
                if mask.shape != (size, size):
                    # As SAM2VideoPredictor.add_new_mask: anti-aliased resize, then threshold at one half.
                    mask_in = torch.nn.functional.interpolate(
                        mask_in, size=(size, size), mode="bilinear", align_corners=False, antialias=True
                    )
                    mask_in = (mask_in >= 0.5).float()
                out = model.track_step(
                    frame_idx=self._step,
                    is_init_cond_frame=True,
                    current_vision_feats=feats,
                    current_vision_pos_embeds=pos,
                    feat_sizes=sizes,
                    point_inputs=None,
                    mask_inputs=mask_in,
                    output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
                    num_frames=None,
                    run_mem_encoder=False,
                )
                low_res = self._fill_holes(out["pred_masks"])
                # The video predictor encodes a prompted frame's memory from its (low-resolution) output, upsampled
                # and binarised (binarize_mask_from_pts_for_mem_enc).
                high_res = torch.nn.functional.interpolate(
                    low_res, size=(size, size), mode="bilinear", align_corners=False
                )
                memory = self._encode_memory(feats, sizes, high_res, out["object_score_logits"], binarize=True)
            if not self._banks.keys() - {object_id}:
                # nothing else followed (cleared, reset): the size of the tracks is this frame's from now on
                self._last_size = frame.size
            self._banks[object_id] = _Bank(
                seeded_at=self._step,
                cond_memory=memory,
                cond_pointer=out["obj_ptr"],
                frame_size=frame.size,
                recent=deque(maxlen=self.recent_frames),
                pointers=deque(maxlen=self.max_pointers),
            )

    def step(self, frame: Frame) -> dict[int, TrackState]:
        torch = self.torch
        with self._lock:
            if not self._banks:
                return {}
            self._step += 1
            step = self._step
            if self._last_size is not None and self._last_size != frame.size:
                self._warnings.append(
                    f"frame size changed from {self._last_size[1]}x{self._last_size[0]} to "
                    f"{frame.size[1]}x{frame.size[0]}; SAM 2 tracks go on (its input is resized to a square), "
                    "re-seed objects if they drift"
                )
            self._last_size = frame.size
            feats, pos, sizes = self._features(frame)
            groups: dict[tuple, list[int]] = {}
            for object_id, bank in self._banks.items():
                groups.setdefault(bank.layout(step), []).append(object_id)
            out: dict[int, TrackState] = {}
            with torch.inference_mode():
                for ids in groups.values():
                    out.update(self._step_group(ids, step, feats, pos, sizes, frame.size))
            return {object_id: out[object_id] for object_id in self._banks}

    def remove(self, object_id: int) -> None:
        with self._lock:
            self._banks.pop(object_id, None)
            self.last_logits.pop(object_id, None)

    def clear(self) -> None:
        with self._lock:
            self._banks.clear()
            self.last_logits.clear()

    def pop_warnings(self) -> list[str]:
        """Warnings since the last call (a frame of another size), for the caller's diagnostics."""
        warnings, self._warnings = self._warnings, []
        return warnings

    def memory_sizes(self) -> dict[int, tuple[int, int, int]]:
        """Per object: (conditioning memories, recent-frame memories, object pointers) held now."""
        return {i: (1, len(b.recent), 1 + len(b.pointers)) for i, b in self._banks.items()}

    # -- internals ------------------------------------------------------------------------------------------

    def _features(self, frame: Frame) -> tuple[list, list, list]:
        """Flattened backbone features ``(HW)×1×C`` per level, their positions and sizes (one encode, memoised)."""
        image = _as_rgb(frame.image)
        encoded = self.sam2.encode(image)
        _, feats, pos, sizes = self.model._prepare_backbone_features(
            {"backbone_fpn": list(encoded["backbone_fpn"]), "vision_pos_enc": list(encoded["vision_pos_enc"])}
        )
        return feats, pos, sizes

    def _encode_memory(self, feats: list, sizes: list, high_res: Any, object_scores: Any, binarize: bool) -> Any:
        """SAM 2's memory of a frame's mask (``SAM2Base._encode_new_memory``), stored in bfloat16."""
        torch, model = self.torch, self.model
        batch = high_res.shape[0]
        h, w = sizes[-1]
        pix = feats[-1].permute(1, 2, 0).reshape(1, model.hidden_dim, h, w).expand(batch, -1, -1, -1)
        masks = (high_res > 0).float() if binarize else torch.sigmoid(high_res)
        if model.sigmoid_scale_for_mem_enc != 1.0:
            masks = masks * model.sigmoid_scale_for_mem_enc
        if model.sigmoid_bias_for_mem_enc != 0.0:
            masks = masks + model.sigmoid_bias_for_mem_enc
        encoded = model.memory_encoder(pix, masks, skip_mask_sigmoid=True)
        memory = encoded["vision_features"]
        if self._memory_position is None:
            self._memory_position = encoded["vision_pos_enc"][-1][:1].clone()
        if model.no_obj_embed_spatial is not None:
            # Frames where the object is not there carry SAM 2's "no object" embedding.
            absent = 1.0 - (object_scores > 0).float()
            memory = memory + absent[..., None, None] * model.no_obj_embed_spatial[..., None, None]
        return memory.to(torch.bfloat16)

    def _memory(self, banks: list[_Bank], step: int) -> tuple[Any, Any, int]:
        """Memory tokens, their positions and the pointer-token count for a batch of banks of the same layout."""
        torch, model = self.torch, self.model
        batch = len(banks)
        position = self._memory_position.flatten(2).permute(2, 0, 1).expand(-1, batch, -1)
        tpos = model.maskmem_tpos_enc
        tokens, positions = [], []

        def add(memory: Any, t_pos: int) -> None:
            tokens.append(memory.float().flatten(2).permute(2, 0, 1))
            positions.append(position + tpos[model.num_maskmem - t_pos - 1])

        add(torch.cat([b.cond_memory for b in banks]), 0)
        recent = banks[0].recent
        for k in range(len(recent)):  # oldest first: the order SAM 2 reads them in
            distance = step - recent[k][0]
            add(torch.cat([b.recent[k][1] for b in banks]), model.num_maskmem - distance)
        pointer_tokens = 0
        if model.use_obj_ptrs_in_encoder:
            # The conditioning frame's pointer first, then the tracked frames' from the most recent back.
            pointers = [torch.cat([b.cond_pointer for b in banks])]
            distances = [[step - b.seeded_at for b in banks]]
            for k in range(len(banks[0].pointers) - 1, -1, -1):
                pointers.append(torch.cat([b.pointers[k][1] for b in banks]))
                distances.append([step - banks[0].pointers[k][0]] * batch)
            stacked = torch.stack(pointers, dim=0)  # P×B×C
            channels = model.hidden_dim
            if model.add_tpos_enc_to_obj_ptrs:
                sine = require("sam2.modeling.sam2_utils").get_1d_sine_pe
                dim = channels if model.proj_tpos_enc_in_obj_ptrs else model.mem_dim
                d = torch.tensor(distances, device=stacked.device)
                pointer_pos = model.obj_ptr_tpos_proj(sine(d / (model.max_obj_ptrs_in_encoder - 1), dim=dim))
            else:
                pointer_pos = stacked.new_zeros(len(pointers), batch, model.mem_dim)
            if model.mem_dim < channels:
                split = channels // model.mem_dim
                stacked = stacked.reshape(-1, batch, split, model.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
                pointer_pos = pointer_pos.repeat_interleave(split, dim=0)
            tokens.append(stacked)
            positions.append(pointer_pos)
            pointer_tokens = stacked.shape[0]
        return torch.cat(tokens, dim=0), torch.cat(positions, dim=0), pointer_tokens

    def _step_group(
        self, ids: list[int], step: int, feats: list, pos: list, sizes: list, frame_size: tuple[int, int]
    ) -> dict[int, TrackState]:
        torch, model = self.torch, self.model
        banks = [self._banks[i] for i in ids]
        batch = len(banks)
        h, w = sizes[-1]
        memory, memory_pos, pointer_tokens = self._memory(banks, step)
        conditioned = model.memory_attention(
            curr=[feats[-1].expand(-1, batch, -1)],
            curr_pos=[pos[-1].expand(-1, batch, -1)],
            memory=memory,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=pointer_tokens,
        )
        conditioned = conditioned.permute(1, 2, 0).reshape(batch, model.hidden_dim, h, w)
        high_res_features = [
            x.permute(1, 2, 0).reshape(1, x.shape[2], *s).expand(batch, -1, -1, -1)
            for x, s in zip(feats[:-1], sizes[:-1], strict=True)
        ]
        _, _, _, low_res, high_res, pointer, object_scores = model._forward_sam_heads(
            backbone_features=conditioned,
            point_inputs=None,
            mask_inputs=None,
            high_res_features=high_res_features if len(feats) > 1 else None,
            multimask_output=model._use_multimask(False, None),
        )
        memories = self._encode_memory(feats, sizes, high_res, object_scores, binarize=False)
        low_res = self._fill_holes(low_res)
        full = torch.nn.functional.interpolate(low_res, size=frame_size, mode="bilinear", align_corners=False)
        masks = (full[:, 0] > 0).cpu().numpy()
        scores = torch.sigmoid(object_scores[:, 0].float()).cpu().numpy()
        visible = (object_scores[:, 0] > 0).cpu().numpy()
        out = {}
        for k, (object_id, bank) in enumerate(zip(ids, banks, strict=True)):
            if self.recent_frames:
                bank.recent.append((step, memories[k : k + 1]))
            if self.max_pointers:
                bank.pointers.append((step, pointer[k : k + 1]))
            self.last_logits[object_id] = low_res[k]
            mask = masks[k] if visible[k] else np.zeros(frame_size, dtype=bool)
            out[object_id] = TrackState(mask, mask_to_box(mask), float(scores[k]), bool(visible[k]))
        return out


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB from a grey (H×W, H×W×1), RGB or RGBA frame."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise InputError(f"the sam2 tracker needs an H×W, H×W×3 or H×W×4 image, got shape {image.shape}")


def _hole_filler(sam2: Sam2Model) -> Any:
    """SAM 2's hole filling of low-resolution mask logits where its CUDA extension runs; else nothing."""
    if sam2.device.type != "cuda":
        return lambda masks: masks
    try:
        require("sam2._C")
    except Exception:
        return lambda masks: masks
    fill = require("sam2.utils.misc").fill_holes_in_mask_scores
    return lambda masks: fill(masks, FILL_HOLE_AREA)
