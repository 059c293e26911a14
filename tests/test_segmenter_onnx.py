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

"""ONNX export of the tiny SAM and the onnx backend (ONNX Runtime CPU) against the torch backend."""

import copy
import hashlib
import json
import logging

import numpy as np
import pytest
from helpers import scene

from reasonseg_ros.config import load_config
from reasonseg_ros.errors import CheckpointError, ConfigError, InputError
from reasonseg_ros.masks import mask_iou
from reasonseg_ros.segmenter.exported_io import decoder_tokens, upscale_masks
from reasonseg_ros.segmenter.prompt_batch import batch_prompts
from reasonseg_ros.types import Prompt

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

from reasonseg_ros.segmenter import create_segmenter  # noqa: E402
from reasonseg_ros.segmenter.export import export_sam  # noqa: E402
from reasonseg_ros.segmenter.ort_runner import choose_providers, tensorrt_ep_options  # noqa: E402
from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter  # noqa: E402

HEIGHT, WIDTH = 240, 320


@pytest.fixture(scope="session")
def onnx_dir(tiny_sam, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx_vit_tiny")
    export_sam(tiny_sam, "vit_tiny", out, weights="random weights", log=lambda _: None)
    return out


def onnx_config(onnx_dir, **extra):
    overrides = {
        "segmenter.backend": "onnx",
        "segmenter.model_type": "vit_tiny",
        "segmenter.onnx.model_dir": str(onnx_dir),
        "segmenter.onnx.providers": "cpu",
        **extra,
    }
    return load_config(None, overrides).segmenter


@pytest.fixture(scope="module")
def image():
    return scene(HEIGHT, WIDTH, seed=3)


@pytest.fixture(scope="module")
def ort_segmenter(onnx_dir):
    return create_segmenter(onnx_config(onnx_dir))


@pytest.fixture(scope="module")
def embeddings(tiny_sam, ort_segmenter, image):
    return TorchSamSegmenter(tiny_sam).embed(image), ort_segmenter.embed(image)


def random_prompts(kind: str, count: int, seed: int) -> list[Prompt]:
    rng = np.random.default_rng(seed)
    prompts = []
    for i in range(count):
        choice = kind if kind != "any" else ["point", "box", "mixed", "embedding", "everything"][i % 5]
        n = int(rng.integers(1, 5))
        points = np.stack([rng.uniform(0, WIDTH, n), rng.uniform(0, HEIGHT, n)], axis=1)
        labels = rng.integers(0, 2, n)
        x1, y1 = rng.uniform(0, WIDTH / 2), rng.uniform(0, HEIGHT / 2)
        box = [x1, y1, x1 + rng.uniform(20, WIDTH / 2), y1 + rng.uniform(20, HEIGHT / 2)]
        embedding = rng.normal(size=(int(rng.integers(1, 3)), 256))
        prompts.append(
            {
                "point": Prompt(points=points, point_labels=labels),
                "box": Prompt(box=box),
                "mixed": Prompt(points=points, point_labels=labels, box=box),
                "embedding": Prompt(embedding=embedding),
                "everything": Prompt(points=points, point_labels=labels, box=box, embedding=embedding),
            }[choice]
        )
    return prompts


def test_encoder_matches_torch(embeddings):
    torch_embedding, ort_embedding = embeddings
    assert ort_embedding.input_size == torch_embedding.input_size
    assert ort_embedding.original_size == (HEIGHT, WIDTH)
    expected = torch_embedding.features.numpy()
    assert ort_embedding.features.shape == expected.shape
    assert np.abs(ort_embedding.features - expected).max() < 1e-3 * np.abs(expected).max()


@pytest.fixture(scope="module")
def ort_segmenters(ort_segmenter):
    single = copy.copy(ort_segmenter)
    single.multimask = False
    return {True: ort_segmenter, False: single}


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("kind", ["point", "box", "mixed", "embedding", "any"])
@pytest.mark.parametrize("count", [1, 5])
def test_decode_parity_with_torch_backend(tiny_sam, embeddings, ort_segmenters, kind, count, multimask):
    torch_embedding, ort_embedding = embeddings
    prompts = random_prompts(kind, count, seed=count * 10 + len(kind))
    reference = TorchSamSegmenter(tiny_sam, multimask=multimask, batch_size=count)
    expected = reference.decode(torch_embedding, prompts)
    got = ort_segmenters[multimask].decode(ort_embedding, prompts)
    assert got.masks.shape == expected.masks.shape == (count, HEIGHT, WIDTH)
    assert got.masks.dtype == bool
    assert expected.masks.any()  # parity of empty masks would prove nothing
    for i in range(count):
        assert mask_iou(got.masks[i], expected.masks[i]) >= 0.99
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-3)


