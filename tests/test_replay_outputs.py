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

"""What replay adds to its output bag for a viewer: /overlay and the colourised label image."""

import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")
pytest.importorskip("torch", reason="the torch extra is not installed")

from reasonseg_ros.config import load_config
from reasonseg_ros.errors import MissingDependencyError
from reasonseg_ros.eval.bag_io import open_bag
from reasonseg_ros.eval.demo_bag import write_demo_bag
from reasonseg_ros.eval.replay import ReplayOptions, replay
from reasonseg_ros.eval.report import write_report
from reasonseg_ros.messages import image_to_numpy
from reasonseg_ros.overlay import BANNER, color_of

TINY = {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True, "reasoner.backend": "oracle"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_bag(tmp_path_factory.mktemp("bags") / "demo", frames=35)


def _messages(bag, topic):
    reader = open_bag(bag)
    try:
        wanted = [c for c in reader.connections if c.topic == topic]
        return [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=wanted)]
    finally:
        reader.close()


def test_output_bag_has_overlay_and_colour_masks(demo, tmp_path):
    run = replay(demo, load_config(None, TINY), tmp_path, ReplayOptions(progress=False))
    labels = _messages(tmp_path / "output_bag", "/masks")
    colour = _messages(tmp_path / "output_bag", "/masks_color")
    overlays = _messages(tmp_path / "output_bag", "/overlay")
    assert len(labels) == len(colour) == len(overlays) == 6
    for label_msg, colour_msg in zip(labels, colour, strict=True):
        ids = image_to_numpy(label_msg)
        picture = image_to_numpy(colour_msg)
        assert colour_msg.encoding == "rgb8" and colour_msg.header.stamp == label_msg.header.stamp
        for object_id in set(np.unique(ids)) - {0}:
            assert (picture[ids == object_id] == color_of(int(object_id))).all()
        assert (picture[ids == 0] == 0).all()
    first = image_to_numpy(overlays[0])
    assert overlays[0].encoding == "rgb8" and first.shape == (240, 320, 3)
    assert (first[:4] == BANNER).all(axis=2).mean() > 0.5  # random weights: the banner is there
    # the same pictures beside the report, and the report shows the first
    from PIL import Image

    pictures = sorted((tmp_path / "overlays").glob("round_*.png"))
    assert len(pictures) == 6
    np.testing.assert_array_equal(np.asarray(Image.open(pictures[0])), first)
    write_report(run, tmp_path)
    assert "![the first round](overlays/round_000.png)" in (tmp_path / "report.md").read_text()


def test_missing_tqdm_says_which_extra_and_writes_nothing(demo, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"reasonseg_ros\[eval\]"):
        replay(demo, load_config(None, TINY), tmp_path / "out", ReplayOptions(progress=True))
    assert not (tmp_path / "out").exists()


class OneWriteAtATime:
    """A bag writer double that counts writes entered while another one is still in progress."""

    def __init__(self) -> None:
        from reasonseg_ros.messages.rosbags_types import typestore

        self.types = typestore().types
        self.busy = threading.Lock()
        self.overlaps = 0
        self.topics: list[str] = []

    def write(self, topic: str, msgtype: str, msg: object, time_ns: int) -> None:
        if not self.busy.acquire(blocking=False):
            self.overlaps += 1
            return
        try:
            time.sleep(0.001)  # a write takes a while: long enough for another thread to arrive
            self.topics.append(topic)
        finally:
            self.busy.release()


def test_every_output_bag_write_takes_the_writer_lock(make_engine):
    # The worker (masks, and with them the colour masks) and the tracking thread (tracks) publish at once in
    # real time; rosbags' writer is not thread-safe (an unlocked write corrupted an MCAP chunk).
    from reasonseg_ros.eval.replay import _Player
    from reasonseg_ros.messages import label_image_to_msg

    writer = OneWriteAtATime()
    player = _Player(make_engine(), writer, load_config(None, {}), [], progress=False)
    header = writer.types["std_msgs/msg/Header"](
        stamp=writer.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="camera"
    )
    labels = label_image_to_msg(writer.types["sensor_msgs/msg/Image"], header, np.zeros((24, 32), np.uint16))
    masks, tracks = player.core.outputs.masks, player.core.outputs.tracks_masks
    threads = [
        threading.Thread(target=lambda publish=publish: [publish(labels) for _ in range(40)])
        for publish in (masks, tracks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.overlaps == 0
    assert sorted(set(writer.topics)) == ["/masks", "/masks_color", "/tracks/masks"] and len(writer.topics) == 120
