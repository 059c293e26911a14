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

"""The detector reasoner: noun phrases, tiny random OWLv2 / Grounding DINO built from their configs, memory ids."""

import numpy as np
import pytest

from reasonseg_ros.config import DetectorConfig, load_config
from reasonseg_ros.engine import Engine
from reasonseg_ros.errors import CheckpointError
from reasonseg_ros.reasoner.detector import Detection, DetectorReasoner, Phrase, noun_phrases
from reasonseg_ros.segmenter.base import DecodeResult, ImageEmbedding
from reasonseg_ros.types import Frame, Instruction

WORDS = ["red", "mug", "and", "the", "plate", "fork", "cup", "on", "table", "a", "bowl"]


def test_noun_phrase_rule():
    assert noun_phrases("the red mug and the plate") == [Phrase("red mug"), Phrase("plate")]
    assert noun_phrases("Please segment the mug again.") == [Phrase("mug", again=True)]
    assert noun_phrases("find the cup left of the plate, a fork") == [
        Phrase("cup", dropped="left of the plate"),
        Phrase("fork"),
    ]
    assert noun_phrases("show me the same bowl") == [Phrase("bowl", again=True)]
    assert noun_phrases("it") == [Phrase("it", again=True)]
    assert noun_phrases("please, and the") == []
    assert noun_phrases("the mug, a plate and the mug") == [Phrase("mug"), Phrase("plate")]


# -- tiny models built from their configs (real classes, random weights, no hub) ------------------------


@pytest.fixture(scope="session")
def owlv2_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from detector_tiny import clip_tokenizer

    tokenizer, bos, eos = clip_tokenizer([" ".join(WORDS), "a red mug and a plate", "the fork on the table"])
    config = transformers.Owlv2Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    torch.manual_seed(0)
    model = transformers.Owlv2ForObjectDetection(config)
    with torch.no_grad():  # the default init saturates the box head's sigmoid (every box degenerate): keep it small
        for parameter in model.box_head.parameters():
            parameter.normal_(0.0, 0.02)
    processor = transformers.Owlv2Processor(
        image_processor=transformers.Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer
    )
    folder = tmp_path_factory.mktemp("owlv2")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def grounding_dino_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    tokenizer = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=256)
    config = transformers.GroundingDinoConfig(
        backbone_config=transformers.SwinConfig(
            embed_dim=16,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 1, 1],
            window_size=4,
            image_size=64,
            out_indices=[2, 3, 4],
        ),
        text_config=transformers.BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # the box heads of the decoder layers are tied: one layer has nothing to tie to
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=20,
        num_feature_levels=3,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
    )
    torch.manual_seed(0)
    model = transformers.GroundingDinoForObjectDetection(config)
    processor = transformers.GroundingDinoProcessor(
        image_processor=transformers.GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=tokenizer,
    )
    folder = tmp_path_factory.mktemp("gdino")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _image():
    return np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)


def _all(model_dir):
    """Every box above 0 with NMS off: what the reference post-processing keeps."""
    config = DetectorConfig(
        model=str(model_dir), threshold=0.0, nms_iou=1.0, max_per_phrase=1000, local_files_only=True
    )
    return DetectorReasoner.from_config(config)


def _clip(box, width, height):
    return np.clip(np.asarray(box, dtype=np.float32), 0, [width, height, width, height])