def test_batch_keeps_the_order_of_prompts(ort_segmenter, embeddings):
    _, embedding = embeddings
    prompts = random_prompts("any", 5, seed=99)
    forward = ort_segmenter.decode(embedding, prompts)
    backward = ort_segmenter.decode(embedding, prompts[::-1])
    np.testing.assert_array_equal(forward.masks, backward.masks[::-1])
    np.testing.assert_allclose(forward.scores, backward.scores[::-1], atol=1e-6)
    assert len({m.tobytes() for m in forward.masks}) > 1


def test_decoder_graph_has_declared_dynamic_axes_and_no_size_input(onnx_dir):
    model = onnx.load(str(onnx_dir / "decoder.onnx"))
    dims = {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*model.graph.input, *model.graph.output]
    }
    assert dims["image_embeddings"] == [1, 256, 16, 16]
    assert dims["point_coords"] == ["num_prompts", "num_tokens", 2]
    assert dims["point_labels"] == ["num_prompts", "num_tokens"]
    assert dims["token_embeddings"] == ["num_prompts", "num_tokens", 256]
    assert dims["low_res_masks"] == ["num_prompts", 4, 64, 64]
    assert dims["iou_predictions"] == ["num_prompts", 4]
    assert not any("size" in name for name in dims)
    encoder = onnx.load(str(onnx_dir / "encoder.onnx"))
    (pixels,) = encoder.graph.input
    assert [d.dim_value for d in pixels.type.tensor_type.shape.dim] == [1, 3, 256, 256]
    (features,) = encoder.graph.output
    assert [d.dim_param or d.dim_value for d in features.type.tensor_type.shape.dim] == [1, 256, 16, 16]


def test_manifest_names_the_files_it_was_written_with(onnx_dir):
    manifest = json.loads((onnx_dir / "manifest.json").read_text())
    assert manifest["model_type"] == "vit_tiny" and manifest["image_size"] == 256
    for part in ("encoder", "decoder"):
        assert manifest[part]["sha256"] == hashlib.sha256((onnx_dir / manifest[part]["file"]).read_bytes()).hexdigest()
    assert "norm1" in manifest["fp32_modules"] and "neck.1" in manifest["fp32_modules"]


def test_every_layer_norm_is_kept_fp32(onnx_dir):
    """LayerNormalization nodes are kept fp32 by type; decomposed ones (LayerNorm2d) must lie in a named scope."""
    from reasonseg_ros.segmenter.trt_build import in_fp32_scope

    modules = json.loads((onnx_dir / "manifest.json").read_text())["fp32_modules"]
    for part in ("encoder", "decoder"):
        nodes = onnx.load(str(onnx_dir / f"{part}.onnx")).graph.node
        assert any(n.op_type == "LayerNormalization" for n in nodes)
        squares = [n.name for n in nodes if n.op_type == "Pow"]
        assert all(in_fp32_scope(name, modules) for name in squares)
        if part == "encoder":  # the neck's LayerNorm2d, exported as plain ops
            assert squares
            convs = [n.name for n in nodes if n.op_type == "Conv"]
            assert convs and not any(in_fp32_scope(name, modules) for name in convs)


def test_in_fp32_scope_reads_the_exporters_repeat_suffix():
    from reasonseg_ros.segmenter.trt_build import in_fp32_scope

    assert in_fp32_scope("/norm1_2/LayerNormalization", ["norm1"])
    assert in_fp32_scope("/output_upscaling/output_upscaling.1/ReduceMean", ["output_upscaling.1"])
    assert not in_fp32_scope("/norm11/Add", ["norm1"]) and not in_fp32_scope("/norm1", ["norm1"])


@pytest.mark.parametrize(("prompts", "tokens"), [(1, 1), (1, 2), (3, 5), (2, 14)])
def test_export_graph_equals_segment_anythings_decoder(tiny_sam, prompts, tokens):
    """The rewritten decoder (lean_decoder) against SAM's own ``predict_masks``, all four outputs, many tokens."""
    from reasonseg_ros.segmenter.onnx_graphs import DecoderGraph

    gen = torch.Generator().manual_seed(prompts * 100 + tokens)
    size, grid = tiny_sam.image_encoder.img_size, tiny_sam.prompt_encoder.image_embedding_size
    features = torch.randn(1, 256, *grid, generator=gen)
    coords = torch.rand(prompts, tokens, 2, generator=gen) * size
    labels = torch.randint(-1, 5, (prompts, tokens), generator=gen).float()
    embeddings = torch.randn(prompts, tokens, 256, generator=gen)
    graph = DecoderGraph(tiny_sam).eval()
    with torch.no_grad():
        masks, iou = graph(features, coords, labels, embeddings)
        expected_masks, expected_iou = graph.reference(features, coords, labels, embeddings)
    scale = float(expected_masks.abs().max())
    assert masks.shape == expected_masks.shape == (prompts, 4, 4 * grid[0], 4 * grid[1])
    assert float((masks - expected_masks).abs().max()) <= 1e-4 * scale
    torch.testing.assert_close(iou, expected_iou, rtol=1e-4, atol=1e-5)


