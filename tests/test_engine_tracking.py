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

"""Live memory in the engine (issue 13) and re-identification (issue 16), with a tracker test double.

The double moves every seeded mask by a known velocity, so where each object
is on a frame is computed by hand here, independently of the engine.
"""

import threading

import numpy as np
import pytest
from helpers import frame, targets
from tracking_doubles import S, ShiftTracker, moving_scene, shift, square

from reasonseg_ros.masks import decode_rle, mask_to_box
from reasonseg_ros.messages import round_to_dict
from reasonseg_ros.reasoner.prompt import PromptReasoner
from reasonseg_ros.types import Instruction, Prompt, ReasonerOutput, Target

pytest.importorskip("torch", reason="the torch extra is not installed")

SQUARE = square()  # box (50, 40, 100, 80)


class Answers:
    """A reasoner answering from a list: ReasonerOutput, or JSON for the prompt reasoner (sees live memory)."""

    name = "answers"

    def __init__(self, *answers):
        self.answers, self.seen = list(answers), []
        self.block: threading.Event | None = None
        self.entered = threading.Event()

    def reason(self, image, text, memory):
        self.seen.append(memory)
        if self.block is not None:
            self.entered.set()
            assert self.block.wait(10)
        answer = self.answers.pop(0)
        if isinstance(answer, str):
            return PromptReasoner().reason(image, answer, memory)
        return answer


def mask_target(mask, label="square", object_id=None):
    return ReasonerOutput(targets=(Target(label, Prompt(mask=mask), 1.0, object_id),))


class Spy:
    """Records the prompts the segmenter is asked to decode."""

    name = "spy"

    def __init__(self, segmenter):
        self.inner, self.prompts = segmenter, []

    def embed(self, image):
        return self.inner.embed(image)

    def decode(self, embedding, batch):
        self.prompts.append(batch)
        return self.inner.decode(embedding, batch)


@pytest.fixture
def tracked(make_engine, segmenter):
    def build(*answers, overrides=None, velocity=(20, 10), clock=None):
        tracker = ShiftTracker(velocity)
        spy = Spy(segmenter)
        kwargs = {"clock": clock} if clock else {}
        engine = make_engine(overrides, segmenter=spy, reasoner=Answers(*answers), tracker=tracker, **kwargs)
        return engine, tracker, spy

    return build


def test_remembered_object_is_prompted_from_where_it_is_now(tracked):
    engine, tracker, spy = tracked(mask_target(SQUARE), targets({"object_id": 1}))
    engine.submit_frame(frame(stamp_ns=0))
    first = engine.handle(Instruction("the square"))
    assert first.ok and first.objects[0].box == (50.0, 40.0, 100.0, 80.0)
    engine.submit_frame(frame(stamp_ns=1 * S, seed=3))  # moved by (20, 10) since
    again = engine.handle(Instruction("it again"))
    assert again.ok, again.error
    np.testing.assert_array_equal(spy.prompts[-1][0].box, [70, 50, 120, 90])  # not the stale (50, 40, 100, 80)
    assert again.objects[0].object_id == 1 and again.objects[0].round_index == 1
    # the round stepped the tracker on its own frame first, then re-seeded the track from its new mask
    assert tracker.calls[-2:] == [("step", 1 * S), ("seed", 1, 1 * S, (240, 320))]
    np.testing.assert_array_equal(tracker.seeds[1][0], again.masks[0])


def test_reasoner_sees_the_live_state_of_memory(tracked):
    engine, _, _ = tracked(mask_target(SQUARE), ReasonerOutput(reply="just looking"))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    engine.submit_frame(frame(stamp_ns=2 * S))
    engine.handle(Instruction("where is it"))
    view = engine.reasoner.seen[-1]
    assert view.now_ns == 2 * S
    obj = view.get(1)
    assert obj.box == (90.0, 60.0, 140.0, 100.0) and obj.status == "visible" and obj.updated_stamp_ns == 2 * S
    np.testing.assert_array_equal(decode_rle(obj.rle), shift(SQUARE, 40, 20))


