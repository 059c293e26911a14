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

"""The streaming sam2 tracker against SAM 2.1's own ``SAM2VideoPredictor`` (the independent reference).

Both run the same tiny random SAM 2.1 (tests/sam2_tiny.py: num_maskmem = 1 + 3 recent frames, 5 object
pointers, so both windows fill and slide within the video) on the same preprocessed frames with the same mask
prompts. The predictor sees the whole video up front; the tracker sees one frame per step. Masks must be equal
frame by frame, object scores equal to float precision. The model's outputs mean nothing (random weights).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from flow_scenes import SceneObject, render
from sam2_tiny import RECENT_FRAMES, tiny_overrides

from reasonseg_ros.config import Sam2TrackingConfig, TrackingConfig, load_config
from reasonseg_ros.errors import CheckpointError, ConfigError, InputError
from reasonseg_ros.types import Frame

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("sam2", reason="the sam2 extra is not installed")
import sam2.sam2_video_predictor as video_module  # noqa: E402
from sam2.build_sam import build_sam2_video_predictor  # noqa: E402

from reasonseg_ros.segmenter.sam2_image import Sam2ImageSegmenter  # noqa: E402
from reasonseg_ros.tracker import create_tracker  # noqa: E402
from reasonseg_ros.tracker.sam2_tracker import Sam2Tracker  # noqa: E402

N_FRAMES = 10
IDS = (1, 2, 3)


@pytest.fixture(scope="module")
def video():
    objects = {
        1: SceneObject(14, lambda t: (40 + 4 * t, 40 + t, 1.0), seed=11),
        2: SceneObject(18, lambda t: (120 - 3 * t, 80, 1.0 + 0.02 * t), seed=12),
        3: SceneObject(10, lambda t: (60, 100 - 2 * t, 1.0), seed=13),
    }
    return render(128, 160, objects, N_FRAMES, seed=5)


@pytest.fixture(scope="module")
def reference(tiny_sam2):
    """SAM2VideoPredictor with the tiny model's weights, built as build_sam2_video_predictor builds it."""
    return build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", None, "cpu", "eval", tiny_overrides())


@contextmanager
def object_score_shift(tiny_sam2, shift: float):
    """Shift SAM 2's object-score logit by ``shift``.

    The random model's logit is about -0.02 on every frame, so without this nothing would be in sight (no
    masks compared) or the sign would hang on float noise. +3: every object in sight, masks compared pixel
    by pixel; -3: every object occluded, memories with SAM 2's no-object embedding.
    """
    bias = tiny_sam2.model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias
    saved = bias.detach().clone()
    with torch.no_grad():
        bias.add_(shift)
    try:
        yield shift
    finally:
        with torch.no_grad():
            bias.copy_(saved)


@pytest.fixture(params=[3.0, -3.0], ids=["in-sight", "occluded"])
def object_bias(request, tiny_sam2):
    with object_score_shift(tiny_sam2, request.param) as shift:
        yield shift


@pytest.fixture
def in_sight(tiny_sam2):
    with object_score_shift(tiny_sam2, 3.0) as shift:
        yield shift


def run_reference(predictor, tiny_sam2, frames, prompts: dict[int, np.ndarray], monkeypatch):
    """Per frame (from frame 1): {object id: (mask, object score logit)} from the video predictor."""
    predictor.load_state_dict(tiny_sam2.model.state_dict())
    images = torch.cat([tiny_sam2.preprocess(f) for f in frames])
    h, w = frames[0].shape[:2]
    # The predictor reads a folder of JPEGs; give it the exact tensors the tracker encodes instead.
    monkeypatch.setattr(video_module, "load_video_frames", lambda **_: (images, h, w))
    state = predictor.init_state(video_path="<frames in memory>")
    for object_id, mask in prompts.items():
        predictor.add_new_mask(state, 0, object_id, mask)
    out = []
    for t, ids, masks in predictor.propagate_in_video(state):
        if t == 0:
            continue
        frame = {}
        for k, object_id in enumerate(ids):
            index = state["obj_id_to_idx"][object_id]
            logit = float(state["output_dict_per_obj"][index]["non_cond_frame_outputs"][t]["object_score_logits"])
            low_res = state["output_dict_per_obj"][index]["non_cond_frame_outputs"][t]["pred_masks"]
            frame[object_id] = ((masks[k, 0] > 0).cpu().numpy(), logit, low_res[0])
        out.append(frame)
    return out


