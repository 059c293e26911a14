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

"""The ``flow`` tracker: classical optical flow moves each object's mask to the newest frame.

Per object and step: corners on the visible part of the object on its
reference frame (the last frame it was seen on), pyramidal Lucas-Kanade to the
new frame and back (a point whose round trip misses its start is dropped), and
a RANSAC similarity fit (translation, rotation, uniform scale) of the
survivors. The object's *base* (its mask and grey look when seeded or last
refreshed) is warped by the accumulated fit, so a mask is never re-rasterised
step after step. Pixels of the moved mask whose grey level no longer matches
the base look are hidden (something passed in front): the output is the part
still in sight, and when too little of it is, the object is occluded. An
occluded object is searched for on every later frame, where its last velocity
puts it, by masked template matching of its look. The score is the inlier
share of the fit. Flow runs on a grey copy shrunk to ``max_side``; masks stay
at full resolution.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonseg_ros.config import FlowTrackingConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import InputError
from reasonseg_ros.masks import Box, mask_to_box
from reasonseg_ros.tracker.base import TrackState
from reasonseg_ros.types import Frame

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@dataclass
class _Grey:
    """One frame prepared for flow: grey, shrunk by ``scale`` (small = full × scale)."""

    image: np.ndarray
    scale: float
    full_size: tuple[int, int]


@dataclass
class _Base:
    """An object's mask and look on the frame it was seeded (or last refreshed) on."""

    mask: np.ndarray
    """Full-resolution bool crop of the mask at ``full_origin``."""
    full_origin: tuple[int, int]
    look: np.ndarray
    """Small-frame grey crop at ``small_origin``."""
    look_mask: np.ndarray
    """Small-frame bool crop of the mask, same shape as ``look``."""
    small_origin: tuple[int, int]


@dataclass
class _Track:
    base: _Base | None
    """None: seeded with an empty mask, nothing to follow."""
    ref: _Grey
    """The last frame the object was seen on."""
    warp: np.ndarray
    """2×3 similarity, base small-frame coordinates → ``ref`` small-frame coordinates."""
    seen: np.ndarray
    """Small-frame bool mask of the part in sight on ``ref``, cropped to ``seen_box``."""
    mask: np.ndarray
    """Full-resolution bool mask in sight on ``ref``."""
    box: Box | None
    """Box of ``mask``."""
    seen_box: tuple[int, int, int, int] | None
    """Box of ``seen``."""
    visible: bool = True
    score: float = 1.0
    velocity: np.ndarray | None = None
    """Shift per step of the object's centre, small-frame pixels (to predict it while hidden)."""
    steps_hidden: int = 0
    steps_in_sight: int = 0


