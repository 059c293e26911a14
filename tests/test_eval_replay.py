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

"""Bag replay on the demo bag with the tiny SAM, the prompt and the oracle reasoners, in both modes."""

import json
import shutil

import numpy as np
import pytest

from reasonseg_ros.config import load_config

pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
pytest.importorskip("torch", reason="the torch extra is not installed")

from reasonseg_ros.cli import main
from reasonseg_ros.eval.bag_io import BagWriter, open_bag
from reasonseg_ros.eval.demo_bag import DIALOGUE, render, write_demo_bag
from reasonseg_ros.eval.ground_truth import FILE_NAME, read_jsonl, write_jsonl
from reasonseg_ros.eval.replay import ReplayOptions, replay
from reasonseg_ros.eval.report import write_report
from reasonseg_ros.masks import decode_rle
from reasonseg_ros.messages import image_to_numpy, image_to_rgb

TINY = {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True}
METRIC_KEYS = {"samples", "gIoU", "cIoU", "precision", "N-acc", "T-acc", "per_round", "per_object", "latency_ms"}
RUN_KEYS = {
    "bag",
    "mode",
    "segmenter",
    "reasoner",
    "random_weights",
    "config",
    "rounds_per_s",
    "engine_overhead_ms",
    "frame_age_ms",
    "mismatches",
    "errors",
    "frames_skipped",
    "instructions_dropped",
    "ground_truth",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_bag(tmp_path_factory.mktemp("bags") / "demo", frames=35)


def config(**overrides):
    return load_config(None, {**TINY, **overrides})


def test_demo_bag_holds_images_instructions_and_exact_ground_truth(demo):
    reader = open_bag(demo)
    topics = {c.topic: c.msgtype for c in reader.connections}
    assert topics == {
        "/camera/image": "sensor_msgs/msg/Image",
        "/instruction": "std_msgs/msg/String",
        "/instruction_prompt": "std_msgs/msg/String",
    }
    images = [
        reader.deserialize(raw, c.msgtype)
        for c, _, raw in reader.messages(connections=[c for c in reader.connections if c.topic == "/camera/image"])
    ]
    reader.close()
    assert len(images) == 35
    first, later = image_to_rgb(images[0]), image_to_rgb(images[10])
    assert not np.array_equal(first, later)  # the camera pans
    records = read_jsonl(demo / FILE_NAME)
    assert [r.text for r in records] == [t.text for t in DIALOGUE if t.frame < 35]
    assert [len(r.objects) for r in records] == [1, 1, 2, 0, 1, 1]
    frame5_image, frame5_masks = render(5)
    np.testing.assert_array_equal(decode_rle(records[0].objects[0][1]), frame5_masks[0])
    assert (frame5_image[frame5_masks[0]] == (220, 40, 40)).all()


@pytest.mark.parametrize("mode", ["deterministic", "realtime"])
@pytest.mark.parametrize(("backend", "topic"), [("oracle", "/instruction"), ("prompt", "/instruction_prompt")])
def test_replay_writes_bag_metrics_report_and_plots(demo, tmp_path, mode, backend, topic):
    options = ReplayOptions(mode=mode, instruction_topic=topic, rate=20.0, progress=False)
    # A queue longer than the bag's dialogue: on a loaded machine real time may lag, but it must not drop;
    # and a frame buffer holding the whole bag: at 20× a lagging round would find its named frame evicted
    # (an error since the stamp tolerance is on by default, where it used to take another frame silently).
    overrides = {"reasoner.backend": backend, "node.instruction_queue_size": 16, "engine.frame_buffer_size": 64}
    run = replay(demo, config(**overrides), tmp_path, options)
    written = write_report(run, tmp_path)
    assert METRIC_KEYS <= set(run.metrics) and RUN_KEYS <= set(run.run)
    assert run.run["mismatches"] == [] and run.run["errors"] == []
    assert run.metrics["samples"] == 6 and run.metrics["N-acc"] == 1.0 and run.metrics["T-acc"] == 1.0
    assert set(run.metrics["per_round"]) == {"0", "1", "2", "3", "4"}
    if backend == "prompt":  # the remembered square keeps its id on a later frame
        assert [o["id"] for o in run.results[4]["objects"]] == [1]
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["metrics"]["samples"] == 6 and data["run"]["random_weights"] is True
    report = (tmp_path / "report.md").read_text()
    assert "Randomly initialised weights" in report and "torch SAM vit_tiny" in report
    for path in written[2:5]:
        assert path.suffix == ".png" and path.stat().st_size > 1000
    reader = open_bag(tmp_path / "output_bag")
    counts = {c.topic: c.msgcount for c in reader.connections}
    masks = [
        reader.deserialize(raw, c.msgtype)
        for c, _, raw in reader.messages(connections=[c for c in reader.connections if c.topic == "/masks"])
    ]
    reader.close()
    # every successful round publishes a label image and detections, empty for the rejection-only round
    assert counts["/result"] == 6 and counts["/masks"] == 6 and counts["/rejection"] == 1 and counts["/detections"] == 6
    assert image_to_numpy(masks[0]).shape == (240, 320)
    if mode == "realtime":
        assert run.run["frame_age_ms"]["p50"] > 0


def test_deterministic_replay_is_repeatable(demo, tmp_path):
    runs = [
        replay(demo, config(**{"reasoner.backend": "oracle"}), tmp_path / str(i), ReplayOptions(progress=False))
        for i in range(2)
    ]
    assert runs[0].metrics["gIoU"] == runs[1].metrics["gIoU"] and runs[0].metrics["cIoU"] == runs[1].metrics["cIoU"]
    assert runs[0].metrics["per_round"] == runs[1].metrics["per_round"]
    assert runs[0].results[2]["objects"][0]["mask"] == runs[1].results[2]["objects"][0]["mask"]


def test_mismatched_ground_truth_is_listed(demo, tmp_path):
    records = read_jsonl(demo / FILE_NAME)
    changed = [records[0].__class__(**{**records[0].__dict__, "text": "something else"}), *records[1:-1]]
    gt = tmp_path / "gt.jsonl"
    write_jsonl(gt, [*changed, records[-1].__class__(**{**records[-1].__dict__, "index": 99})])
    run = replay(
        demo, config(**{"reasoner.backend": "oracle"}), tmp_path / "o", ReplayOptions(ground_truth=gt, progress=False)
    )
    problems = "\n".join(run.run["mismatches"])
    assert "instruction 0: bag says 'the red square', ground truth says 'something else'" in problems
    assert "instruction 5 ('the green triangle') has no ground truth" in problems
    assert "ground truth index 99 has no instruction" in problems
    assert run.metrics["samples"] == 4


def test_bad_bags_and_topics(demo, tmp_path):
    with pytest.raises(ValueError, match=r"no topic '/nope' \(topics: /camera/image"):
        replay(demo, config(), tmp_path / "a", ReplayOptions(image_topic="/nope", progress=False))
    with pytest.raises(ValueError, match="carries std_msgs/msg/String, expected sensor_msgs/msg/Image"):
        replay(demo, config(), tmp_path / "b", ReplayOptions(image_topic="/instruction_prompt", progress=False))
    with pytest.raises(ValueError, match="topics must differ"):
        replay(demo, config(), tmp_path / "b", ReplayOptions(image_topic="/instruction", progress=False))
    broken = tmp_path / "broken"
    shutil.copytree(demo, broken)
    (broken / "demo.mcap").write_bytes(b"not an mcap file")
    with pytest.raises(ValueError, match="cannot read bag"):
        replay(broken, config(), tmp_path / "c", ReplayOptions(progress=False))
    with pytest.raises(ValueError, match="bag not found"):
        replay(tmp_path / "missing", config(), tmp_path / "d", ReplayOptions(progress=False))


def test_unknown_image_encoding_is_a_listed_skip(tmp_path):
    bag = tmp_path / "depth"
    with BagWriter(bag) as writer:
        t = writer.types
        header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="c")
        image = t["sensor_msgs/msg/Image"](  # depth: no colour to segment (yuv422 is converted since issue 14)
            header=header, height=4, width=4, encoding="32FC1", is_bigendian=0, step=16, data=np.zeros(64, np.uint8)
        )
        writer.write("/camera/image", "sensor_msgs/msg/Image", image, 0)
        writer.write("/instruction", "std_msgs/msg/String", t["std_msgs/msg/String"](data='[{"box": [0, 0, 2, 2]}]'), 1)
    run = replay(bag, config(), tmp_path / "o", ReplayOptions(progress=False))
    assert run.run["frames_skipped"] == 1 and "32fc1" in run.run["last_skip_reason"]
    assert run.run["errors"] and "no camera frame received yet" in run.run["errors"][0]
    assert run.run["ground_truth"].startswith("none") and run.metrics["samples"] == 0