def test_owlv2_boxes_and_scores_match_its_own_post_processing(owlv2_dir):
    torch = pytest.importorskip("torch")
    reasoner = _all(owlv2_dir)
    assert reasoner.family == "owlv2" and "threshold 0" in reasoner.name
    image = _image()
    phrases = ["red mug", "plate"]
    found = reasoner.detect(image, phrases)
    # the reference: the processor's own post-processing, on the padded square (OWLv2's convention)
    from PIL import Image

    inputs = reasoner.processor(text=phrases, images=Image.fromarray(image), return_tensors="pt")
    with torch.inference_mode():
        outputs = reasoner.model(**inputs)
    (reference,) = reasoner.processor.post_process_grounded_object_detection(
        outputs, threshold=0.0, target_sizes=[(80, 80)]
    )
    compared = 0
    for phrase_index in range(2):
        expected = {
            (tuple(np.round(_clip(box, 80, 48), 3)), round(float(score), 5))
            for box, score, label in zip(reference["boxes"], reference["scores"], reference["labels"], strict=True)
            if int(label) == phrase_index
        }
        mine = {(tuple(np.round(d.box, 3)), round(d.score, 5)) for d in found[phrase_index]}
        # a query scored highest for this phrase appears among this phrase's detections, same box and score
        kept = {e for e in expected if e[0][2] - e[0][0] >= 1 and e[0][3] - e[0][1] >= 1}
        assert kept <= mine
        compared += len(kept)
    assert compared > 0


def test_grounding_dino_boxes_match_its_own_post_processing(grounding_dino_dir):
    torch = pytest.importorskip("torch")
    reasoner = _all(grounding_dino_dir)
    assert reasoner.family == "grounding-dino"
    image = _image()
    (found,) = reasoner.detect(image, ["red mug"])
    from PIL import Image

    inputs = reasoner.processor(images=Image.fromarray(image), text="red mug.", return_tensors="pt")
    with torch.inference_mode():
        outputs = reasoner.model(**inputs)
    (reference,) = reasoner.processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=[(48, 80)]
    )
    expected = {tuple(np.round(_clip(b, 80, 48), 3)) for b in reference["boxes"]}
    mine = [tuple(np.round(d.box, 3)) for d in found]
    assert mine and set(mine) <= expected
    # a phrase's score is the best of its own tokens ("red", "mug"), not of "." or the special tokens
    logits = outputs.logits[0].sigmoid()
    assert max(d.score for d in found) == pytest.approx(float(logits[:, 1:3].max()), abs=1e-6)


def test_threshold_and_nms(owlv2_dir):
    reasoner = _all(owlv2_dir)
    everything = reasoner.detect(_image(), ["red mug"])[0]
    scores = sorted((d.score for d in everything), reverse=True)
    reasoner.threshold = scores[2]
    assert [d.score for d in reasoner.detect(_image(), ["red mug"])[0]] == scores[:3]
    reasoner.threshold, reasoner.config.nms_iou = 0.0, 0.0  # no overlap allowed at all
    kept = reasoner.detect(_image(), ["red mug"])[0]
    from reasonseg_ros.masks import box_iou

    assert all(box_iou(a.box, b.box) == 0 for i, a in enumerate(kept) for b in kept[i + 1 :])


