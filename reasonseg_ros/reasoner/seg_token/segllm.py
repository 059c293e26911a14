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

"""SegLLM-style object memory: remembered masks and boxes re-enter the model as input embeddings.

Per remembered object two tokens follow the image tokens: the vision
tower's embedding of the masked crop (mean of its projected patch
features) and the box through ``Linear(4, H)`` (coordinates divided by the
image size). Switched on only by a checkpoint that carries the weights
(``model.segllm.box_proj.*``, our naming: SegLLM's own release decodes with
HIPIE rather than SAM, so its checkpoint does not load here; see docs/seg_token.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reasonseg_ros.masks import decode_rle
from reasonseg_ros.reasoner.seg_token.model import nn, torch
from reasonseg_ros.types import SegmentedObject

TOKENS_PER_OBJECT = 2


class MemoryEncoder(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.box_proj = nn.Linear(4, hidden)

    def forward(self, model: Any, image: np.ndarray, objects: Sequence[SegmentedObject]) -> Any:
        """``(2 * len(objects), H)``: mask token then box token per object, oldest first."""
        height, width = image.shape[:2]
        tokens = []
        for obj in objects:
            mask = decode_rle(obj.rle)
            if mask.shape != (height, width):
                continue  # remembered from a frame of another size: nothing to crop
            x1, y1, x2, y2 = (round(v) for v in obj.box)
            crop = np.where(mask[..., None], image, 0)[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)]
            features = model.encode_image(model.preprocess(np.ascontiguousarray(crop)))
            tokens.append(features[0].mean(dim=0))
            box = torch.tensor([x1 / width, y1 / height, x2 / width, y2 / height], dtype=self.box_proj.weight.dtype)
            tokens.append(self.box_proj(box.to(self.box_proj.weight.device)))
        if not tokens:
            return None
        return torch.stack(tokens)