def test_ground_truth_from_a_topic(demo, tmp_path):
    bag = tmp_path / "with_gt_topic"
    records = read_jsonl(demo / FILE_NAME)
    reader = open_bag(demo)
    with BagWriter(bag) as writer:
        for connection, timestamp, raw in reader.messages():
            writer.write(connection.topic, connection.msgtype, reader.deserialize(raw, connection.msgtype), timestamp)
        for record in records:
            msg = writer.types["std_msgs/msg/String"](data=json.dumps(record.to_dict()))
            writer.write("/ground_truth", "std_msgs/msg/String", msg, record.stamp_ns)
    reader.close()
    run = replay(bag, config(**{"reasoner.backend": "oracle"}), tmp_path / "o", ReplayOptions(progress=False))
    assert run.run["ground_truth"] == "topic /ground_truth" and run.metrics["samples"] == 6


def test_cli_demo_bag_and_replay(tmp_path, capsys):
    bag = tmp_path / "demo"
    assert main(["demo-bag", "--out", str(bag), "--frames", "12"]) == 0
    assert main(["demo-bag", "--out", str(bag)]) == 2  # refuses to overwrite
    assert main(["demo-bag", "--out", str(bag), "--frames", "12", "--force"]) == 0
    (tmp_path / "notabag").mkdir()
    assert main(["demo-bag", "--out", str(tmp_path / "notabag"), "--force"]) == 2
    assert "not a bag folder" in capsys.readouterr().err
    out = tmp_path / "out"
    args = [
        "replay",
        str(bag),
        "--out",
        str(out),
        "--quiet",
        "--set",
        "segmenter.model_type=vit_tiny",
        "--set",
        "segmenter.random_weights=true",
        "--set",
        "reasoner.backend=oracle",
    ]
    assert main(args) == 0
    assert main(args) == 2  # the output bag exists
    assert main([*args, "--force"]) == 0
    assert (out / "report.md").is_file() and (out / "metrics.json").is_file()
    assert "gIoU" in capsys.readouterr().out
