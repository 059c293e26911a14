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

"""Each converter on a tiny dataset in the real format, written here."""

import json
import pickle

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
Image = pytest.importorskip("PIL.Image", reason="pillow is not installed")

from reasonseg_ros.cli import main  # noqa: E402
from reasonseg_ros.eval.bag_io import open_bag  # noqa: E402
from reasonseg_ros.eval.convert import convert  # noqa: E402
from reasonseg_ros.eval.convert.refcoco import load_refs  # noqa: E402
from reasonseg_ros.eval.ground_truth import FILE_NAME, read_jsonl  # noqa: E402
from reasonseg_ros.masks import decode_rle  # noqa: E402
from reasonseg_ros.messages import image_to_rgb, parse_instruction  # noqa: E402

H, W = 40, 60
SQUARE = [10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0, 30.0]  # x, y pairs: a 20×20 square
RIGHT = [40.0, 5.0, 55.0, 5.0, 55.0, 20.0, 40.0, 20.0]


def save_image(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path)


def coco_instances(src):
    instances = {
        "images": [
            {"id": 1, "file_name": "COCO_1.jpg", "height": H, "width": W},
            {"id": 2, "file_name": "COCO_2.jpg", "height": H, "width": W},
        ],
        "annotations": [
            {"id": 11, "image_id": 1, "segmentation": [SQUARE], "category_id": 47, "iscrowd": 0},
            {"id": 12, "image_id": 1, "segmentation": [RIGHT], "category_id": 50, "iscrowd": 0},
            {"id": 21, "image_id": 2, "segmentation": [RIGHT], "category_id": 47, "iscrowd": 0},
        ],
        "categories": [{"id": 47, "name": "cup"}, {"id": 50, "name": "plate"}],
    }
    (src / "instances.json").write_text(json.dumps(instances))
    save_image(src / "images" / "COCO_1.jpg", 1)
    save_image(src / "images" / "COCO_2.jpg", 2)


def read_bag(bag):
    reader = open_bag(bag)
    images, instructions = [], []
    for connection, _, raw in reader.messages():
        msg = reader.deserialize(raw, connection.msgtype)
        (images if connection.topic == "/camera/image" else instructions).append(msg)
    reader.close()
    return images, [parse_instruction(m.data) for m in instructions], read_jsonl(bag / FILE_NAME)


def area(record, i=0):
    return int(decode_rle(record.objects[i][1]).sum())


