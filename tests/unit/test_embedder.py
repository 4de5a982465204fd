"""HFDualEncoder and the embedder factory, on a tiny CLIP loaded through the real from_pretrained path."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ordo.embedding import factory, hf_features, hf_loading, registry
from ordo.embedding.base import Embedder, EmbedderDefaults
from ordo.embedding.factory import (
    RandomClipEmbedder,
    create_embedder,
    get_embedder,
    random_clip_config,
    register_family,
)
from ordo.embedding.hf_dual_encoder import HFDualEncoder
from ordo.embedding.offline_tokenizer import COMMON_WORDS
from ordo.errors import InvalidInput, ModelUnavailable
from tests.fixtures.tiny_clip import TINY_CLIP_DIM

VIT_B_32_PARAMETERS = 151_277_313  # openai/clip-vit-base-patch32


def _images(count: int, seed: int = 0) -> list[Image.Image]:
    """Noise images of assorted sizes (the processor must resize and crop them all)."""
    rng = np.random.default_rng(seed)
    sizes = [(64, 48), (32, 32), (100, 40), (40, 100), (33, 57)]
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        for w, h in (sizes[i % len(sizes)] for i in range(count))
    ]


def _assert_unit_rows(vectors: np.ndarray, count: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (count, TINY_CLIP_DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def embedder(tiny_clip_dir: Path) -> HFDualEncoder:
    model = HFDualEncoder(str(tiny_clip_dir), device="cpu", batch_size=8)
    model.load()
    return model


@pytest.fixture
def clean_cache() -> Iterator[None]:
    factory.clear_embedder_cache()
    yield
    factory.clear_embedder_cache()


# ------------------------------------------------------------ loading


def test_loads_tiny_clip_from_directory(embedder: HFDualEncoder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.is_loaded
    assert embedder.dim == TINY_CLIP_DIM
    assert embedder.device == "cpu"
    assert embedder.model_id == "tiny-clip"


def test_load_is_idempotent(embedder: HFDualEncoder) -> None:
    model = embedder._model
    embedder.load()
    assert embedder._model is model


def test_dim_is_zero_until_loaded_and_isinstance_does_not_load(tiny_clip_dir: Path) -> None:
    # Python 3.11's runtime-protocol isinstance reads every member; it must not trigger a load.
    fresh = HFDualEncoder(str(tiny_clip_dir))
    assert isinstance(fresh, Embedder)
    assert not fresh.is_loaded and fresh.dim == 0


def test_embed_call_loads_lazily(tiny_clip_dir: Path) -> None:
    fresh = HFDualEncoder(str(tiny_clip_dir), device="cpu")
    _assert_unit_rows(fresh.embed_texts(["a dog"]), 1)
    assert fresh.dim == TINY_CLIP_DIM


# ----------------------------------------------------------- outputs


def test_image_embeddings_are_float32_unit_rows(embedder: HFDualEncoder) -> None:
    _assert_unit_rows(embedder.embed_images(_images(5)), 5)


def test_text_embeddings_are_float32_unit_rows(embedder: HFDualEncoder) -> None:
    _assert_unit_rows(embedder.embed_texts(["a dog on the beach", "red car", "sunset"]), 3)


def test_empty_inputs_give_empty_matrices(embedder: HFDualEncoder) -> None:
    assert embedder.embed_images([]).shape == (0, TINY_CLIP_DIM)
    assert embedder.embed_texts([]).shape == (0, TINY_CLIP_DIM)
    assert embedder.embed_texts([]).dtype == np.float32


def test_same_input_gives_same_vectors(embedder: HFDualEncoder, tiny_clip_dir: Path) -> None:
    images, texts = _images(3), ["a cat on a sofa", "mountains"]
    np.testing.assert_array_equal(embedder.embed_images(images), embedder.embed_images(images))
    np.testing.assert_array_equal(embedder.embed_texts(texts), embedder.embed_texts(texts))
    reloaded = HFDualEncoder(str(tiny_clip_dir), device="cpu")
    np.testing.assert_allclose(reloaded.embed_images(images), embedder.embed_images(images), atol=1e-6)


def test_batch_size_does_not_change_vectors(tiny_clip_dir: Path) -> None:
    one = HFDualEncoder(str(tiny_clip_dir), device="cpu", batch_size=1)
    eight = HFDualEncoder(str(tiny_clip_dir), device="cpu", batch_size=8)
    images = _images(11)
    np.testing.assert_allclose(one.embed_images(images), eight.embed_images(images), atol=1e-5)
    # Texts of different lengths get padded differently in a batch; EOS pooling must ignore the padding.
    texts = ["dog", "a small brown dog running on the beach at sunset", "two cats", "red"] * 3
    np.testing.assert_allclose(one.embed_texts(texts), eight.embed_texts(texts), atol=1e-5)


def test_different_inputs_give_different_vectors(embedder: HFDualEncoder) -> None:
    images = embedder.embed_images(_images(4))
    similarity = images @ images.T
    assert np.all(similarity[~np.eye(4, dtype=bool)] < 0.9999)
    texts = embedder.embed_texts(["dog", "cat", "a dog on the beach"])
    similarity = texts @ texts.T
    assert np.all(similarity[~np.eye(3, dtype=bool)] < 0.9999)


def test_long_text_is_truncated_keeping_its_end_token(embedder: HFDualEncoder) -> None:
    words = [COMMON_WORDS[i % len(COMMON_WORDS)] for i in range(500)]
    long_vector = embedder.embed_texts([" ".join(words)])
    _assert_unit_rows(long_vector, 1)
    # 77 positions = BOS + 75 words + EOS: the first 75 words alone must give the same vector, which holds
    # only if truncation keeps the EOS that CLIP pools at.
    np.testing.assert_allclose(long_vector, embedder.embed_texts([" ".join(words[:75])]), atol=1e-6)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_blank_text_is_invalid(embedder: HFDualEncoder, text: str) -> None:
    with pytest.raises(InvalidInput):
        embedder.embed_texts(["a dog", text])


def test_non_text_inputs_are_invalid(embedder: HFDualEncoder) -> None:
    # A bare string is a Sequence[str] of characters: without its own check it would fail (or not) on one of
    # them ("text #1 is empty" for the space), so the message must be the bare-string one.
    with pytest.raises(InvalidInput, match="expects a list of texts, not a single string"):
        embedder.embed_texts("a dog")
    with pytest.raises(InvalidInput, match=r"text #0 is a bytes, not a string"):
        embedder.embed_texts([b"a dog"])  # type: ignore[list-item]


def test_non_image_inputs_are_invalid(embedder: HFDualEncoder) -> None:
    with pytest.raises(InvalidInput):
        embedder.embed_images([np.zeros((8, 8, 3), np.uint8)])  # type: ignore[list-item]


def test_non_rgb_images_are_converted(embedder: HFDualEncoder) -> None:
    rgb = _images(1)[0]
    converted = [rgb.convert("L"), rgb.convert("RGBA"), rgb.convert("P")]
    vectors = embedder.embed_images(converted)
    _assert_unit_rows(vectors, 3)
    np.testing.assert_allclose(vectors[0], embedder.embed_images([rgb.convert("L").convert("RGB")])[0], atol=1e-6)


def test_features_of_both_transformers_return_types() -> None:
    tensor = torch.tensor([[3.0, 4.0]])
    assert hf_features.features_tensor(tensor) is tensor
    wrapped = BaseModelOutputWithPooling(last_hidden_state=torch.zeros(1, 2, 2), pooler_output=tensor)
    assert hf_features.features_tensor(wrapped) is tensor
    np.testing.assert_allclose(hf_features.normalised(wrapped), [[0.6, 0.8]], atol=1e-7)


def test_concurrent_calls_match_serial_results(embedder: HFDualEncoder) -> None:
    images, texts = _images(6), ["dog", "a cat on a red sofa", "beach at sunset", "car"]
    expected_images, expected_texts = embedder.embed_images(images), embedder.embed_texts(texts)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work() -> None:
        try:
            start.wait()
            for _ in range(10):
                np.testing.assert_allclose(embedder.embed_texts(texts), expected_texts, atol=1e-6)
                np.testing.assert_allclose(embedder.embed_images(images), expected_images, atol=1e-6)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


# ------------------------------------------------- model unavailable


def test_model_not_cached_and_hub_unreachable_fails_fast_with_guidance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hermetic on connected machines too: an empty cache, and the Hub probe says "unreachable".
    monkeypatch.setattr(hf_loading, "_hub_reachable", lambda *args, **kwargs: False)
    model = HFDualEncoder("openai/clip-vit-base-patch32", cache_dir=str(tmp_path))
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as caught:
        model.load()
    assert time.perf_counter() - started < 15
    message = caught.value.message
    assert "Could not load model 'openai/clip-vit-base-patch32'" in message
    assert "not in the local Hugging Face cache" in message
    assert "`hf download openai/clip-vit-base-patch32`" in message
    assert "ORDO_MODEL" in message and "HF_HOME" in message
    assert caught.value.reason == "MODEL_UNAVAILABLE"
    assert not model.is_loaded


def test_unknown_hub_model_fails_fast_without_stubbing(tmp_path: Path) -> None:
    # The real probe: offline it fails at once; online the Hub answers "not found" at once. Never ~25 s of
    # huggingface_hub retries.
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="ordo-tests/no-such-model"):
        HFDualEncoder("ordo-tests/no-such-model", cache_dir=str(tmp_path)).load()
    assert time.perf_counter() - started < 15


def test_local_files_only_never_touches_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> bool:
        raise AssertionError("probed the Hub although local_files_only=True")

    monkeypatch.setattr(hf_loading, "_hub_reachable", no_network)
    with pytest.raises(ModelUnavailable, match="local_files_only=True"):
        HFDualEncoder("openai/clip-vit-base-patch32", cache_dir=str(tmp_path), local_files_only=True).load()


@pytest.mark.parametrize("path", ["/nonexistent/ordo/model", "./no-such-model-dir"])
def test_missing_local_directory_fails_fast(path: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="no such directory") as caught:
        HFDualEncoder(path).load()
    assert time.perf_counter() - started < 15
    assert "ORDO_MODEL" in caught.value.message


def test_directory_without_a_model_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="Could not load model from directory"):
        HFDualEncoder(str(tmp_path)).load()


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (("tokenizer.json", "tokenizer_config.json"), "tokenizer files"),
        (("preprocessor_config.json",), "image processor"),
        (("model.safetensors",), "model.safetensors"),
    ],
)
def test_incomplete_model_directory_is_unavailable(
    tiny_clip_dir: Path, tmp_path: Path, missing: tuple[str, ...], message: str
) -> None:
    incomplete = tmp_path / "incomplete"
    shutil.copytree(tiny_clip_dir, incomplete)
    for name in missing:
        (incomplete / name).unlink()
    with pytest.raises(ModelUnavailable, match=message):
        HFDualEncoder(str(incomplete), device="cpu").load()


def test_cuda_requested_without_cuda_is_unavailable(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelUnavailable, match="CUDA is not available"):
        HFDualEncoder(str(tiny_clip_dir), device="cuda").load()


# ----------------------------------------------------------- model_id


def test_model_id_is_stable_and_readable(tiny_clip_dir: Path, tmp_path: Path) -> None:
    assert HFDualEncoder(str(tiny_clip_dir)).model_id == "tiny-clip"
    assert HFDualEncoder(str(tiny_clip_dir) + "/").model_id == "tiny-clip"
    assert HFDualEncoder("openai/clip-vit-base-patch32").model_id == "openai/clip-vit-base-patch32"
    # A snapshot copied out of a Hugging Face cache keeps its repository id.
    snapshot = tmp_path / "hub" / "models--openai--clip-vit-base-patch32" / "snapshots" / "3d74acf9a28c67"
    shutil.copytree(tiny_clip_dir, snapshot)
    copied = HFDualEncoder(str(snapshot), device="cpu")
    assert copied.model_id == "openai/clip-vit-base-patch32"
    assert HFDualEncoder(str(tiny_clip_dir), model_id="custom").model_id == "custom"


# ------------------------------------------------------ factory, cache


def test_factory_routes_unregistered_names_to_hf_dual_encoder(tiny_clip_dir: Path) -> None:
    created = create_embedder(str(tiny_clip_dir), device="cpu", batch_size=4)
    assert type(created) is HFDualEncoder
    assert created.batch_size == 4  # type: ignore[attr-defined]


def test_factory_routes_registered_prefixes(monkeypatch: pytest.MonkeyPatch, tiny_clip_dir: Path) -> None:
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    calls: list[str] = []

    def constructor(name: str, **options: object) -> Embedder:
        calls.append(name)
        return HFDualEncoder(str(tiny_clip_dir), model_id=name)

    register_family("test-family:", constructor)
    assert create_embedder("test-family:x").model_id == "test-family:x"
    assert calls == ["test-family:x"]


def test_get_embedder_shares_one_instance_loaded_once(
    tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch, clean_cache: None
) -> None:
    loads: list[int] = []
    original = HFDualEncoder._load_components

    def counting(self: HFDualEncoder) -> tuple[object, object, object]:
        loads.append(1)
        time.sleep(0.2)  # widen the race window
        return original(self)

    monkeypatch.setattr(HFDualEncoder, "_load_components", counting)
    results: list[Embedder] = []
    start = threading.Barrier(4)

    def call() -> None:
        start.wait()
        results.append(get_embedder(str(tiny_clip_dir), device="cpu"))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(result is results[0] for result in results)
    assert loads == [1]
    assert results[0].dim == TINY_CLIP_DIM
    assert get_embedder(str(tiny_clip_dir), device="cpu") is results[0]
    assert get_embedder(str(tiny_clip_dir), device="cpu", batch_size=2) is not results[0]


# ------------------------------------------------------ random-clip


def test_random_clip_tiny_works_through_the_factory(caplog: pytest.LogCaptureFixture, clean_cache: None) -> None:
    with caplog.at_level(logging.WARNING, logger="ordo.embedding.random_clip"):
        model = get_embedder("random-clip:tiny", device="cpu")
    assert isinstance(model, RandomClipEmbedder)
    assert model.model_id == "random-clip:tiny"
    assert any("RANDOM weights" in record.getMessage() for record in caplog.records)
    _assert_unit_rows(model.embed_images(_images(3)), 3)
    _assert_unit_rows(model.embed_texts(["a dog", "word " * 300]), 2)
    # Seeded: a second instance has the same weights.
    again = create_embedder("random-clip:tiny", device="cpu")
    np.testing.assert_allclose(again.embed_texts(["a dog"]), model.embed_texts(["a dog"]), atol=1e-6)


def test_random_clip_vit_b_32_has_the_real_architecture() -> None:
    from transformers import CLIPModel

    config = random_clip_config("vit-b-32")
    vision, text = config.vision_config, config.text_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads) == (768, 12, 12)
    assert (vision.patch_size, vision.image_size, vision.intermediate_size) == (32, 224, 3072)
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (512, 12, 8)
    assert (text.max_position_embeddings, text.vocab_size) == (77, 49408)
    assert config.projection_dim == 512
    with torch.device("meta"):  # count parameters without allocating (or initialising) 600 MB
        model = CLIPModel(config)
    assert sum(parameter.numel() for parameter in model.parameters()) == VIT_B_32_PARAMETERS


def test_unknown_random_clip_preset_is_unavailable() -> None:
    with pytest.raises(ModelUnavailable, match="vit-b-32"):
        create_embedder("random-clip:vit-h-14")


def test_int8_text_tower_on_cpu_agrees_with_fp32(tiny_clip_dir: Path) -> None:
    """The CPU query path (int8 text tower) must stay close to fp32 and independent of batching."""
    fp32 = HFDualEncoder(str(tiny_clip_dir), device="cpu", quantize_text_on_cpu=False)
    int8 = HFDualEncoder(str(tiny_clip_dir), device="cpu", quantize_text_on_cpu=True)
    texts = ["a dog on a beach", "two people riding bicycles", "a plate of food with broccoli"]
    a, b = fp32.embed_texts(texts), int8.embed_texts(texts)
    assert not fp32.text_quantized
    assert int8.text_quantized  # the tiny tower agrees with fp32 well enough to be quantised
    assert np.min(np.sum(a * b, axis=1)) >= 0.995
    np.testing.assert_array_equal(b[1], int8.embed_texts([texts[1]])[0])
    np.testing.assert_allclose(fp32.embed_images(_images(2)), int8.embed_images(_images(2)), atol=1e-6)


def test_inference_lane_runs_texts_before_queued_images() -> None:
    """Every forward pass runs on the lane's one thread; a text query overtakes image batches queued
    before it (it waits for the batch in progress only)."""
    import threading
    import time

    from ordo.embedding.inference_lane import IMAGE_PRIORITY, TEXT_PRIORITY, InferenceLane

    lane = InferenceLane("test-lane")
    order: list[str] = []
    threads: set[int] = set()
    gate = threading.Event()

    def job(name: str) -> str:
        if name == "image-0":
            gate.wait(5)
        threads.add(threading.get_ident())
        order.append(name)
        return name

    images = [lane.submit(IMAGE_PRIORITY, job, f"image-{i}") for i in range(3)]
    time.sleep(0.05)  # image-0 is now running and holding the lane
    text = lane.submit(TEXT_PRIORITY, job, "text")
    gate.set()
    assert text.result(5) == "text"
    assert [f.result(5) for f in images] == ["image-0", "image-1", "image-2"]
    assert order == ["image-0", "text", "image-1", "image-2"]
    assert len(threads) == 1
    failing = lane.submit(TEXT_PRIORITY, lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(5)


def test_every_family_declares_the_capabilities_callers_use(tiny_clip_dir: Path) -> None:
    """Callers read these as plain attributes (no getattr probes), before and without loading."""
    for name in (str(tiny_clip_dir), "random-clip:tiny", "ordo-lite-v1"):
        embedder = create_embedder(name, device="cpu", batch_size=4)
        assert isinstance(embedder, Embedder)
        assert not embedder.is_loaded and embedder.dim == 0
        assert embedder.batch_size >= 1 and embedder.input_size > 0
        assert callable(embedder.prepare_image) and callable(embedder.embed_prepared)


def test_lane_embedders_run_text_work_on_their_lane(embedder: HFDualEncoder) -> None:
    ran: list[int] = []
    done = threading.Event()

    def work() -> None:
        ran.append(threading.get_ident())
        done.set()

    assert embedder.submit_text_work(work) is True
    assert done.wait(5) and ran != [threading.get_ident()]


def test_embedder_defaults_are_neutral() -> None:
    """A family without a lane or split preprocessing still answers every capability (EmbedderDefaults)."""

    class Minimal(EmbedderDefaults):
        model_id = "minimal"
        dim = 2
        device = "cpu"

        def load(self) -> None:
            pass

        def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
            return np.ones((len(images), self.dim), np.float32)

        def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), self.dim), np.float32)

    minimal = Minimal()
    image = _images(1)[0]
    assert isinstance(minimal, Embedder) and minimal.is_loaded
    assert minimal.prepare_image(image) is image
    assert minimal.embed_prepared([image]).shape == (1, 2)
    assert minimal.submit_text_work(lambda: None) is False  # no lane: the caller runs the work itself
    assert (minimal.batch_size, minimal.input_size) == (16, 224)


def test_registry_routes_model_directories_before_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_FAMILIES", {})
    monkeypatch.setattr(registry, "_MODEL_DIRS", [])

    def by_prefix(name: str, **options: object) -> Embedder:
        raise AssertionError("not called")

    def by_dir(name: str, **options: object) -> Embedder:
        raise AssertionError("not called")

    def by_longer_prefix(name: str, **options: object) -> Embedder:
        raise AssertionError("not called")

    registry.register_family("fam", by_prefix)
    registry.register_family("family:", by_longer_prefix)

    def is_tuned_dir(name: str) -> bool:
        return name.endswith("/tuned")

    registry.register_model_dir(is_tuned_dir, by_dir)
    registry.register_model_dir(is_tuned_dir, by_dir)  # registering again (a re-imported module) is a no-op
    assert len(registry._MODEL_DIRS) == 1
    assert registry.resolve("fam/tuned") is by_dir
    assert registry.resolve("family:x") is by_longer_prefix
    assert registry.resolve("fam-x") is by_prefix
    assert registry.resolve("openai/clip-vit-base-patch32") is None
    assert registry.registered_families() == ("fam", "family:")
    with pytest.raises(ValueError, match="must not be empty"):
        registry.register_family("", by_prefix)