def test_a_model_that_is_not_a_detector_or_missing_is_one_line(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(CheckpointError) as caught:
        DetectorReasoner.from_config(DetectorConfig(model=str(tmp_path / "none"), local_files_only=True))
    assert "\n" not in str(caught.value) and "reasonseg download" in str(caught.value)


def test_an_uncached_hub_model_offline_fails_at_once_in_one_line(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    with pytest.raises(CheckpointError) as caught:
        DetectorReasoner.from_config(DetectorConfig(model="someone/some-detector"))
    assert "\n" not in str(caught.value) and "unreachable" in str(caught.value)


# -- the dialogue on top: multi-target, rejections, memory ids (a stub detector, a box-filling segmenter) ----


class BoxSegmenter:
    """Each prompt's box, filled: the masks are exactly what the reasoner asked for."""

    name = "box filler"

    def embed(self, image):
        return ImageEmbedding(None, image.shape[:2], image.shape[:2])

    def decode(self, embedding, prompts):
        masks = np.zeros((len(prompts), *embedding.original_size), dtype=bool)
        for mask, prompt in zip(masks, prompts, strict=True):
            x1, y1, x2, y2 = (round(float(v)) for v in prompt.box)
            mask[y1:y2, x1:x2] = True
        return DecodeResult(masks, np.ones(len(prompts), dtype=np.float32))


class StubDetector(DetectorReasoner):
    """The reasoner's own logic over detections chosen by the test."""

    def __init__(self, boxes):
        self.config = DetectorConfig()
        self.threshold = 0.3
        self.name = "stub detector"
        self.boxes = boxes
        self.asked = []

    def detect(self, image, phrases):
        self.asked.append(phrases)
        return [[Detection(b, 0.9) for b in self.boxes.get(p, [])] for p in phrases]


def _engine(boxes):
    reasoner = StubDetector(boxes)
    engine = Engine(BoxSegmenter(), reasoner, load_config(None))
    engine.submit_frame(Frame(np.zeros((100, 200, 3), dtype=np.uint8), 0, "camera"))
    return engine, reasoner


def test_every_box_is_a_target_and_a_phrase_without_one_is_rejected():
    engine, reasoner = _engine({"mug": [(10, 10, 40, 40), (100, 10, 130, 40)], "plate": [(50, 50, 90, 90)]})
    result = engine.handle(Instruction("segment the mugs, the plate and the fork"))
    assert reasoner.asked == [["mugs", "plate", "fork"]]  # "mugs" is not "mug": the stub finds nothing
    engine, reasoner = _engine({"mug": [(10, 10, 40, 40), (100, 10, 130, 40)], "plate": [(50, 50, 90, 90)]})
    result = engine.handle(Instruction("the mug, the plate and the fork"))
    assert result.ok and [o.label for o in result.objects] == ["mug", "mug", "plate"]
    assert [o.box for o in result.objects][1] == (100.0, 10.0, 130.0, 40.0)
    assert [r.phrase for r in result.rejections] == ["fork"] and "found no 'fork'" in result.rejections[0].reason


def test_the_mug_again_keeps_its_id_by_label_and_position():
    engine, reasoner = _engine({"red mug": [(10, 10, 40, 40)], "plate": [(50, 50, 90, 90)]})
    first = engine.handle(Instruction("the red mug and the plate"))
    ids = {o.label: o.object_id for o in first.objects}
    reasoner.boxes = {"mug": [(12, 11, 42, 41), (150, 10, 180, 40)]}  # moved a little; and a second mug
    again = engine.handle(Instruction("the mug again"))
    assert again.objects[0].object_id == ids["red mug"]
    assert again.objects[1].object_id not in ids.values()
    reasoner.boxes = {}  # the detector misses it now: "again" re-segments the remembered mug at its last box
    missed = engine.handle(Instruction("the mug again"))
    assert [o.object_id for o in missed.objects] == [ids["red mug"], again.objects[1].object_id]
    assert missed.warnings
    assert engine.handle(Instruction("the mug")).rejections  # without "again" a miss is a rejection
    plural = engine.handle(Instruction("the mugs again"))  # the head noun's plural matches too
    assert [o.object_id for o in plural.objects] == [ids["red mug"], again.objects[1].object_id]


def test_it_means_the_previous_rounds_objects_and_relations_are_warned():
    engine, _ = _engine({"plate": [(50, 50, 90, 90)]})
    engine.handle(Instruction("the plate on the table"))
    result = engine.handle(Instruction("it"))
    assert [o.label for o in result.objects] == ["plate"] and result.objects[0].object_id == 1
    first = _engine({"cup": [(5, 5, 20, 20)]})[0].handle(Instruction("the cup left of the plate"))
    assert any("cannot ground relations" in w for w in first.warnings)
    assert _engine({})[0].handle(Instruction("it")).rejections[0].phrase == "it"


def test_an_instruction_without_a_noun_phrase_is_an_input_error():
    engine, _ = _engine({})
    result = engine.handle(Instruction("please"))
    assert result.error_kind == "bad_input" and "no noun phrase" in result.error
