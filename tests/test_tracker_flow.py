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

"""The flow tracker against ground truth of synthetic videos (textured discs that move, scale and pass behind a bar).

Thresholds are set from measured values (docs/performance.md, "Tracking") with some room: translation measured
IoU 0.97-1.0, scaling 0.84-0.99, back in sight after an occluder 0.91-1.0.
"""

from __future__ import annotations

import numpy as np
import pytest
from flow_scenes import Scene, SceneObject, looping_scene, render

from reasonseg_ros.config import FlowTrackingConfig, TrackingConfig, load_config
from reasonseg_ros.errors import ConfigError, InputError
from reasonseg_ros.masks import mask_iou, mask_to_box
from reasonseg_ros.types import Frame

pytest.importorskip("cv2", reason="the cv extra is not installed")

from reasonseg_ros.tracker import create_tracker
from reasonseg_ros.tracker.flow import FlowTracker


def run(scene: Scene, ids: list[int], tracker: FlowTracker | None = None) -> list[dict]:
    tracker = tracker or FlowTracker()
    for i in ids:
        tracker.seed(i, Frame(scene.frames[0], 0, "cam"), scene.masks[0][i])
    return [tracker.step(Frame(image, t, "cam")) for t, image in enumerate(scene.frames[1:], start=1)]


@pytest.fixture(scope="module")
def moving() -> Scene:
    objects = {
        1: SceneObject(25, lambda t: (50 + 6 * t, 70 + 2 * t, 1.0), seed=1),
        2: SceneObject(20, lambda t: (260 - 4 * t, 180 - 3 * t, 1.0), seed=2),
    }
    return render(240, 320, objects, 20)


@pytest.fixture(scope="module")
def scaling() -> Scene:
    objects = {
        1: SceneObject(20, lambda t: (90, 120, 1.0 + 0.03 * t), seed=3),
        2: SceneObject(30, lambda t: (230, 120, 1.4 - 0.02 * t), seed=4),
    }
    return render(240, 320, objects, 16)


@pytest.fixture(scope="module")
def occluded() -> Scene:
    """A disc moving right passes behind a bar at x 150-190: fully in sight, half, hidden, half, in sight."""
    objects = {1: SceneObject(25, lambda t: (60 + 6 * t, 80 + 2 * t, 1.0), seed=1)}
    return render(240, 320, objects, 34, occluder=(150, 0, 190, 240))


def test_translating_objects_follow_ground_truth(moving):
    steps = run(moving, [1, 2])
    for i in (1, 2):
        ious = [mask_iou(step[i].mask, moving.masks[t][i]) for t, step in enumerate(steps, start=1)]
        assert np.mean(ious) >= 0.95, (i, np.round(ious, 3))
        assert min(ious) >= 0.9
        assert all(step[i].visible for step in steps)
    last = steps[-1][1]
    assert last.box == mask_to_box(last.mask) and 0.5 < last.score <= 1.0
    assert last.mask.shape == (240, 320) and last.mask.dtype == bool


def test_scaling_objects_follow_ground_truth(scaling):
    steps = run(scaling, [1, 2])
    for i in (1, 2):
        ious = [mask_iou(step[i].mask, scaling.masks[t][i]) for t, step in enumerate(steps, start=1)]
        assert np.mean(ious) >= 0.85, (i, np.round(ious, 3))
    # The growing disc grew in the tracker's mask too, the shrinking one shrank.
    first, last = steps[0], steps[-1]
    assert last[1].mask.sum() > 1.5 * first[1].mask.sum()
    assert last[2].mask.sum() < 0.8 * first[2].mask.sum()


def test_occluder_visible_then_occluded_then_visible_again(occluded):
    steps = run(occluded, [1])
    truth = occluded.visibility
    visible = [step[1].visible for step in steps]
    # In sight before the bar, hidden while at most a third of it shows, found again once most of it is out.
    assert all(visible[:10]), visible
    hidden_frames = [t for t in range(1, 34) if truth[t][1] < 0.3]
    assert hidden_frames and not any(visible[t - 1] for t in hidden_frames), visible
    back = list(range(25, 34))
    assert all(visible[t - 1] for t in back), visible
    # While hidden the mask is empty and the box None; when back, it is where the disc is.
    for t in hidden_frames:
        assert steps[t - 1][1].box is None and not steps[t - 1][1].mask.any()
    ious_back = [mask_iou(steps[t - 1][1].mask, occluded.masks[t][1]) for t in back]
    assert np.mean(ious_back) >= 0.9, np.round(ious_back, 3)
    # Half behind the bar: the mask is the part still in sight, not the whole disc.
    half = next(t for t in range(1, 34) if 0.55 < truth[t][1] < 0.8 and visible[t - 1])
    assert mask_iou(steps[half - 1][1].mask, occluded.masks[half][1]) >= 0.85


def test_no_drift_over_a_long_run():
    """Three objects going to and fro for 150 steps stay on target.

    The reference look is renewed every 10 steps; flow runs on frames shrunk by 2, as on a 720p camera.
    """
    scene = looping_scene(240, 320, 3, 30, 30)
    tracker = FlowTracker(FlowTrackingConfig(max_side=160))
    for i in scene.masks[0]:
        tracker.seed(i, Frame(scene.frames[0]), scene.masks[0][i])
    late = []
    for k in range(1, 151):
        out = tracker.step(Frame(scene.frames[k % 30], k))
        if k > 120:
            late.extend(mask_iou(out[i].mask, scene.masks[k % 30][i]) for i in out)
    assert np.mean(late) >= 0.93 and min(late) >= 0.9, np.round(late, 3)