def test_decoder_tokens_follow_the_torch_layout():
    prompts = [Prompt(points=[[10, 20]]), Prompt(box=[1, 2, 30, 40], embedding=np.ones((2, 256)))]
    batch = batch_prompts(prompts, (100, 100), (100, 100))
    tokens = decoder_tokens(batch)
    # One point slot (no padding point: the batch has a box), two box corners, two embedding tokens.
    np.testing.assert_array_equal(tokens.labels, [[1, -1, -1, -1, -1], [-1, 2, 3, 4, 4]])
    np.testing.assert_array_equal(tokens.coords[1, 1:3], [[1, 2], [30, 40]])
    assert tokens.embeddings[1, 3:].sum() == 512 and tokens.embeddings[0].sum() == 0
    with pytest.raises(InputError, match="128-d"):
        decoder_tokens(batch_prompts([Prompt(embedding=np.ones((1, 128)))], (10, 10), (10, 10)))


@pytest.mark.parametrize("original", [(240, 320), (720, 1280), (300, 200), (17, 401)])
def test_upscale_equals_sam_postprocess(tiny_sam, original):
    from reasonseg_ros.segmenter.prompt_batch import resized_shape

    input_size = resized_shape(*original, 256)
    logits = torch.randn(3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = tiny_sam.postprocess_masks(logits, input_size, original)[:, 0] > 0
    got = upscale_masks(logits[:, 0].numpy(), 256, input_size, original)
    got_torch = upscale_masks(logits[:, 0], 256, input_size, original)
    assert got.shape == (3, *original)
    assert (got != expected.numpy()).mean() < 1e-4
    assert torch.equal(got_torch, torch.as_tensor(got))


def test_encoder_input_matches_sam_preprocess(tiny_sam, image):
    from segment_anything.utils.transforms import ResizeLongestSide

    from reasonseg_ros.segmenter.exported_io import PIXEL_MEAN, PIXEL_STD, encoder_input

    pixels, input_size = encoder_input(image, 256)
    resized = ResizeLongestSide(256).apply_image(image)
    assert input_size == resized.shape[:2]
    expected = tiny_sam.preprocess(torch.as_tensor(resized).permute(2, 0, 1)[None].float()).numpy()
    normalised = (pixels - PIXEL_MEAN[None, :, None, None]) / PIXEL_STD[None, :, None, None]
    np.testing.assert_allclose(normalised, expected, atol=1e-5)


def test_factory_names_backend_and_provider(ort_segmenter):
    assert "onnxruntime CPUExecutionProvider" in ort_segmenter.name and "vit_tiny" in ort_segmenter.name


def test_missing_provider_falls_back_with_a_logged_reason(caplog):
    with caplog.at_level(logging.WARNING):
        chosen = choose_providers("tensorrt, cuda,cpu", ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert "TensorrtExecutionProvider" in caplog.text and "onnxruntime-gpu" in caplog.text
    assert choose_providers("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    with pytest.raises(ConfigError, match="unknown provider 'tpu'"):
        choose_providers("tpu", ["CPUExecutionProvider"])


def test_tensorrt_ep_options_carry_fp16_cache_and_profiles(tmp_path):
    config = load_config(None, {"segmenter.export.max_prompts": 6, "segmenter.export.max_points": 10}).segmenter
    options = tensorrt_ep_options(config.onnx, config.export, tmp_path, "decoder", 256)
    assert options["trt_fp16_enable"] is True and options["trt_engine_cache_path"] == str(tmp_path)
    assert "point_labels:6x16" in options["trt_profile_max_shapes"]
    assert "token_embeddings:1x1x256" in options["trt_profile_min_shapes"]
    assert "image_embeddings" not in options["trt_profile_opt_shapes"]  # static: not part of the profile
    assert "trt_profile_min_shapes" not in tensorrt_ep_options(config.onnx, config.export, tmp_path, "encoder", 256)


def test_missing_onnx_file_names_the_export_command(tmp_path):
    with pytest.raises(CheckpointError, match="reasonseg export --sam vit_tiny"):
        create_segmenter(onnx_config(tmp_path))


def test_model_type_mismatch_with_the_export_is_refused(onnx_dir):
    config = onnx_config(onnx_dir, **{"segmenter.model_type": "vit_b"})
    with pytest.raises(CheckpointError, match=r"set segmenter\.model_type: vit_tiny"):
        create_segmenter(config)


def test_one_thread_blas_limit_is_restored_after_concurrent_upscales():
    """The limit is process-wide: two threads upscaling at once must leave BLAS as they found it."""
    import threading

    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed")

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpoolctl.ThreadpoolController().info() if i["user_api"] == "blas"]

    before = blas_threads()
    low_res = np.random.default_rng(0).normal(size=(1, 64, 64)).astype(np.float32)

    def work() -> None:
        for _ in range(3000):
            upscale_masks(low_res, 256, (192, 256), (48, 64))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert blas_threads() == before
