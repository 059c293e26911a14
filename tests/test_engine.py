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

import threading
import time

import numpy as np
import pytest
from helpers import frame, targets

from reasonseg_ros.errors import InputError
from reasonseg_ros.masks import decode_rle, mask_to_box
from reasonseg_ros.types import Frame, Instruction, Prompt, ReasonerOutput, Rejection, Target

pytest.importorskip("torch", reason="the torch extra is not installed")

BOX = {"label": "mug", "box": [40, 30, 200, 180]}


def test_one_round_end_to_end(make_engine):
    engine = make_engine()
    engine.submit_frame(frame(stamp_ns=5))
    result = engine.handle(Instruction(targets(BOX, {"label": "dot", "points": [[250, 60]]}, reply="two things")))
    assert result.ok, result.error
    assert result.round_index == 0 and result.reply == "two things"
    assert result.frame_stamp_ns == 5 and result.frame_id == "camera" and result.image_size == (240, 320)
    assert [o.object_id for o in result.objects] == [1, 2] and [o.label for o in result.objects] == ["mug", "dot"]
    assert result.masks.shape == (2, 240, 320)
    for obj, mask in zip(result.objects, result.masks, strict=True):
        np.testing.assert_array_equal(decode_rle(obj.rle), mask)
        assert obj.area == mask.sum() and obj.box == mask_to_box(mask)
    assert set(result.timings_ms) >= {"reason", "embed", "decode", "encode_masks", "memory", "total"}
    assert [o.object_id for o in engine.memory.view("default").objects] == [1, 2]


def test_second_instruction_on_the_same_frame_reuses_the_embedding(make_engine, encoder_calls):
    engine = make_engine()
    engine.submit_frame(frame(stamp_ns=1))
    first = engine.handle(Instruction(targets(BOX)))
    second = engine.handle(Instruction(targets({"points": [[10, 10]]})))
    assert first.ok and second.ok
    assert len(encoder_calls) == 1
    assert not first.embedding_cached and second.embedding_cached
    assert "embed" in second.timings_ms
    engine.submit_frame(frame(stamp_ns=2, seed=1))
    assert engine.handle(Instruction(targets(BOX))).ok
    assert len(encoder_calls) == 2


def test_embedding_cache_is_an_lru_keyed_by_frame_not_stamp(make_engine, encoder_calls):
    engine = make_engine({"engine.embedding_cache_size": 1})
    engine.submit_frame(frame(stamp_ns=0, seed=0))
    engine.submit_frame(frame(stamp_ns=0, seed=1))  # same stamp, another image: must not share an embedding
    engine.submit_frame(frame(stamp_ns=100, seed=2))
    for stamp in (0, 100, 0):
        assert engine.handle(Instruction(targets(BOX), stamp_ns=stamp)).ok
    assert len(encoder_calls) == 3  # capacity 1: alternating frames re-embed
    assert engine.encoder_runs == 3


def test_frame_selection_newest_or_nearest_stamp(make_engine):
    engine = make_engine({"engine.frame_buffer_size": 3, "engine.stamp_tolerance_s": 0.05})
    for stamp in range(0, 500_000_000, 100_000_000):  # 0 .. 0.4 s, buffer keeps the last 3
        engine.submit_frame(frame(stamp_ns=stamp))
    assert engine.select_frame(None).frame.stamp_ns == 400_000_000
    assert engine.select_frame(260_000_000).frame.stamp_ns == 300_000_000
    assert engine.select_frame(190_000_000).frame.stamp_ns == 200_000_000
    with pytest.raises(InputError, match=r"no frame within 0.05 s"):
        engine.select_frame(0)  # evicted from the ring buffer
    result = engine.handle(Instruction(targets(BOX), stamp_ns=0))
    assert result.error_kind == "bad_input" and "nearest is 0.200 s away" in result.error


def test_no_frame_waits_then_errors(make_engine):
    engine = make_engine({"engine.frame_wait_s": 0.05})
    start = time.perf_counter()
    result = engine.handle(Instruction(targets(BOX)))
    assert time.perf_counter() - start >= 0.05
    assert result.error == "no camera frame received yet (waited 0.05 s)"

    engine = make_engine({"engine.frame_wait_s": 5.0})
    threading.Timer(0.05, engine.submit_frame, args=(frame(stamp_ns=9),)).start()
    result = engine.handle(Instruction(targets(BOX)))
    assert result.ok and result.frame_stamp_ns == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the instruction is empty"),
        ("   \n", "the instruction is empty"),
        ("x" * 65537, "65537 bytes, over the limit of 65536"),
        ("find the red mug", "the 'prompt' reasoner takes JSON"),
        ('{"targets": [', "not valid JSON"),
        (targets({"box": [10, 10, 400, 100]}), "lies outside the 320×240 image"),
        (targets({"box": [100, 10, 50, 100]}), "empty or inverted"),
        (targets({"points": [[-1, 5]]}), "lies outside"),
        (targets({"object_id": 42}), "object 42 is not in the memory of session 'default'"),
        (targets({"label": "x"}), "needs a box, points or an object_id"),
        (targets({"box": [0, 0, 5, 5], "colour": "red"}), "unknown keys ['colour']"),
        ('{"targets": []}', "names no targets and no rejections"),
        ("[1, 2]", "targets[0] must be an object"),
        (targets({"points": [[5, 5]], "point_labels": [2]}), "point_labels must list 1"),
        (targets({"box": [0, 0, "a", 5]}), "must be [x1, y1, x2, y2]"),
        (targets({"box": [0, 0, float("nan"), 5]}), "must be [x1, y1, x2, y2]"),
    ],
)
def test_bad_instructions_become_error_rounds_and_lose_nothing(make_engine, text, message):
    engine = make_engine()
    engine.submit_frame(frame())
    result = engine.handle(Instruction(text))
    assert not result.ok and result.error_kind == "bad_input"
    assert message in result.error
    assert result.objects == [] and result.round_index is None
    assert engine.memory.view("default").rounds == ()
    good = engine.handle(Instruction(targets(BOX)))
    assert good.ok and good.round_index == 0


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 4), dtype=np.uint8),
        np.zeros((10, 10, 3), dtype=np.float32),
        np.zeros((0, 10, 3), dtype=np.uint8),
        "not an image",
    ],
)
def test_bad_frames_are_refused_and_keep_the_buffer(make_engine, image):
    engine = make_engine()
    engine.submit_frame(frame(stamp_ns=1))
    with pytest.raises(InputError, match="frame must"):
        engine.submit_frame(Frame(image, 2))
    assert engine.select_frame(None).frame.stamp_ns == 1
    assert engine.handle(Instruction(targets(BOX))).ok