def test_grey_and_rgba_frames_track_like_rgb(moving):
    rgb = run(moving, [1])
    grey_scene = Scene([f[:, :, 0] for f in moving.frames], moving.masks, moving.visibility)
    rgba_scene = Scene(
        [np.concatenate([f, np.full((*f.shape[:2], 1), 255, np.uint8)], axis=2) for f in moving.frames],
        moving.masks,
        moving.visibility,
    )
    for other in (run(grey_scene, [1]), run(rgba_scene, [1])):
        for a, b in zip(rgb, other, strict=True):
            np.testing.assert_array_equal(a[1].mask, b[1].mask)


def test_frame_of_another_size_rescales_the_track_with_a_warning(moving):
    tracker = FlowTracker()
    tracker.seed(1, Frame(moving.frames[0]), moving.masks[0][1])
    tracker.step(Frame(moving.frames[1]))
    assert tracker.pop_warnings() == []
    big = np.repeat(np.repeat(moving.frames[2], 2, axis=0), 2, axis=1)
    state = tracker.step(Frame(big))[1]
    warnings = tracker.pop_warnings()
    assert len(warnings) == 1 and "320x240 to 640x480" in warnings[0] and "object 1" in warnings[0]
    assert state.mask.shape == (480, 640) and state.visible
    # The last mask, scaled ×2 (no flow across the change: the track restarts from the new frame).
    scaled = np.repeat(np.repeat(moving.masks[1][1], 2, axis=0), 2, axis=1)
    assert mask_iou(state.mask, scaled) >= 0.9
    # And tracking goes on at the new size: the mask moves with the disc (one step behind, from the restart).
    bigger = np.repeat(np.repeat(moving.frames[3], 2, axis=0), 2, axis=1)
    truth = np.repeat(np.repeat(moving.masks[3][1], 2, axis=0), 2, axis=1)
    moved = tracker.step(Frame(bigger))[1]
    assert moved.visible and mask_iou(moved.mask, truth) >= 0.7
    assert mask_iou(moved.mask, truth) > mask_iou(moved.mask, scaled) + 0.1
    assert tracker.pop_warnings() == []


def test_empty_seed_mask_is_tracked_as_not_visible(moving):
    tracker = FlowTracker()
    tracker.seed(7, Frame(moving.frames[0]), np.zeros((240, 320), bool))
    tracker.seed(1, Frame(moving.frames[0]), moving.masks[0][1])
    out = tracker.step(Frame(moving.frames[1]))
    assert out[7].visible is False and out[7].box is None and not out[7].mask.any() and out[7].score == 0.0
    assert out[1].visible


def test_seed_mask_of_another_size_is_refused(moving):
    tracker = FlowTracker()
    with pytest.raises(InputError, match="seed mask of object 3"):
        tracker.seed(3, Frame(moving.frames[0]), np.zeros((10, 10), bool))
    assert tracker.tracked_ids == frozenset()


def test_reseed_remove_and_clear(moving):
    tracker = FlowTracker()
    tracker.seed(1, Frame(moving.frames[0]), moving.masks[0][1])
    tracker.seed(2, Frame(moving.frames[0]), moving.masks[0][2])
    assert tracker.tracked_ids == {1, 2}
    tracker.step(Frame(moving.frames[1]))
    # Re-seeding object 1 on a later frame (a round segmented it again) replaces its track.
    tracker.seed(1, Frame(moving.frames[5]), moving.masks[5][1])
    out = tracker.step(Frame(moving.frames[6]))
    assert mask_iou(out[1].mask, moving.masks[6][1]) >= 0.9
    tracker.remove(2)
    tracker.remove(99)  # unknown ids are ignored
    assert set(tracker.step(Frame(moving.frames[7]))) == {1}
    tracker.clear()
    assert tracker.tracked_ids == frozenset() and tracker.step(Frame(moving.frames[8])) == {}


def test_create_tracker_builds_flow_with_its_settings():
    config = load_config(None, {"tracking.backend": "flow", "tracking.flow.max_points": 12})
    tracker = create_tracker(config.tracking)
    assert isinstance(tracker, FlowTracker) and tracker.config.max_points == 12
    assert create_tracker(TrackingConfig()) is None


def test_flow_settings_are_range_checked():
    with pytest.raises(ConfigError, match=r"tracking\.flow\.min_visible"):
        load_config(None, {"tracking.flow.min_visible": 1.5})
    assert FlowTrackingConfig().max_side >= 64


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_in_sight_upsampling_is_the_nearest_small_pixel(factor):
    """The whole-factor fast path equals the plain rule: full pixel (x, y) takes small pixel (x // f, y // f)."""
    from reasonseg_ros.tracker.flow import _in_sight_at_full

    rng = np.random.default_rng(factor)
    crop = rng.random((20, 30)) > 0.5
    origin = (7, 5)
    for box in [
        (7 * factor, 5 * factor, 37 * factor, 25 * factor),
        (7 * factor + 1, 5 * factor + 2, 30 * factor, 20 * factor),
        (0, 0, 40 * factor, 30 * factor),
    ]:
        x1, y1, x2, y2 = box
        got = _in_sight_at_full(crop, origin, box, 1 / factor)
        ys, xs = np.mgrid[y1:y2, x1:x2]
        r, c = ys // factor - origin[1], xs // factor - origin[0]
        inside = (r >= 0) & (r < 20) & (c >= 0) & (c < 30)
        expected = np.zeros(r.shape, bool)
        expected[inside] = crop[r[inside], c[inside]]
        np.testing.assert_array_equal(got, expected)