def assert_same(step, expected, t, tracker):
    for object_id, (mask, logit, low_res) in expected.items():
        state = step[object_id]
        # The random model's logits are small (|x| < 0.2), and a wrong pointer position moves them by ~4e-6; the
        # batched steps and the predictor's one-object steps differ by ~1e-7 (float summation order).
        torch.testing.assert_close(tracker.last_logits[object_id], low_res, rtol=0, atol=1e-6)
        assert state.visible == (logit > 0), (t, object_id)
        assert state.score == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-5), (t, object_id)
        if state.visible:
            differing = int(np.count_nonzero(state.mask != mask))
            assert differing == 0, f"frame {t}, object {object_id}: {differing} pixels differ"
        else:
            assert not state.mask.any() and state.box is None


def test_streaming_equals_the_video_predictor_frame_by_frame(tiny_sam2, reference, video, monkeypatch, object_bias):
    tracker = Sam2Tracker(tiny_sam2, recent_frames=RECENT_FRAMES)
    for i in IDS:
        tracker.seed(i, Frame(video.frames[0], 0), video.masks[0][i])
    expected = run_reference(reference, tiny_sam2, video.frames, {i: video.masks[0][i] for i in IDS}, monkeypatch)
    assert len(expected) == N_FRAMES - 1
    shown = 0
    for t in range(1, N_FRAMES):
        step = tracker.step(Frame(video.frames[t], t))
        assert set(step) == set(IDS)
        assert_same(step, expected[t - 1], t, tracker)
        shown += sum(s.visible for s in step.values())
    # Every object in sight on every frame (masks compared), or none.
    assert shown == (3 * (N_FRAMES - 1) if object_bias > 0 else 0)


def test_objects_seeded_at_different_frames_and_reseeded_equal_their_own_videos(
    tiny_sam2, reference, video, monkeypatch, in_sight
):
    """Each object equals the video predictor on the video from its (last) seeding frame.

    Object 1 from frame 0, object 2 from frame 3, object 3 from frame 0 and again from frame 5. Once their
    banks are full, objects 1 and 2 run in one batch although their conditioning frames lie at different
    distances.
    """
    tracker = Sam2Tracker(tiny_sam2, recent_frames=RECENT_FRAMES)
    frames, masks = video.frames, video.masks
    one = run_reference(reference, tiny_sam2, frames, {1: masks[0][1]}, monkeypatch)
    two = run_reference(reference, tiny_sam2, frames[3:], {2: masks[3][2]}, monkeypatch)
    three = run_reference(reference, tiny_sam2, frames[:6], {3: masks[0][3]}, monkeypatch)
    three_again = run_reference(reference, tiny_sam2, frames[5:], {3: masks[5][3]}, monkeypatch)
    batches: list[list[int]] = []
    step_group = tracker._step_group
    monkeypatch.setattr(tracker, "_step_group", lambda ids, *a: batches.append(list(ids)) or step_group(ids, *a))
    tracker.seed(1, Frame(frames[0]), masks[0][1])
    tracker.seed(3, Frame(frames[0]), masks[0][3])
    for t in range(1, N_FRAMES):
        batches.clear()
        step = tracker.step(Frame(frames[t], t))
        assert_same({1: step[1]}, one[t - 1], t, tracker)
        assert_same({3: step[3]}, three[t - 1] if t <= 5 else three_again[t - 6], t, tracker)
        if t > 3:
            assert_same({2: step[2]}, two[t - 4], t, tracker)
        if t >= 3 + tiny_sam2.model.max_obj_ptrs_in_encoder:  # both banks full: one batch
            assert [1, 2] in batches, batches
        # A round segments object 2 on frame 3, and object 3 again on frame 5: seeds after those steps.
        if t == 3:
            tracker.seed(2, Frame(frames[3]), masks[3][2])
        if t == 5:
            tracker.seed(3, Frame(frames[5]), masks[5][3])
    assert tracker.memory_sizes()[3][1] == RECENT_FRAMES  # the re-seeded bank refilled


def test_memory_banks_stay_bounded(tiny_sam2, video):
    tracker = Sam2Tracker(tiny_sam2, recent_frames=2)
    tracker.seed(1, Frame(video.frames[0]), video.masks[0][1])
    for t in range(1, N_FRAMES):
        tracker.step(Frame(video.frames[t]))
        cond, recent, pointers = tracker.memory_sizes()[1]
        assert (cond, recent, pointers) == (1, min(t, 2), 1 + min(t, tiny_sam2.model.max_obj_ptrs_in_encoder - 1))