@pytest.mark.parametrize("fmt", ["refcoco", "fprefcoco"])
def test_refcoco_family(tmp_path, fmt):
    src = tmp_path / fmt
    src.mkdir()
    coco_instances(src)
    refs = [
        {
            "ref_id": 1,
            "ann_id": 11,
            "image_id": 1,
            "split": "val",
            "category_id": 47,
            "sentences": [
                {"sent": "the cup", "sent_id": 100},
                {"sent": "the red cup", "sent_id": 101, "is_false_premise": True, "gt_sent": "the cup"},
            ],
        },
        {
            "ref_id": 2,
            "ann_id": 21,
            "image_id": 2,
            "split": "val",
            "category_id": 47,
            "sentences": [{"sent": "cup on the right", "sent_id": 102}],
        },
        {
            "ref_id": 3,
            "ann_id": 12,
            "image_id": 1,
            "split": "train",
            "category_id": 50,
            "sentences": [{"sent": "plate", "sent_id": 103}],
        },
    ]
    with open(src / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    bag, images, queries = convert(fmt, src, tmp_path / "bag", split="val")
    assert (images, queries) == (2, 3)
    frames, instructions, records = read_bag(bag)
    assert [i.text for i in instructions] == ["the cup", "the red cup", "cup on the right"]
    assert len({i.session for i in instructions}) == 3  # single-round: every query starts a fresh dialogue
    assert instructions[0].stamp_ns == 0 and instructions[2].stamp_ns == 1_000_000_000
    assert [len(r.objects) for r in records] == [1, 0, 1]  # the false premise expects nothing
    assert 380 <= area(records[0]) <= 441  # a 20×20 polygon, rasterised by pycocotools
    np.testing.assert_array_equal(image_to_rgb(frames[0]), np.asarray(Image.open(src / "images" / "COCO_1.jpg")))
    _, _, limited = convert(fmt, src, tmp_path / "bag2", limit=2)
    assert limited == 2


def test_refs_pickle_may_not_name_classes(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(ValueError, match=r"refusing to load builtins\.print"):
        load_refs(path)


def test_grefcoco_multi_and_no_target(tmp_path):
    src = tmp_path / "grefcoco"
    src.mkdir()
    coco_instances(src)
    grefs = [
        {
            "ref_id": 1,
            "ann_id": [11, 12],
            "image_id": 1,
            "split": "val",
            "category_id": [47, 50],
            "no_target": False,
            "sentences": [{"sent": "cup and plate", "sent_id": 1}],
        },
        {
            "ref_id": 2,
            "ann_id": [-1],
            "image_id": 1,
            "split": "val",
            "category_id": [],
            "no_target": True,
            "sentences": [{"sent": "the dog", "sent_id": 2}],
        },
        {
            "ref_id": 3,
            "ann_id": [21],
            "image_id": 2,
            "split": "testA",
            "category_id": [47],
            "no_target": False,
            "sentences": [{"sent": "cup", "sent_id": 3}],
        },
    ]
    (src / "grefs(unc).json").write_text(json.dumps(grefs))
    bag, images, queries = convert("grefcoco", src, tmp_path / "bag", split="val")
    assert (images, queries) == (1, 2)
    _, _, records = read_bag(bag)
    assert [len(r.objects) for r in records] == [2, 0]
    assert [r.text for r in records] == ["cup and plate", "the dog"]
    # GSVA's evaluation asks all of an image's expressions in one question: each record knows them all
    assert [r.extra["reference"] for r in records] == [
        {"dataset": "grefcoco", "group": ["cup and plate", "the dog"], "present": [True, False], "position": k}
        for k in range(2)
    ]


def test_reasonseg_with_ignore_regions(tmp_path):
    split = tmp_path / "ReasonSeg" / "val"
    save_image(split / "kitchen.jpg")
    annotation = {
        "text": ["what holds the coffee?", "the thing you drink from"],
        "is_sentence": True,
        "shapes": [
            {"label": "target", "points": [[10, 10], [30, 10], [30, 30], [10, 30]], "shape_type": "polygon"},
            {"label": "ignore", "points": [[10, 10], [20, 10], [20, 30], [10, 30]], "shape_type": "polygon"},
            {"label": "flag", "points": [[0, 0], [5, 0], [5, 5]], "shape_type": "polygon"},
        ],
    }
    (split / "kitchen.json").write_text(json.dumps(annotation))
    bag, images, queries = convert("reasonseg", tmp_path / "ReasonSeg", tmp_path / "bag", split="val")
    assert (images, queries) == (1, 2)
    _, instructions, records = read_bag(bag)
    assert instructions[0].text == "what holds the coffee?"
    assert records[0].ignore is not None
    target, ignore = decode_rle(records[0].objects[0][1]), decode_rle(records[0].ignore)
    assert not (target & ignore).any() and target.sum() > 0 and ignore.sum() > 0
    # the references pose a sentence as such and score only the first text of an image
    assert [r.extra["reference"] for r in records] == [
        {"dataset": "reasonseg", "is_sentence": True, "first": True},
        {"dataset": "reasonseg", "is_sentence": True, "first": False},
    ]


def test_multiround_dialogue_shares_a_session(tmp_path):
    save_image(tmp_path / "scene.jpg")
    rle = {"size": [H, W], "counts": decode_and_encode_square()}
    data = {
        "dialogues": [
            {
                "image": "scene.jpg",
                "session": "kitchen",
                "rounds": [
                    {"text": "the cup", "objects": [{"label": "cup", "polygons": [SQUARE]}]},
                    {"text": "the plate right of it", "objects": [{"label": "plate", "mask": rle}]},
                    {"text": "the fork", "objects": []},
                ],
            }
        ]
    }
    (tmp_path / "dialogues.json").write_text(json.dumps(data))
    bag, images, queries = convert("multiround", tmp_path / "dialogues.json", tmp_path / "bag")
    assert (images, queries) == (1, 3)
    _, instructions, records = read_bag(bag)
    assert [i.session for i in instructions] == ["kitchen"] * 3
    assert [r.round for r in records] == [0, 1, 2] and [len(r.objects) for r in records] == [1, 1, 0]


def decode_and_encode_square():
    from reasonseg_ros.masks import encode_rle

    mask = np.zeros((H, W), dtype=bool)
    mask[5:20, 40:55] = True
    return encode_rle(mask)["counts"]


def test_cli_convert_errors(tmp_path, capsys):
    assert main(["convert", "refcoco", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    save_image(tmp_path / "ReasonSeg" / "x.jpg")
    (tmp_path / "ReasonSeg" / "x.json").write_text(
        json.dumps({"text": ["a"], "shapes": [{"label": "target", "points": [[0, 0], [500, 0], [500, 500]]}]})
    )
    (tmp_path / "ReasonSeg" / "y.json").write_text(json.dumps({"text": ["b"], "shapes": []}))
    assert main(["convert", "reasonseg", str(tmp_path / "ReasonSeg"), "--out", str(tmp_path / "r")]) == 2
    assert "has no image y.jpg" in capsys.readouterr().err and not (tmp_path / "r").exists()
    (tmp_path / "bad.json").write_text("[]")
    assert main(["convert", "multiround", str(tmp_path / "bad.json"), "--out", str(tmp_path / "c")]) == 2
    assert "expected {'dialogues'" in capsys.readouterr().err
