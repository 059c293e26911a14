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

"""Synthetic videos with known per-frame object masks, for the flow tracker's tests and benchmark.

Each object is a textured disc (its own smooth random texture) drawn at a
position and scale given per frame; an optional textured bar in front of
everything hides what passes behind it. Ground truth is the visible part of
each disc, and its visibility (share of the disc not hidden).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def texture(height: int, width: int, seed: int, smooth: float = 1.5) -> np.ndarray:
    """Smooth random grey levels (uint8), rich in corners at every scale the tracker uses."""
    rng = np.random.default_rng(seed)
    k = max(1, round(smooth * 2))
    noise = rng.random((height + 8 * k, width + 8 * k)).astype(np.float32)
    # Separable box blur twice ~ a Gaussian (numpy only, so the scenes do not depend on the tracker's library);
    # the margin is cut off afterwards so that the zero padding of the convolution leaves no dark rim.
    kernel = np.ones(2 * k + 1, dtype=np.float32) / (2 * k + 1)
    for _ in range(2):
        noise = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, noise)
        noise = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, noise)
    noise = noise[4 * k : 4 * k + height, 4 * k : 4 * k + width]
    noise = (noise - noise.mean()) / max(1e-6, float(noise.std()))
    return np.clip(128 + 50 * noise, 0, 255).astype(np.uint8)


@dataclass
class SceneObject:
    radius: float
    path: Callable[[int], tuple[float, float, float]]
    """frame index → (centre x, centre y, scale)."""
    seed: int


@dataclass
class Scene:
    frames: list[np.ndarray]
    """H×W×3 uint8 RGB."""
    masks: list[dict[int, np.ndarray]]
    """Per frame: object id → visible part of the object (H×W bool)."""
    visibility: list[dict[int, float]]
    """Per frame: object id → share of the object not hidden by the occluder."""


def render(
    height: int,
    width: int,
    objects: dict[int, SceneObject],
    n_frames: int,
    occluder: tuple[int, int, int, int] | None = None,
    seed: int = 0,
) -> Scene:
    background = texture(height, width, seed)
    textures = {i: texture(int(4 * o.radius) + 8, int(4 * o.radius) + 8, o.seed) for i, o in objects.items()}
    occluder_texture = texture(height, width, seed + 1000, smooth=3.0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames, masks, visibility = [], [], []
    for t in range(n_frames):
        grey = background.copy()
        full: dict[int, np.ndarray] = {}
        for i, obj in objects.items():
            cx, cy, scale = obj.path(t)
            r = obj.radius * scale
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            tex = textures[i]
            # The texture moves and scales with the disc (sampled in the disc's own coordinates).
            u = np.clip(((xx - cx) / scale + tex.shape[1] / 2).astype(int), 0, tex.shape[1] - 1)
            v = np.clip(((yy - cy) / scale + tex.shape[0] / 2).astype(int), 0, tex.shape[0] - 1)
            grey[inside] = tex[v[inside], u[inside]]
            for j in full:
                full[j] &= ~inside  # later objects are drawn in front
            full[i] = inside
        hidden = np.zeros((height, width), dtype=bool)
        if occluder is not None:
            x1, y1, x2, y2 = occluder
            hidden[y1:y2, x1:x2] = True
            grey[hidden] = occluder_texture[hidden]
        frame_masks, frame_vis = {}, {}
        for i, m in full.items():
            area = max(1, int(m.sum()))
            frame_masks[i] = m & ~hidden
            frame_vis[i] = float(frame_masks[i].sum()) / area
        frames.append(np.repeat(grey[:, :, None], 3, axis=2))
        masks.append(frame_masks)
        visibility.append(frame_vis)
    return Scene(frames, masks, visibility)


def looping_scene(height: int, width: int, n_objects: int, n_frames: int, radius: float):
    """Objects moving to and fro (a closed loop, so a long run can cycle the frames)."""
    objects = {}
    for i in range(n_objects):
        cx, cy = width * (i + 1) / (n_objects + 1), height * (0.3 + 0.4 * (i % 2))

        def path(t: int, cx: float = cx, cy: float = cy) -> tuple[float, float, float]:
            phase = 2 * np.pi * t / n_frames
            return cx + 0.06 * width * np.sin(phase), cy + 0.04 * height * np.cos(phase), 1.0

        objects[i + 1] = SceneObject(radius, path, seed=100 + i)
    return render(height, width, objects, n_frames, seed=7)
