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

"""A tiny random SAM 2.1: the ``sam2`` package's own classes and hiera_t config, shrunk by hydra overrides.

Same code paths as the real model (Hiera trunk with windowed and global attention, FPN neck, RoPE memory
attention, memory encoder, object pointers, no-object head, high-resolution decoder features); only the sizes
differ: 256-pixel input, 32-d features, 16-d memories. Its outputs mean nothing.
"""

from __future__ import annotations

RECENT_FRAMES = 3
"""Recent-frame memories of the tiny model (``num_maskmem`` = 1 + this), so the bank fills within a short video."""
MAX_OBJECT_POINTERS = 5
"""``max_obj_ptrs_in_encoder`` of the tiny model: the pointer window also fills within a short video."""
IMAGE_SIZE = 256
D = 32


def tiny_overrides(recent_frames: int = RECENT_FRAMES, max_object_pointers: int = MAX_OBJECT_POINTERS) -> list[str]:
    trunk, neck = "++model.image_encoder.trunk", "++model.image_encoder.neck"
    attention, encoder = "++model.memory_attention", "++model.memory_encoder"
    return [
        f"++model.image_size={IMAGE_SIZE}",
        f"{trunk}.embed_dim=8",
        f"{trunk}.num_heads=1",
        f"{trunk}.stages=[1,1,2,1]",
        f"{trunk}.global_att_blocks=[3]",
        f"{trunk}.window_spec=[4,4,4,2]",
        f"{trunk}.window_pos_embed_bkg_spatial_size=[4,4]",
        f"{neck}.backbone_channel_list=[64,32,16,8]",
        f"{neck}.d_model={D}",
        f"{neck}.position_encoding.num_pos_feats={D}",
        f"{attention}.d_model={D}",
        f"{attention}.num_layers=2",
        f"{attention}.layer.d_model={D}",
        f"{attention}.layer.dim_feedforward=64",
        f"{attention}.layer.self_attention.embedding_dim={D}",
        f"{attention}.layer.self_attention.feat_sizes=[16,16]",
        f"{attention}.layer.cross_attention.embedding_dim={D}",
        f"{attention}.layer.cross_attention.feat_sizes=[16,16]",
        f"{attention}.layer.cross_attention.kv_in_dim=16",
        f"{encoder}.out_dim=16",
        f"{encoder}.position_encoding.num_pos_feats=16",
        f"{encoder}.in_dim={D}",
        f"{encoder}.mask_downsampler.embed_dim={D}",
        f"{encoder}.fuser.layer.dim={D}",
        f"++model.num_maskmem={1 + recent_frames}",
        f"++model.max_obj_ptrs_in_encoder={max_object_pointers}",
    ]


def feature_sizes() -> list[tuple[int, int]]:
    """The three backbone levels' sizes (``SAM2ImagePredictor`` assumes 1024-pixel inputs; tests set these)."""
    return [(IMAGE_SIZE // 4,) * 2, (IMAGE_SIZE // 8,) * 2, (IMAGE_SIZE // 16,) * 2]