class Exploding:
    name = "exploding"

    def __init__(self, inner, stage):
        self.inner, self.stage = inner, stage

    def embed(self, image):
        if self.stage == "embed":
            raise RuntimeError("CUDA out of memory")
        return self.inner.embed(image)

    def decode(self, embedding, prompts):
        raise RuntimeError("decoder exploded")


@pytest.mark.parametrize("stage", ["embed", "decode"])
def test_model_failure_becomes_an_error_round(make_engine, segmenter, stage):
    engine = make_engine(segmenter=Exploding(segmenter, stage))
    engine.submit_frame(frame())
    result = engine.handle(Instruction(targets(BOX)))
    assert result.error_kind == "internal"
    assert result.error.startswith(f"{stage} failed: RuntimeError:")
    assert engine.memory.view("default").rounds == ()


class Scripted:
    """A reasoner test double answering from a script, recording what it was shown."""

    name = "scripted"

    def __init__(self, *answers):
        self.answers, self.seen = list(answers), []

    def reason(self, image, text, memory):
        self.seen.append((text, memory))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_rejection_only_round_skips_the_image_encoder(make_engine, encoder_calls):
    reasoner = Scripted(ReasonerOutput(reply="no red cup here", rejections=(Rejection("red cup", "absent"),)))
    engine = make_engine(reasoner=reasoner)
    engine.submit_frame(frame())
    result = engine.handle(Instruction("segment the red cup"))
    assert result.ok and result.objects == [] and result.rejections == [Rejection("red cup", "absent")]
    assert result.masks.shape == (0, 240, 320)
    assert encoder_calls == [] and "embed" not in result.timings_ms
    assert engine.memory.view("default").rounds[0].rejections == (Rejection("red cup", "absent"),)


def test_empty_mask_becomes_a_rejection(make_engine):
    engine = make_engine({"engine.min_mask_pixels": 10**9})
    engine.submit_frame(frame())
    result = engine.handle(Instruction(targets(BOX)))
    assert result.ok and result.objects == []
    assert result.rejections[0].phrase == "mug" and "found no object" in result.rejections[0].reason


def test_remembered_object_on_a_new_frame_keeps_its_id(make_engine):
    # Where it is prompted from is live memory's job: test_engine_tracking.py,
    # test_remembered_object_is_prompted_from_where_it_is_now (the stored box is stale once the object moved).
    engine = make_engine()
    engine.submit_frame(frame(stamp_ns=1))
    first = engine.handle(Instruction(targets(BOX)))
    engine.submit_frame(frame(stamp_ns=2, seed=3))
    again = engine.handle(Instruction(targets({"object_id": first.objects[0].object_id})))
    assert again.ok and again.frame_stamp_ns == 2
    assert again.objects[0].object_id == first.objects[0].object_id and again.objects[0].label == "mug"
    assert again.objects[0].round_index == 1
    assert len(engine.memory.view("default").objects) == 1


def test_sessions_are_separate_and_reset(make_engine):
    engine = make_engine()
    engine.submit_frame(frame())
    assert engine.handle(Instruction(targets(BOX), session="a")).objects[0].object_id == 1
    b = engine.handle(Instruction(targets(BOX, BOX), session="b"))
    assert [o.object_id for o in b.objects] == [1, 2]
    assert engine.reset("a") == 1
    assert engine.handle(Instruction(targets({"object_id": 1}), session="a")).error_kind == "bad_input"
    assert engine.handle(Instruction(targets({"object_id": 2}), session="b")).ok


def test_reasoner_sees_the_session_memory(make_engine):
    answer = ReasonerOutput(targets=(Target("mug", Prompt(box=[0, 0, 50, 50])),))
    reasoner = Scripted(answer, answer)
    engine = make_engine(reasoner=reasoner)
    engine.submit_frame(frame())
    engine.handle(Instruction("the mug"))
    engine.handle(Instruction("the one left of it"))
    assert len(reasoner.seen[0][1]) == 0
    assert [o.label for o in reasoner.seen[1][1].objects] == ["mug"]
