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

"""SAM's mask decoder with less arithmetic, for the exported graph: same function, exact up to float rounding.

Two rewrites, both plain algebra:

* Attention. SAM's decoder attends between a handful of tokens (``T``: one
  IoU token, four mask tokens and the prompt's tokens) and ``HW`` = 4096 image
  positions, and the reference projects all 4096 positions to the attention
  width (128) in each of ten image-side projections: most of the decoder's
  arithmetic. A score is a dot product, so the projection can move to the token
  side: ``(W_q x + b_q) · k = x · (W_qᵀ k) + b_q · k``, and likewise for values
  and the output projection. Each image-side product then has ``heads × T``
  columns (56 for a box prompt) instead of 128.
* Upscaling. A 2×2, stride-2 transposed convolution is one matrix product per
  input pixel followed by a pixel shuffle, so both run as matrix products on the
  channel-last layout the transformer leaves; SAM's channel layer norm becomes
  an ordinary last-axis layer norm, and the only reordering left is that of
  the final masks.

On ``vit_b`` sizes a box prompt costs 2.04 instead of 3.62 GFLOP, and the
graph alone took 22–31 instead of 53–61 ms in ONNX Runtime on a 2-core CPU
(``docs/performance.md``). Only the export graph uses this module; the
torch backend runs ``segment_anything`` as it is, so the parity tests compare
the two formulations.
"""

from __future__ import annotations

import math
from typing import Any

from reasonseg_ros.deps import require

torch = require("torch", "exporting SAM to ONNX")


def _heads(x: Any, heads: int) -> Any:
    """``(N, T, h·d)`` → ``(N, h, T, d)``."""
    n, t, width = x.shape
    return x.reshape(n, t, heads, width // heads).transpose(1, 2)


def _per_head(weight: Any, heads: int) -> Any:
    """A projection's ``(h·d, C)`` weight as ``(h, d, C)``."""
    return weight.reshape(heads, weight.shape[0] // heads, weight.shape[1])


def tokens_to_image(attn: Any, q: Any, k_image: Any, v_image: Any) -> Any:
    """``attn(q, k_image, v_image)`` for ``(N, T, C)`` tokens attending to ``(B, HW, C)`` image, B ∈ {1, N}.

    ``k_proj``'s bias adds the same amount to every score of a query and so
    cancels in the softmax; ``v_proj``'s bias passes through because the
    weights of a query sum to one.
    """
    heads = attn.num_heads
    n, t, channels = q.shape
    queries = _heads(attn.q_proj(q), heads)  # (N, h, T, d)
    scale = 1.0 / math.sqrt(queries.shape[-1])
    keys_in_image_space = queries @ _per_head(attn.k_proj.weight, heads) * scale  # (N, h, T, C)
    scores = keys_in_image_space.reshape(n, heads * t, channels) @ k_image.transpose(1, 2)  # (N, hT, HW)
    mixed = torch.softmax(scores, dim=-1) @ v_image  # (N, hT, C)
    v_weight = _per_head(attn.v_proj.weight, heads).transpose(1, 2)  # (h, C, d)
    values = mixed.reshape(n, heads, t, channels) @ v_weight  # (N, h, T, d)
    values = values + attn.v_proj.bias.reshape(heads, 1, -1)
    return attn.out_proj(values.transpose(1, 2).reshape(n, t, -1))


def image_to_tokens(attn: Any, q_image: Any, k_tokens: Any, v_tokens: Any) -> Any:
    """``attn(q_image, k_tokens, v_tokens)`` for ``(B, HW, C)`` image positions attending to ``(N, T, C)`` tokens."""
    heads = attn.num_heads
    n, t, channels = k_tokens.shape
    keys = _heads(attn.k_proj(k_tokens), heads)  # (N, h, T, d)
    scale = 1.0 / math.sqrt(keys.shape[-1])
    q_weight = _per_head(attn.q_proj.weight, heads)  # (h, d, C)
    keys_in_image_space = (keys @ q_weight * scale).reshape(n, heads * t, channels)  # (N, hT, C)
    # q_proj's bias meets each key once: a score offset per (head, token), the same for every position.
    key_offsets = (keys @ attn.q_proj.bias.reshape(heads, -1, 1) * scale).reshape(n, 1, heads * t)
    scores = q_image @ keys_in_image_space.transpose(1, 2) + key_offsets  # (N, HW, hT)
    positions = scores.shape[1]
    weights = torch.softmax(scores.reshape(n, positions, heads, t), dim=-1).reshape(n, positions, heads * t)
    values = _heads(attn.v_proj(v_tokens), heads)  # (N, h, T, d)
    out_weight = attn.out_proj.weight.reshape(channels, heads, -1).permute(1, 2, 0)  # (h, d, C)
    values_out = (values @ out_weight).reshape(n, heads * t, channels)  # (N, hT, C)
    return weights @ values_out + attn.out_proj.bias


def upscaled_masks(upscaling: Any, image: Any, hyper: Any, grid: tuple[int, int]) -> Any:
    """``output_upscaling``, then ``hyper @ upscaled``: mask logits ``(N, M, 4h, 4w)``.

    ``image`` holds the transformer's ``(N, HW, C)`` image tokens, ``hyper`` the ``(N, M, C/8)`` hypernetwork rows.
    """
    up1, norm, act1, up2, act2 = upscaling
    n, (h, w) = image.shape[0], grid
    x = image @ _as_matrix(up1.weight) + up1.bias.repeat(4)  # (N, hw, 2·2·C1), kernel offset major
    channels = up1.weight.shape[1]
    x = x.reshape(n, h, w, 2, 2, channels).permute(0, 1, 3, 2, 4, 5).reshape(n, 4 * h * w, channels)
    x = act1(torch.nn.functional.layer_norm(x, (channels,), norm.weight, norm.bias, norm.eps))
    x = act2(x @ _as_matrix(up2.weight) + up2.bias.repeat(4))  # (N, 4hw, 2·2·C2)
    masks = x.reshape(n, 16 * h * w, -1) @ hyper.transpose(1, 2)  # (N, 16hw, M), pixel order (y, x, ky, kx)
    outputs = hyper.shape[1]
    masks = masks.reshape(n, 2 * h, 2 * w, 2, 2, outputs).permute(0, 5, 1, 3, 2, 4)
    return masks.reshape(n, outputs, 4 * h, 4 * w)


def _as_matrix(weight: Any) -> Any:
    """A 2×2 stride-2 ``ConvTranspose2d`` weight ``(C_in, C_out, 2, 2)`` as ``(C_in, 2·2·C_out)``."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def two_way_transformer(transformer: Any, image: Any, image_pe: Any, tokens: Any) -> tuple[Any, Any]:
    """``TwoWayTransformer.forward`` on ``(1, HW, C)`` image and positional tokens and ``(N, T, C)`` prompt tokens.

    Returns the tokens ``(N, T, C)`` and the image ``(N, HW, C)``, as the reference does.
    """
    queries, keys = tokens, image
    for layer in transformer.layers:
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + tokens
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        keys_pe = keys + image_pe
        attn_out = tokens_to_image(layer.cross_attn_token_to_image, queries + tokens, keys_pe, keys)
        queries = layer.norm2(queries + attn_out)
        queries = layer.norm3(queries + layer.mlp(queries))
        attn_out = image_to_tokens(layer.cross_attn_image_to_token, keys_pe, queries + tokens, queries)
        keys = layer.norm4(keys + attn_out)
    attn_out = tokens_to_image(transformer.final_attn_token_to_image, queries + tokens, keys + image_pe, keys)
    return transformer.norm_final_attn(queries + attn_out), keys