def test_one_image_encode_per_step_for_all_objects(tiny_sam2, video):
    calls = []
    handle = tiny_sam2.model.image_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        tracker = Sam2Tracker(tiny_sam2, recent_frames=RECENT_FRAMES)
        first = video.frames[0].copy()  # a frame no earlier test encoded
        Sam2ImageSegmenter(tiny_sam2).embed(first)  # the round that segmented the objects
        for i in IDS:
            tracker.seed(i, Frame(first), video.masks[0][i])
        assert len(calls) == 1  # the round and the three seeds share frame 0's encode
        for t in range(1, 5):
            tracker.step(Frame(video.frames[t]))
        assert len(calls) == 5
    finally:
        handle.remove()


def test_grey_frames_other_sizes_and_bad_seeds(tiny_sam2, video):
    tracker = Sam2Tracker(tiny_sam2, recent_frames=RECENT_FRAMES)
    with pytest.raises(InputError, match="seed mask of object 4"):
        tracker.seed(4, Frame(video.frames[0]), np.zeros((5, 5), bool))
    assert tracker.tracked_ids == frozenset()
    assert tracker.step(Frame(video.frames[1])) == {}
    tracker.seed(1, Frame(video.frames[0][:, :, 0]), video.masks[0][1])  # a mono8 frame
    tracker.seed(2, Frame(video.frames[0]), np.zeros((128, 160), bool))  # an empty mask
    assert tracker.step(Frame(video.frames[1]))[1].mask.shape == (128, 160)
    assert tracker.pop_warnings() == []
    bigger = np.repeat(np.repeat(video.frames[2], 2, axis=0), 2, axis=1)
    out = tracker.step(Frame(bigger))
    assert out[1].mask.shape == (256, 320) and out[2].mask.shape == (256, 320)
    warnings = tracker.pop_warnings()
    assert len(warnings) == 1 and "160x128 to 320x256" in warnings[0]
    tracker.remove(2)
    tracker.remove(42)
    assert tracker.tracked_ids == {1}
    tracker.clear()
    assert tracker.tracked_ids == frozenset()


def test_create_tracker_shares_the_segmenters_model(tiny_sam2):
    segmenter = Sam2ImageSegmenter(tiny_sam2)
    config = load_config(
        None,
        {
            "tracking.backend": "sam2",
            "tracking.sam2.random_weights": True,
            "tracking.sam2.recent_frames": RECENT_FRAMES,
        },
    )
    tracker = create_tracker(config.tracking, segmenter)
    assert isinstance(tracker, Sam2Tracker) and tracker.sam2 is segmenter.sam2
    assert create_tracker(TrackingConfig()) is None


def test_too_many_recent_frames_for_the_model_is_a_config_error(tiny_sam2):
    with pytest.raises(ConfigError, match=r"recent_frames must be between 0 and 3"):
        Sam2Tracker(tiny_sam2, recent_frames=4)


def test_missing_checkpoint_names_the_file_and_the_url(tmp_path):
    config = TrackingConfig(backend="sam2", sam2=Sam2TrackingConfig(model="sam2.1_hiera_s", cache_dir=str(tmp_path)))
    with pytest.raises(CheckpointError) as info:
        create_tracker(config)
    message = str(info.value)
    assert "\n" not in message and "tracking.sam2" in message
    assert "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_small.pt" in message


def test_objects_seeded_anew_at_another_size_bring_no_size_warning(tiny_sam2, video):
    """The engine re-seeds every object on a resolution change (clear, then seed): nothing drifts, nothing to say."""
    tracker = Sam2Tracker(tiny_sam2, recent_frames=RECENT_FRAMES)
    tracker.seed(1, Frame(video.frames[0]), video.masks[0][1])
    tracker.step(Frame(video.frames[1]))
    bigger = [np.repeat(np.repeat(f, 2, axis=0), 2, axis=1) for f in video.frames[1:4]]
    big_mask = np.repeat(np.repeat(video.masks[0][1], 2, axis=0), 2, axis=1)
    tracker.clear()
    tracker.seed(1, Frame(bigger[0]), big_mask)
    assert tracker.step(Frame(bigger[1]))[1].mask.shape == (256, 320)
    tracker.remove(1)  # the last object gone (a reset), a new one seeded at the first size
    tracker.seed(2, Frame(video.frames[1]), video.masks[0][1])
    tracker.step(Frame(video.frames[2]))
    assert tracker.pop_warnings() == []
