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

"""The two graphs that ``reasonseg export`` writes, as torch modules over ``segment_anything``'s parts.

* Encoder: ``(1, 3, S, S)`` raw pixels (padding filled with the mean pixel,
  see ``exported_io.encoder_input``) → ``(1, 256, S/16, S/16)`` embedding.
* Decoder: image embedding + ``N`` prompts of ``K`` tokens → low-res mask
  logits ``(N, 4, 4g, 4g)`` and predicted IoU ``(N, 4)``. A token is a point
  (labels -1, 0, 1), a box corner (2, 3) or a sparse embedding (4), so points,
  boxes and ``[SEG]`` embeddings of any mix share one dynamic token axis and no
  input is ever empty. No image-size input: resizing to the frame is done
  outside the graph.
"""

from __future__ import annotations

import math
from typing import Any

from reasonseg_ros.deps import require
from reasonseg_ros.segmenter.lean_decoder import two_way_transformer, upscaled_masks

torch = require("torch", "exporting SAM to ONNX")
nn = torch.nn

ENCODER_INPUTS = ["image"]
ENCODER_OUTPUTS = ["image_embeddings"]
DECODER_INPUTS = ["image_embeddings", "point_coords", "point_labels", "token_embeddings"]
DECODER_OUTPUTS = ["low_res_masks", "iou_predictions"]
DECODER_DYNAMIC_AXES = {
    "point_coords": {0: "num_prompts", 1: "num_tokens"},
    "point_labels": {0: "num_prompts", 1: "num_tokens"},
    "token_embeddings": {0: "num_prompts", 1: "num_tokens"},
    "low_res_masks": {0: "num_prompts"},
    "iou_predictions": {0: "num_prompts"},
}


class EncoderGraph(nn.Module):
    """Normalisation + SAM's ViT image encoder."""

    def __init__(self, sam: Any) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder
        self.register_buffer("pixel_mean", sam.pixel_mean.detach().clone())
        self.register_buffer("pixel_std", sam.pixel_std.detach().clone())

    def forward(self, image: Any) -> Any:
        return self.image_encoder((image - self.pixel_mean) / self.pixel_std)


class DecoderGraph(nn.Module):
    """SAM's prompt encoder (sparse tokens, no mask input) and mask decoder, for a batch of prompts."""

    def __init__(self, sam: Any) -> None:
        super().__init__()
        encoder, decoder = sam.prompt_encoder, sam.mask_decoder
        self.input_size = float(encoder.input_image_size[0])
        self.decoder = decoder
        self.num_outputs = decoder.num_mask_tokens
        # Static per architecture; as Python ints they export as constants, leaving only the prompt axes dynamic.
        self.grid = tuple(int(v) for v in encoder.image_embedding_size)
        with torch.no_grad():
            # Constants of the prompt encoder, folded once: labels 0..3 each add a learned vector.
            self.register_buffer("gaussian", encoder.pe_layer.positional_encoding_gaussian_matrix.detach().clone())
            self.register_buffer("not_a_point", encoder.not_a_point_embed.weight.detach().clone())
            label_vectors = torch.cat([e.weight.detach() for e in encoder.point_embeddings], dim=0)
            self.register_buffer("label_vectors", label_vectors.clone())
            # (1, HW, C): the layout the transformer works in, so the graph holds no transpose for it.
            self.register_buffer("image_pe", encoder.get_dense_pe().detach().flatten(2).transpose(1, 2).clone())
            self.register_buffer("no_mask", encoder.no_mask_embed.weight.detach().reshape(1, -1, 1, 1).clone())
            output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
            self.register_buffer("output_tokens", output_tokens.detach().clone())

    def sparse_tokens(self, coords: Any, labels: Any, embeddings: Any) -> Any:
        """``(N, K, C)`` prompt tokens, as SAM's prompt encoder builds them, plus verbatim embedding tokens."""
        unit = (coords + 0.5) / self.input_size
        projected = (2 * unit - 1) @ self.gaussian * (2 * math.pi)
        positional = torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)
        labels = labels.unsqueeze(-1)
        is_point = ((labels >= 0) & (labels <= 3)).to(positional.dtype)
        tokens = positional * is_point + self.not_a_point * (labels == -1).to(positional.dtype)
        for k in range(self.label_vectors.shape[0]):
            tokens = tokens + self.label_vectors[k] * (labels == k).to(positional.dtype)
        return torch.where(labels == 4, embeddings, tokens)

    def reference(self, image_embeddings: Any, point_coords: Any, point_labels: Any, token_embeddings: Any) -> Any:
        """What ``forward`` computes, by ``segment_anything``'s own ``predict_masks``: the export's yardstick."""
        sparse = self.sparse_tokens(point_coords, point_labels, token_embeddings)
        dense = self.no_mask.expand(sparse.shape[0], -1, *self.grid)
        image_pe = self.image_pe.transpose(1, 2).reshape(1, -1, *self.grid)
        return self.decoder.predict_masks(image_embeddings, image_pe, sparse, dense)

    def forward(self, image_embeddings: Any, point_coords: Any, point_labels: Any, token_embeddings: Any) -> Any:
        sparse = self.sparse_tokens(point_coords, point_labels, token_embeddings)
        n = sparse.shape[0]
        tokens = torch.cat([self.output_tokens.unsqueeze(0).expand(n, -1, -1), sparse], dim=1)
        image = (image_embeddings + self.no_mask).flatten(2).transpose(1, 2)
        hs, src = two_way_transformer(self.decoder.transformer, image, self.image_pe, tokens)
        mask_tokens = hs[:, 1 : 1 + self.num_outputs, :]
        hyper = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.decoder.output_hypernetworks_mlps)], dim=1
        )
        masks = upscaled_masks(self.decoder.output_upscaling, src, hyper, self.grid)
        iou = self.decoder.iou_prediction_head(hs[:, 0, :])
        return masks, iou


def fp32_modules(sam: Any) -> list[str]:
    """Scope names of SAM's layer norms as they appear in ONNX node names, kept fp32 in TensorRT engines.

    The torch exporter names each node after the modules it was called in:
    ``/image_encoder/blocks.0/norm1/LayerNormalization``,
    ``/output_upscaling/output_upscaling.1/ReduceMean``; an entry here is one
    such path component (``norm1``, ``output_upscaling.1``). Their variance
    (a mean of squares) overflows fp16 on real activations.
    """
    names = set()
    for path, module in sam.named_modules():
        if "LayerNorm" in type(module).__name__:
            parts = path.split(".")
            names.add(f"{parts[-2]}.{parts[-1]}" if parts[-1].isdigit() else parts[-1])
    return sorted(names)