def test_track_newest_runs_at_the_rate_on_the_newest_frame_and_skips_the_rest(tracked):
    now = [0.0]
    engine, tracker, _ = tracked(mask_target(SQUARE), overrides={"tracking.rate_hz": 10.0}, clock=lambda: now[0])
    assert engine.track_newest() is None  # nothing tracked yet
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    assert engine.track_newest() is None  # the newest frame is the seeded one
    engine.submit_frame(frame(stamp_ns=S // 10))
    step = engine.track_newest()
    assert step.stamp_ns == S // 10 and step.image_size == (240, 320) and step.error is None
    (obj,) = step.objects
    assert (obj.session, obj.object_id, obj.label, obj.status, obj.score) == ("default", 1, "square", "visible", 0.8)
    assert obj.box == (52.0, 41.0, 102.0, 81.0)
    np.testing.assert_array_equal(obj.mask, shift(SQUARE, 2, 1))
    for k in (2, 3, 4):
        engine.submit_frame(frame(stamp_ns=k * S // 10))
    now[0] = 0.05
    assert engine.track_newest() is None  # not due yet at 10 Hz
    now[0] = 0.1
    assert engine.track_newest().stamp_ns == 4 * S // 10  # the newest; frames 2 and 3 were never queued
    assert tracker.steps() == [S // 10, 4 * S // 10]
    now[0] = 0.5
    assert engine.track_newest() is None  # no new frame
    forced = engine.track_newest(force=True)  # replay: report the tracks on the newest frame without stepping
    assert forced.stamp_ns == 4 * S // 10 and forced.objects == step.objects[:0] + forced.objects
    assert forced.objects[0].box == (58.0, 44.0, 108.0, 84.0) and tracker.steps() == [S // 10, 4 * S // 10]


def test_tracking_off_returns_none(make_engine):
    engine = make_engine()
    engine.submit_frame(frame())
    engine.handle(Instruction(targets({"box": [40, 30, 200, 180]})))
    engine.submit_frame(frame(stamp_ns=1))
    assert engine.tracker is None and engine.track_newest(force=True) is None


def test_unseen_object_goes_occluded_then_lost_then_is_forgotten_but_remembered(tracked):
    overrides = {"tracking.lost_after_s": 0.5, "tracking.forget_after_s": 1.0}
    engine, tracker, _ = tracked(mask_target(SQUARE), overrides=overrides)
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    tracker.hidden.add(1)
    statuses = []
    for k in (2, 4, 6, 8, 10):
        engine.submit_frame(frame(stamp_ns=k * S // 10))
        step = engine.track_newest(force=True)
        statuses.append(step.objects[0].status if step.objects else None)
        assert all(o.box is None and o.mask is None for o in step.objects)
    assert statuses == ["occluded", "occluded", "lost", "lost", "lost"]
    assert "unseen for 1 s: no longer tracked" in step.warnings[0]
    assert tracker.tracked_ids == frozenset() and engine.tracked == []
    obj = engine.memory.view("default").get(1)
    assert obj.status == "lost" and obj.box == (50.0, 40.0, 100.0, 80.0)  # remembered where it was last seen


def test_a_tracker_failure_costs_one_frame_not_the_tracks_or_the_rounds(tracked):
    engine, tracker, _ = tracked(mask_target(SQUARE), targets({"object_id": 1}))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    tracker.fail = True
    engine.submit_frame(frame(stamp_ns=S))
    failed = engine.track_newest(force=True)
    assert failed.error == "RuntimeError: tracker exploded" and failed.objects == ()
    assert engine.tracking_errors == 1 and [t.object_id for t in engine.tracked] == [1]
    engine.submit_frame(frame(stamp_ns=2 * S))
    served = engine.handle(Instruction("it again"))  # the round's own tracking step fails too
    assert served.ok and any("tracking on the round's frame failed" in w for w in served.warnings)
    tracker.fail = False
    engine.submit_frame(frame(stamp_ns=3 * S))
    assert engine.track_newest(force=True).objects[0].status == "visible"


def test_reset_and_eviction_remove_tracks(tracked):
    answers = [mask_target(SQUARE, "a"), mask_target(square(x=200), "b"), mask_target(square(x=0, y=150), "c")]
    engine, tracker, _ = tracked(*answers, overrides={"memory.max_objects": 1})
    engine.submit_frame(frame())
    engine.handle(Instruction("a", session="one"))
    engine.handle(Instruction("b", session="two"))
    assert len(tracker.tracked_ids) == 2
    engine.handle(Instruction("c", session="two"))  # memory keeps one object per session: "b" is evicted
    assert [(t.session, t.label) for t in engine.tracked] == [("one", "a"), ("two", "c")]
    assert ("remove", 2) in tracker.calls and len(tracker.tracked_ids) == 2
    engine.reset("one")
    assert [t.session for t in engine.tracked] == ["two"] and len(tracker.tracked_ids) == 1
    engine.reset()
    assert engine.tracked == [] and tracker.tracked_ids == frozenset()


def test_more_objects_than_max_objects_stops_tracking_the_least_recently_referenced(tracked):
    answers = [
        mask_target(square(x=0), "a"),
        mask_target(square(x=100), "b"),
        targets({"object_id": 1}),  # refers to "a": now "b" is the least recently referenced
        mask_target(square(x=200), "c"),
    ]
    engine, _, _ = tracked(*answers, overrides={"tracking.max_objects": 2}, velocity=(0, 0))
    engine.submit_frame(frame(stamp_ns=5))
    for text in "abxc":
        result = engine.handle(Instruction(text))
        assert result.ok, result.error
    assert [t.label for t in engine.tracked] == ["a", "c"]
    assert "object 2 of session 'default' (least recently referenced) is no longer tracked" in result.warnings[0]
    assert engine.memory.view("default").get(2).status == "lost"  # remembered, but nobody knows where it is now


def test_a_new_resolution_reseeds_visible_tracks_scaled_and_drops_the_others(tracked):
    engine, tracker, _ = tracked(mask_target(SQUARE, "a"), mask_target(square(x=200), "b"), velocity=(0, 0))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("a"))
    engine.handle(Instruction("b"))
    tracker.hidden.add(2)
    engine.submit_frame(frame(stamp_ns=S))
    engine.track_newest(force=True)
    engine.submit_frame(frame(stamp_ns=2 * S, height=480, width=640))
    step = engine.track_newest(force=True)
    assert "from 320×240 to 640×480: 1 tracks re-seeded" in step.warnings[0] and "1 dropped" in step.warnings[0]
    assert step.image_size == (480, 640) and [o.object_id for o in step.objects] == [1]
    assert step.objects[0].box == (100.0, 80.0, 200.0, 160.0)  # the box doubled with the image
    assert tracker.calls[-2:] == [("clear",), ("seed", 1, 2 * S, (480, 640))]
    assert engine.memory.view("default").get(2).status == "lost"
    engine.submit_frame(frame(stamp_ns=3 * S, height=480, width=640))
    assert engine.track_newest(force=True).objects[0].mask.shape == (480, 640)


def test_a_mask_target_is_the_objects_mask_without_decoding(tracked, encoder_calls):
    engine, tracker, spy = tracked(mask_target(SQUARE), mask_target(np.zeros((10, 10), bool)))
    engine.submit_frame(frame(stamp_ns=7))
    result = engine.handle(Instruction("given"))
    assert result.ok and spy.prompts == [] and encoder_calls == []
    np.testing.assert_array_equal(decode_rle(result.objects[0].rle), SQUARE)
    np.testing.assert_array_equal(tracker.seeds[1][0], SQUARE)
    wrong = engine.handle(Instruction("wrong size"))
    assert wrong.error_kind == "bad_input" and "10×10 but the frame is 320×240" in wrong.error
    assert len(engine.memory.view("default").objects) == 1


def test_a_round_waits_for_the_running_tracking_step_and_tracking_yields_to_it(tracked):
    engine, tracker, _ = tracked(mask_target(SQUARE), mask_target(square(x=200)))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("a"))
    engine.submit_frame(frame(stamp_ns=S))
    tracker.block = threading.Event()
    stepping = threading.Thread(target=engine.track_newest, kwargs={"force": True})
    stepping.start()
    assert tracker.entered.wait(10)
    results = []
    round_thread = threading.Thread(target=lambda: results.append(engine.handle(Instruction("b"))))
    round_thread.start()
    round_thread.join(0.2)
    assert not results  # the round waits for the step in progress
    assert engine.track_newest(force=True) is None  # and no further step may slip in before it
    tracker.block.set()
    stepping.join(10)
    round_thread.join(10)
    assert results[0].ok and [t.object_id for t in engine.tracked] == [1, 2]
    assert results[0].timings_ms["tracker_wait"] > 0.0  # the wait is reported
    # a round that waits for the tracker (here: marked by hand) makes the tracking loop skip its turn
    engine.submit_frame(frame(stamp_ns=2 * S))
    engine._rounds_waiting += 1
    assert engine.track_newest(force=True) is None
    engine._rounds_waiting -= 1
    assert engine.track_newest(force=True).stamp_ns == 2 * S


def test_tracking_continues_while_the_reasoner_thinks(tracked):
    engine, _, _ = tracked(mask_target(SQUARE), ReasonerOutput(reply="slow"))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("a"))
    engine.reasoner.block = threading.Event()
    thinking = threading.Thread(target=engine.handle, args=(Instruction("slow"),))
    thinking.start()
    assert engine.reasoner.entered.wait(10)
    engine.submit_frame(frame(stamp_ns=S))
    assert engine.track_newest(force=True).stamp_ns == S
    engine.reasoner.block.set()
    thinking.join(10)


def test_a_target_naming_an_occluded_object_says_so(tracked):
    engine, tracker, _ = tracked(mask_target(SQUARE), targets({"object_id": 1}))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    tracker.hidden.add(1)
    engine.submit_frame(frame(stamp_ns=S // 2))
    result = engine.handle(Instruction("it"))
    assert "object 1 is occluded, not seen for 0.5 s: prompted from where it was last seen" in result.warnings


# -- re-identification (issue 16) -----------------------------------------------------------------


def test_a_new_mask_on_a_tracked_object_takes_its_id(tracked):
    moved = shift(SQUARE, 20, 10)
    engine, _, _ = tracked(mask_target(SQUARE), mask_target(moved, "the square again"), mask_target(SQUARE, "stale"))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    engine.submit_frame(frame(stamp_ns=S))
    again = engine.handle(Instruction("the square again"))
    assert [o.object_id for o in again.objects] == [1] and again.reidentified == [1]
    assert round_to_dict(again)["reidentified"] == [1] and round_to_dict(again)["objects"][0]["reidentified"]
    # where the square was a second ago overlaps its current mask by IoU 900/3100 < 0.5: a new object
    stale = engine.handle(Instruction("stale"))
    assert [o.object_id for o in stale.objects] == [2] and stale.reidentified == []
    assert round_to_dict(stale)["reidentified"] == [] and not round_to_dict(stale)["objects"][0]["reidentified"]


def test_reidentification_without_tracking_uses_the_stored_mask_on_a_same_size_frame(make_engine):
    near = shift(SQUARE, 5, 0)  # IoU 45/55 = 0.82 with SQUARE
    answers = [mask_target(SQUARE), mask_target(near), mask_target(square((480, 640)))]
    engine = make_engine(reasoner=Answers(*answers))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("a"))
    assert engine.handle(Instruction("a again")).reidentified == [1]
    engine.submit_frame(frame(stamp_ns=1, height=480, width=640))
    other_camera = engine.handle(Instruction("a, bigger camera"))
    assert other_camera.reidentified == [] and other_camera.objects[0].object_id == 2


def test_reidentification_threshold_named_ids_and_one_id_per_round(make_engine):
    near = shift(SQUARE, 5, 0)  # IoU 45/55 = 0.82
    nearer = shift(SQUARE, 2, 0)  # IoU 48/52 = 0.92
    two = ReasonerOutput(targets=(Target("x", Prompt(mask=near)), Target("y", Prompt(mask=nearer))))
    engine = make_engine(reasoner=Answers(mask_target(SQUARE), two))
    engine.submit_frame(frame())
    engine.handle(Instruction("a"))
    result = engine.handle(Instruction("two"))
    assert [o.object_id for o in result.objects] == [2, 1] and result.reidentified == [1]  # the better match wins

    named = ReasonerOutput(targets=(Target("x", Prompt(mask=near)), Target("y", Prompt(mask=SQUARE), object_id=1)))
    engine = make_engine(reasoner=Answers(mask_target(SQUARE), named))
    engine.submit_frame(frame())
    engine.handle(Instruction("a"))
    result = engine.handle(Instruction("named"))  # object 1 is named by "y": "x" may not take it
    assert [o.object_id for o in result.objects] == [2, 1] and result.reidentified == []

    strict = make_engine({"memory.reidentify_iou": 0.85}, reasoner=Answers(mask_target(SQUARE), mask_target(near)))
    strict.submit_frame(frame())
    strict.handle(Instruction("a"))
    assert strict.handle(Instruction("near")).reidentified == []


def test_a_failing_seed_keeps_the_round_and_says_the_object_is_not_tracked(tracked):
    engine, tracker, _ = tracked(mask_target(SQUARE))

    def explode(*_):
        raise ValueError("no room")

    tracker.seed = explode
    engine.submit_frame(frame())
    result = engine.handle(Instruction("a"))
    assert result.ok and result.objects[0].object_id == 1
    assert "object 1 is not tracked: seeding failed (ValueError: no room)" in result.warnings
    assert engine.tracked == [] and engine.tracking_errors == 1


def test_an_object_out_of_sight_is_not_reidentified_from_where_it_was_last_seen(tracked):
    engine, tracker, _ = tracked(mask_target(SQUARE), mask_target(SQUARE, "something there"), velocity=(0, 0))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    tracker.hidden.add(1)
    engine.submit_frame(frame(stamp_ns=S))
    # the tracker does not see object 1: what is segmented where it was is not known to be it
    result = engine.handle(Instruction("something there"))
    assert result.reidentified == [] and result.objects[0].object_id == 2


# -- the flow backend (tracker/flow.py) on a moving object ------------------------------------------


def test_flow_backend_follows_a_moving_object_and_a_reference_is_prompted_where_it_is(make_engine, segmenter):
    pytest.importorskip("cv2", reason="the cv extra is not installed")
    pytest.importorskip("reasonseg_ros.tracker.flow", reason="the flow tracker is not in this tree")
    from reasonseg_ros.masks import box_iou, mask_iou
    from reasonseg_ros.types import Frame

    spy = Spy(segmenter)
    image, truth = moving_scene(0)
    engine = make_engine(
        {"tracking.backend": "flow"}, segmenter=spy, reasoner=Answers(mask_target(truth), targets({"object_id": 1}))
    )
    engine.submit_frame(Frame(image, 0, "camera"))
    assert engine.handle(Instruction("the square")).ok
    ious = []
    for k in range(1, 21):
        image, truth = moving_scene(k)
        engine.submit_frame(Frame(image, k * S // 10, "camera"))
        (obj,) = engine.track_newest(force=True).objects
        assert obj.status == "visible"
        ious.append(mask_iou(obj.mask, truth))
    assert min(ious) >= 0.95, ious  # against the drawn square (measured: 1.0 on every frame)
    # 20 frames later the square has moved by (80, 40): the stored box would miss it (IoU 0.0)
    assert box_iou((40, 60, 100, 120), mask_to_box(truth)) == 0.0
    again = engine.handle(Instruction("it again"))
    assert again.ok and box_iou(spy.prompts[-1][0].box, mask_to_box(truth)) >= 0.85


def test_a_trackers_own_warnings_reach_the_step(tracked):
    engine, tracker, _ = tracked(mask_target(SQUARE))
    tracker.pop_warnings = lambda: ["flow: frame darker than the object's look"]
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("a"))
    engine.submit_frame(frame(stamp_ns=S))
    step = engine.track_newest(force=True)
    assert step.warnings == ("flow: frame darker than the object's look",)
    assert engine.tracking_warnings[-1] == "flow: frame darker than the object's look"


def test_masks_decoded_with_random_weights_are_not_reidentified(tracked):
    box = targets({"label": "thing", "box": [40, 30, 110, 90]})
    engine, _, spy = tracked(box, box)
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the thing"))
    again = engine.handle(Instruction("the thing again"))  # same frame, same box: the same random mask
    assert again.random_weights and again.reidentified == [] and again.objects[0].object_id == 2

    engine, _, spy = tracked(box, box)
    spy.random_weights = False  # a trained segmenter: the same box on the same frame is the same object
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the thing"))
    again = engine.handle(Instruction("the thing again"))
    assert not again.random_weights and again.reidentified == [1] and again.objects[0].object_id == 1


# -- what a round sees while the tracking loop runs beside it ------------------------------------


def test_the_reasoner_sees_memory_on_the_rounds_frame_even_when_a_step_slips_in(tracked):
    engine, _, _ = tracked(mask_target(SQUARE), ReasonerOutput(reply="looking"))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    engine.submit_frame(frame(stamp_ns=S))
    view = engine.memory.view

    def step_then_view(*args, **kwargs):
        # the tracking loop takes its turn right before the round reads memory, on a newer frame
        engine.submit_frame(frame(stamp_ns=2 * S))
        stepping = threading.Thread(target=engine.track_newest, kwargs={"force": True})
        stepping.start()
        stepping.join(10)
        return view(*args, **kwargs)

    engine.memory.view = step_then_view
    assert engine.handle(Instruction("where is it")).ok
    seen = engine.reasoner.seen[-1]
    # the reasoner looks at the frame at 1 s: the square is where it is on that frame, moved by (20, 10)
    assert seen.now_ns == S and seen.get(1).updated_stamp_ns == S
    assert seen.get(1).box == (70.0, 50.0, 120.0, 90.0)


def think_while_tracking(engine, text, meanwhile):
    """Run a round whose reasoner waits until ``meanwhile()`` (on this thread) is done; returns its result."""
    engine.reasoner.block = threading.Event()
    results = []
    thinking = threading.Thread(target=lambda: results.append(engine.handle(Instruction(text))))
    thinking.start()
    assert engine.reasoner.entered.wait(10)
    meanwhile()
    engine.reasoner.block.set()
    thinking.join(10)
    return results[0]


def test_reidentification_compares_with_the_tracks_on_the_rounds_frame_not_where_they_moved_since(tracked):
    moved = shift(SQUARE, 20, 10)  # the square on the round's frame (1 s)
    engine, _, _ = tracked(mask_target(SQUARE), mask_target(moved, "the square again"))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    engine.submit_frame(frame(stamp_ns=S))

    def track_on():  # while the model thinks the square moves on by (40, 20): IoU 200/3800 with its mask at 1 s
        engine.submit_frame(frame(stamp_ns=3 * S))
        assert engine.track_newest(force=True).stamp_ns == 3 * S

    again = think_while_tracking(engine, "the square again", track_on)
    assert again.ok and [o.object_id for o in again.objects] == [1] and again.reidentified == [1]


def test_a_reset_while_the_reasoner_thinks_leaves_nothing_to_reidentify(tracked):
    moved = shift(SQUARE, 20, 10)
    engine, _, _ = tracked(mask_target(SQUARE), mask_target(moved, "the square again"))
    engine.submit_frame(frame(stamp_ns=0))
    engine.handle(Instruction("the square"))
    engine.submit_frame(frame(stamp_ns=S))
    again = think_while_tracking(engine, "the square again", engine.reset)
    assert again.ok and again.reidentified == [] and again.objects[0].round_index == 0
