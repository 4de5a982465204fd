"""A CLIP text tower in int8 ONNX Runtime (``ordo.embedding.dual_text_runtime``), on a tiny CLIP loaded through
the real ``from_pretrained`` path: used when it agrees with fp32, the eager path otherwise, vectors independent
of batching, a corrupt cached graph exported again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ordo.embedding import dual_text_runtime, text_runtime
from ordo.embedding.hf_dual_encoder import HFDualEncoder
from ordo.embedding.tuned_tower import RuntimeOptions

TEXTS = [
    "a dog on a beach",
    "two people riding bicycles down a city street at night",
    "receipt",
    "a plate of food with broccoli and rice " * 12,  # truncated at the 77-token context
]


def _encoder(clip_dir: Path, cache: Path, *, quantize: bool = True, runtime: str = "") -> HFDualEncoder:
    options = RuntimeOptions(autotune=False, cache_file=str(cache / "tuning.json"), runtime=runtime)
    encoder = HFDualEncoder(str(clip_dir), device="cpu", quantize_text_on_cpu=quantize, runtime_options=options)
    encoder.load()
    return encoder


def _graphs(cache: Path) -> list[Path]:
    return sorted((cache / "onnx").glob("*-text-int8-*.onnx"))


@pytest.fixture(scope="module")
def fp32(tiny_clip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> HFDualEncoder:
    return _encoder(tiny_clip_dir, tmp_path_factory.mktemp("fp32"), quantize=False)


def test_text_queries_run_in_int8_onnx_runtime_and_agree_with_fp32(
    tiny_clip_dir: Path, tmp_path: Path, fp32: HFDualEncoder
) -> None:
    int8 = _encoder(tiny_clip_dir, tmp_path)
    assert int8.text_runtime == "onnxruntime-int8"
    assert int8.text_quantized
    assert len(_graphs(tmp_path)) == 1  # only the int8 graph stays in the cache, not the float32 export
    assert not list((tmp_path / "onnx").glob("*.tmp")) and not list((tmp_path / "onnx").glob("*fp32*"))
    a, b = fp32.embed_texts(TEXTS), int8.embed_texts(TEXTS)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(a * b, axis=1))) >= text_runtime.MIN_AGREEMENT
    # one text a call: a text's vector does not depend on the queries it was batched with
    for i, text in enumerate(TEXTS):
        np.testing.assert_array_equal(b[i], int8.embed_texts([text])[0])
    # texts differ: the graph's length axis is dynamic and EOS pooling follows each text's own end
    assert float(b[0] @ b[1]) < 0.9999


def test_a_second_load_reuses_the_cached_graph(tiny_clip_dir: Path, tmp_path: Path) -> None:
    first = _encoder(tiny_clip_dir, tmp_path)
    graph = _graphs(tmp_path)[0]
    stamp = graph.stat().st_mtime_ns
    second = _encoder(tiny_clip_dir, tmp_path)
    assert second.text_runtime == "onnxruntime-int8"
    assert graph.stat().st_mtime_ns == stamp  # not exported again
    np.testing.assert_array_equal(first.embed_texts(TEXTS), second.embed_texts(TEXTS))


def test_a_corrupt_cached_graph_is_exported_again(tiny_clip_dir: Path, tmp_path: Path) -> None:
    reference = _encoder(tiny_clip_dir, tmp_path).embed_texts(TEXTS)
    graph = _graphs(tmp_path)[0]
    graph.write_bytes(graph.read_bytes()[:1000])  # truncated, as after a crash mid-write by another tool
    again = _encoder(tiny_clip_dir, tmp_path)
    assert again.text_runtime == "onnxruntime-int8"
    assert graph.stat().st_size > 1000
    np.testing.assert_array_equal(again.embed_texts(TEXTS), reference)


def test_disagreement_keeps_the_eager_int8_tower(
    tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(text_runtime, "MIN_AGREEMENT", 1.01)  # no graph can agree this well
    with caplog.at_level("WARNING", logger="ordo.embedding"):
        encoder = _encoder(tiny_clip_dir, tmp_path)
    assert encoder.text_runtime == "torch"
    assert encoder.text_quantized  # torch's own int8 tower, checked against its own (lower) bar
    assert "agrees to cosine" in caplog.text


def test_an_unusable_runtime_keeps_the_eager_tower(
    tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fp32: HFDualEncoder
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no ONNX Runtime here")

    monkeypatch.setattr(dual_text_runtime, "open_session", refuse)
    encoder = _encoder(tiny_clip_dir, tmp_path)
    assert encoder.text_runtime == "torch"
    assert float(np.min(np.sum(encoder.embed_texts(TEXTS) * fp32.embed_texts(TEXTS), axis=1))) >= 0.995


def test_runtime_torch_setting_keeps_text_in_torch(tiny_clip_dir: Path, tmp_path: Path) -> None:
    encoder = _encoder(tiny_clip_dir, tmp_path, runtime="torch")
    assert encoder.text_runtime == "torch"
    assert not _graphs(tmp_path)


def test_unsigned_weights_only_where_signed_ones_saturate() -> None:
    """AVX2 without VNNI sums u8 x s8 products in pairs into 16 bits: those CPUs get u8 weights (the tests
    above then pass there too: signed weights agreed to cosine 0.972 on a 2-core AVX2 EPYC)."""
    from ordo.embedding.dual_text_runtime import needs_unsigned_weights

    assert needs_unsigned_weights({"avx2", "fma"})
    assert not needs_unsigned_weights({"avx2", "avx512f", "avx512_vnni"})
    assert not needs_unsigned_weights({"avx2", "avx_vnni"})
    assert not needs_unsigned_weights({"avx2", "amx_int8", "amx_tile"})
    assert not needs_unsigned_weights({"neon", "asimd"})  # not x86: ONNX Runtime's ARM kernels do not pair