class FlowTracker:
    """Lucas-Kanade + RANSAC similarity per object; needs OpenCV, no weights."""

    def __init__(self, config: FlowTrackingConfig | None = None) -> None:
        self.cv2: Any = require("cv2", "the flow tracker")
        self.config = config or FlowTrackingConfig()
        self.name = "flow (OpenCV pyramidal Lucas-Kanade, RANSAC similarity)"
        self._tracks: dict[int, _Track] = {}
        self._warnings: list[str] = []
        self._lock = threading.Lock()  # a round may seed while the tracking loop steps
        c = self.config
        self._lk = {
            "winSize": (c.win_size, c.win_size),
            "maxLevel": c.pyramid_levels,
            "criteria": (self.cv2.TERM_CRITERIA_EPS | self.cv2.TERM_CRITERIA_COUNT, 10, 0.1),
        }
        side = c.win_size // 2 * 2 + 1
        self._erode_kernel = self.cv2.getStructuringElement(self.cv2.MORPH_ELLIPSE, (side, side))

    # -- Tracker protocol ------------------------------------------------------------------------------------

    @property
    def tracked_ids(self) -> frozenset[int]:
        return frozenset(self._tracks)

    def seed(self, object_id: int, frame: Frame, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != frame.size:
            raise InputError(f"seed mask of object {object_id} is {mask.shape}, its frame is {frame.size}")
        track = self._new_track(self._grey(frame), mask)
        with self._lock:
            self._tracks[object_id] = track

    def step(self, frame: Frame) -> dict[int, TrackState]:
        grey = self._grey(frame)
        with self._lock:
            following: list[_Track] = []
            for object_id, track in list(self._tracks.items()):
                if track.ref.full_size != grey.full_size:
                    self._tracks[object_id] = self._rescaled(object_id, track, grey)
                elif track.base is not None:
                    if track.visible:
                        following.append(track)
                    else:
                        self._search(track, grey)
            self._follow(following, grey)
            return {object_id: self._state(track, grey) for object_id, track in self._tracks.items()}

    def remove(self, object_id: int) -> None:
        with self._lock:
            self._tracks.pop(object_id, None)

    def clear(self) -> None:
        with self._lock:
            self._tracks.clear()

    def pop_warnings(self) -> list[str]:
        """Warnings since the last call (a frame of another size), for the caller's diagnostics."""
        warnings, self._warnings = self._warnings, []
        return warnings

    # -- frames and bases ------------------------------------------------------------------------------------

    def _grey(self, frame: Frame) -> _Grey:
        cv2 = self.cv2
        image = np.asarray(frame.image)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim == 2:
            grey = image
        elif image.ndim == 3 and image.shape[2] in (3, 4):
            code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
            grey = cv2.cvtColor(np.ascontiguousarray(image), code)
        else:
            raise InputError(f"the flow tracker needs an H×W or H×W×3 image, got shape {image.shape}")
        if grey.dtype != np.uint8:
            grey = np.clip(grey, 0, 255).astype(np.uint8)
        h, w = grey.shape
        # Shrink by a whole factor: area averaging over whole blocks is several times faster than any other ratio.
        factor = -(-max(h, w) // self.config.max_side)
        if factor > 1:
            grey = cv2.resize(grey, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
        return _Grey(np.ascontiguousarray(grey), grey.shape[1] / w, (h, w))

    def _new_track(self, grey: _Grey, mask: np.ndarray) -> _Track:
        base = self._base(grey, mask)
        if base is None:
            return _Track(None, grey, IDENTITY.copy(), np.zeros((0, 0), bool), mask.copy(), None, None, False, 0.0)
        x, y = base.small_origin
        h, w = base.look.shape
        return _Track(base, grey, IDENTITY.copy(), base.look_mask, mask.copy(), mask_to_box(mask), (x, y, x + w, y + h))

    def _base(self, grey: _Grey, mask: np.ndarray, box: Box | None = None) -> _Base | None:
        box = box or mask_to_box(mask)
        if box is None:
            return None
        fx1, fy1, fx2, fy2 = (int(v) for v in box)
        s = grey.scale
        sh, sw = grey.image.shape
        x1, y1 = int(fx1 * s), int(fy1 * s)
        x2, y2 = min(sw, max(x1 + 1, int(np.ceil(fx2 * s)))), min(sh, max(y1 + 1, int(np.ceil(fy2 * s))))
        # The mask at the small crop's pixel centres, so that look and look mask line up exactly.
        rows = np.minimum(((np.arange(y1, y2) + 0.5) / s).astype(np.int64), mask.shape[0] - 1)
        cols = np.minimum(((np.arange(x1, x2) + 0.5) / s).astype(np.int64), mask.shape[1] - 1)
        look_mask = mask[np.ix_(rows, cols)]
        return _Base(mask[fy1:fy2, fx1:fx2].copy(), (fx1, fy1), grey.image[y1:y2, x1:x2].copy(), look_mask, (x1, y1))

    def _rescaled(self, object_id: int, track: _Track, grey: _Grey) -> _Track:
        """The camera's resolution changed: carry the mask over, scaled, and start again from this frame."""
        h, w = grey.full_size
        old = track.ref.full_size
        mask = self.cv2.resize(track.mask.astype(np.uint8), (w, h), interpolation=self.cv2.INTER_NEAREST) > 0
        self._warnings.append(
            f"object {object_id}: frame size changed from {old[1]}x{old[0]} to {w}x{h}; its track was re-seeded "
            "from its last mask scaled to the new size"
        )
        new = self._new_track(grey, mask)
        new.visible = track.visible and new.base is not None
        return new

    # -- following ------------------------------------------------------------------------------------------

    def _features(self, track: _Track) -> np.ndarray | None:
        """Corners on the part in sight on the reference frame, small-frame ``(N, 1, 2)`` float32."""
        c = self.config
        if track.seen_box is None:
            return None
        x1, y1, x2, y2 = track.seen_box
        roi = track.ref.image[y1:y2, x1:x2]
        if roi.shape[0] < 3 or roi.shape[1] < 3:
            return None
        allowed = track.seen.astype(np.uint8)
        # Prefer corners half a flow window inside the part in sight: a window straddling the object's edge (or an
        # occluder's) follows the background as much as the object and drags the fit.
        corners = None
        for region in (self.cv2.erode(allowed, self._erode_kernel), allowed):
            if np.count_nonzero(region) == 0:
                continue
            corners = self.cv2.goodFeaturesToTrack(
                roi,
                maxCorners=c.max_points,
                qualityLevel=c.quality_level,
                minDistance=max(2.0, min(roi.shape) / 12),
                mask=region,
            )
            if corners is not None and len(corners) >= c.min_inliers:
                break
        if corners is None:
            return None
        corners = corners.astype(np.float32)
        corners[..., 0] += x1
        corners[..., 1] += y1
        return corners

    def _follow(self, tracks: list[_Track], grey: _Grey) -> None:
        """Move every visible object; one Lucas-Kanade call each way per reference frame, shared by its objects."""
        cv2, c = self.cv2, self.config
        groups: dict[int, list[tuple[_Track, np.ndarray]]] = {}
        for track in tracks:
            points = self._features(track)
            if points is None or len(points) < c.min_inliers:
                # Too little texture in sight to measure motion: look for the whole object instead.
                self._search(track, grey)
            else:
                groups.setdefault(id(track.ref), []).append((track, points))
        flags = cv2.OPTFLOW_USE_INITIAL_FLOW
        for members in groups.values():
            ref = members[0][0].ref
            points = np.concatenate([p for _, p in members])
            guess = np.concatenate([p + (0 if t.velocity is None else t.velocity) for t, p in members]).astype(
                np.float32
            )
            moved, ok, error = cv2.calcOpticalFlowPyrLK(ref.image, grey.image, points, guess, flags=flags, **self._lk)
            back, ok_back, _ = cv2.calcOpticalFlowPyrLK(
                grey.image, ref.image, moved, points.copy(), flags=flags, **self._lk
            )
            round_trip = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
            good = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (round_trip < c.fb_max_error)
            start = 0
            for track, own in members:
                end = start + len(own)
                part = slice(start, end)
                self._fit(track, own.reshape(-1, 2), moved.reshape(-1, 2)[part], good[part], error.ravel()[part], grey)
                start = end

    def _fit(
        self, track: _Track, src: np.ndarray, dst: np.ndarray, good: np.ndarray, error: np.ndarray, grey: _Grey
    ) -> None:
        cv2, c = self.cv2, self.config
        n = len(src)
        # A point whose window changed look (something moved over part of it) converges between the two motions
        # and survives the round trip; its patch error gives it away.
        if good.any():
            good = good & (error <= c.max_patch_error_ratio * max(float(np.median(error[good])), 1.0))
        src, dst = src[good], dst[good]
        fit, inliers = None, 0
        if len(src) >= c.min_inliers:
            fit, keep = cv2.estimateAffinePartial2D(
                src, dst, method=cv2.RANSAC, ransacReprojThreshold=c.ransac_threshold, maxIters=200, confidence=0.99
            )
            inliers = 0 if keep is None else int(keep.sum())
        track.score = inliers / n
        if fit is None or inliers < c.min_inliers:
            self._hide(track)
            return
        self._accept(track, _compose(fit, track.warp), grey)

    def _search(self, track: _Track, grey: _Grey) -> None:
        """An occluded object: look for its base look around where its velocity puts it."""
        cv2, c, base = self.cv2, self.config, track.base
        assert base is not None
        velocity = np.zeros(2) if track.velocity is None else track.velocity.astype(np.float64)
        predicted = track.warp.copy()
        predicted[:, 2] += velocity * (track.steps_hidden + 1)
        look, look_mask, (ox, oy) = self._warped_look(base, predicted, grey.image.shape)
        th, tw = look.shape
        if th < 4 or tw < 4 or not look_mask.any():
            self._hide(track)
            return
        mx, my = int(c.reacquire_margin * tw) + 1, int(c.reacquire_margin * th) + 1
        h, w = grey.image.shape
        sx1, sy1, sx2, sy2 = max(0, ox - mx), max(0, oy - my), min(w, ox + tw + mx), min(h, oy + th + my)
        if sx2 - sx1 < tw or sy2 - sy1 < th:
            self._hide(track)
            return
        costs = cv2.matchTemplate(grey.image[sy1:sy2, sx1:sx2], look, cv2.TM_SQDIFF, mask=look_mask.astype(np.uint8))
        _, _, (bx, by), _ = cv2.minMaxLoc(costs)
        found = predicted.copy()
        found[:, 2] += (sx1 + bx - ox, sy1 + by - oy)
        track.score = 0.0
        self._accept(track, found, grey, searching=True)

    def _accept(self, track: _Track, warp: np.ndarray, grey: _Grey, searching: bool = False) -> None:
        """Check the moved base against ``grey`` and, when enough of it is in sight, make it the object's state."""
        base = track.base
        assert base is not None
        look, look_mask, (ox, oy) = self._warped_look(base, warp, grey.image.shape)
        th, tw = look.shape
        if not look_mask.any():
            self._hide(track)
            return
        here = grey.image[oy : oy + th, ox : ox + tw]
        diff = self.cv2.blur(self.cv2.absdiff(here, look), (3, 3))
        # A 5×5 majority vote removes isolated pixels that match by chance on whatever hides the object; pixels
        # outside the mask vote "in sight" so that the vote does not erode the mask's own edge.
        matches = (diff <= self.config.appearance_threshold) | ~look_mask
        votes = self.cv2.blur(matches.astype(np.uint8) * 255, (5, 5))
        in_sight = (votes >= 128) & look_mask
        share = float(np.count_nonzero(in_sight)) / float(np.count_nonzero(look_mask))
        if share < self.config.min_visible:
            self._hide(track)
            return
        old_centre = _centre(track.warp, base)
        mask, box = self._full_mask(base, warp, grey, in_sight, (ox, oy))
        local_box = mask_to_box(in_sight)
        if box is None or local_box is None:
            self._hide(track)
            return
        shift = (_centre(warp, base) - old_centre) / (1 + track.steps_hidden)
        track.velocity = (
            shift.astype(np.float32)
            if searching or track.velocity is None
            else (0.5 * track.velocity + 0.5 * shift.astype(np.float32))
        )
        if searching:
            track.score = share
        lx1, ly1, lx2, ly2 = (int(v) for v in local_box)
        track.seen, track.seen_box = in_sight[ly1:ly2, lx1:lx2], (ox + lx1, oy + ly1, ox + lx2, oy + ly2)
        track.mask, track.box, track.warp, track.ref = mask, box, warp, grey
        track.visible, track.steps_hidden = True, 0
        track.steps_in_sight = track.steps_in_sight + 1 if share >= 0.95 else 0
        if track.steps_in_sight >= self.config.refresh_steps:
            # Renew the base from what is seen now: the look follows lighting and pose; the mask is re-drawn
            # once per refresh, not per step.
            # Fully in sight: the whole moved mask, not its in-sight part, whose edge the grey-level test nibbles.
            whole, whole_box = self._full_mask(base, warp, grey, np.ones_like(in_sight), (ox, oy))
            fresh = self._base(grey, whole, whole_box)
            if fresh is not None:
                track.base, track.warp, track.steps_in_sight = fresh, IDENTITY.copy(), 0

    def _hide(self, track: _Track) -> None:
        track.visible = False
        track.steps_hidden += 1
        track.steps_in_sight = 0

    def _warped_look(
        self, base: _Base, warp: np.ndarray, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """The base look and mask moved by ``warp``, cropped to the frame: ``(look, mask, (x, y) origin)``."""
        cv2 = self.cv2
        h, w = base.look.shape
        x0, y0 = base.small_origin
        (x1, y1), (x2, y2) = _warped_box(warp, (x0, y0, x0 + w, y0 + h), shape)
        if x2 <= x1 or y2 <= y1:
            return np.zeros((0, 0), np.uint8), np.zeros((0, 0), bool), (0, 0)
        local = _local(warp, (x0, y0), (x1, y1))
        size = (x2 - x1, y2 - y1)
        look = cv2.warpAffine(base.look, local, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(base.look_mask.astype(np.uint8) * 255, local, size, flags=cv2.INTER_LINEAR) >= 128
        return look, mask, (x1, y1)

    def _full_mask(
        self, base: _Base, warp: np.ndarray, grey: _Grey, in_sight: np.ndarray, origin: tuple[int, int]
    ) -> tuple[np.ndarray, Box | None]:
        """The base mask moved by ``warp`` at full resolution, keeping the pixels in sight; and its box.

        ``in_sight``: small-frame bool crop at ``origin`` of the pixels that still look like the object.
        """
        cv2, s = self.cv2, grey.scale
        full = warp.copy()
        full[:, 2] /= s  # the same rotation and scale at full resolution; the translation grows by 1/scale
        h, w = grey.full_size
        bh, bw = base.mask.shape
        fx, fy = base.full_origin
        (x1, y1), (x2, y2) = _warped_box(full, (fx, fy, fx + bw, fy + bh), (h, w))
        out = np.zeros((h, w), dtype=bool)
        if x2 <= x1 or y2 <= y1:
            return out, None
        moved = (
            cv2.warpAffine(
                base.mask.astype(np.uint8) * 255,
                _local(full, (fx, fy), (x1, y1)),
                (x2 - x1, y2 - y1),
                flags=cv2.INTER_LINEAR,
            )
            >= 128
        )
        moved &= _in_sight_at_full(in_sight, origin, (x1, y1, x2, y2), s)
        box = mask_to_box(moved)
        if box is None:
            return out, None
        out[y1:y2, x1:x2] = moved
        return out, (box[0] + x1, box[1] + y1, box[2] + x1, box[3] + y1)

    def _state(self, track: _Track, grey: _Grey) -> TrackState:
        if not track.visible:
            return TrackState(np.zeros(grey.full_size, dtype=bool), None, float(track.score), False)
        return TrackState(track.mask, track.box, float(track.score), True)


def _compose(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """The 2×3 affine map ``after ∘ before``."""
    out = after[:, :2] @ before
    out[:, 2] += after[:, 2]
    return out


def _local(warp: np.ndarray, src_origin: tuple[int, int], dst_origin: tuple[int, int]) -> np.ndarray:
    """``warp`` between crops: source pixel (relative to ``src_origin``) → destination (relative to ``dst_origin``)."""
    local = warp.astype(np.float64).copy()
    local[:, 2] += warp[:, :2] @ np.asarray(src_origin, dtype=np.float64) - np.asarray(dst_origin, dtype=np.float64)
    return local


def _warped_box(
    warp: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Integer bounds of ``box`` moved by ``warp``, one pixel of margin, clipped to an image of ``shape``."""
    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]], dtype=np.float64) @ warp[:, :2].T + warp[:, 2]
    lo = np.floor(corners.min(axis=0)).astype(int) - 1
    hi = np.ceil(corners.max(axis=0)).astype(int) + 1
    h, w = shape
    return (max(0, int(lo[0])), max(0, int(lo[1]))), (min(w, int(hi[0])), min(h, int(hi[1])))


def _centre(warp: np.ndarray, base: _Base) -> np.ndarray:
    h, w = base.look.shape
    x0, y0 = base.small_origin
    return np.array([x0 + w / 2, y0 + h / 2]) @ warp[:, :2].T + warp[:, 2]


def _in_sight_at_full(
    in_sight: np.ndarray, origin: tuple[int, int], box: tuple[int, int, int, int], scale: float
) -> np.ndarray:
    """The small-frame in-sight verdicts (a crop at ``origin``) for each full-resolution pixel of ``box``.

    Each pixel takes its nearest small pixel; outside the crop it is not in sight.
    """
    x1, y1, x2, y2 = box
    th, tw = in_sight.shape
    factor = round(1 / scale)
    if factor * scale == 1.0:
        # Whole shrink factor: each small pixel covers factor × factor full pixels; repeat the crop and cut.
        r0, c0 = y1 // factor - origin[1], x1 // factor - origin[0]
        r1, c1 = (y2 - 1) // factor - origin[1] + 1, (x2 - 1) // factor - origin[0] + 1
        if r0 >= 0 and c0 >= 0 and r1 <= th and c1 <= tw:
            block = in_sight[r0:r1, c0:c1]
            if factor > 1:
                block = np.repeat(np.repeat(block, factor, axis=0), factor, axis=1)
            dy, dx = y1 - (r0 + origin[1]) * factor, x1 - (c0 + origin[0]) * factor
            return block[dy : dy + y2 - y1, dx : dx + x2 - x1]
    rows = ((np.arange(y1, y2) + 0.5) * scale).astype(np.int64) - origin[1]
    cols = ((np.arange(x1, x2) + 0.5) * scale).astype(np.int64) - origin[0]
    padded = np.zeros((th + 2, tw + 2), dtype=bool)  # one pixel of "not in sight" around the crop
    padded[1:-1, 1:-1] = in_sight
    return padded[np.ix_(np.clip(rows + 1, 0, th + 1), np.clip(cols + 1, 0, tw + 1))]
