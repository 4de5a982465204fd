"""Cross-task batching (``ordo.worker.coalescing``) on the real tiny CLIP: concurrent calls share forward
passes, each caller gets exactly its own vectors, passes respect the image cap, and failures reach every
caller of the failed pass."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ordo.embedding.hf_dual_encoder import HFDualEncoder
from ordo.worker.coalescing import CoalescingEmbedder


@pytest.fixture(scope="module")
def model(tiny_clip_dir: Path) -> HFDualEncoder:
    encoder = HFDualEncoder(str(tiny_clip_dir), device="cpu", batch_size=8)
    encoder.load()
    return encoder


def _images(n: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(n)]


def _concurrently(fn, args_list):  # type: ignore[no-untyped-def]
    results: dict[int, object] = {}
    barrier = threading.Barrier(len(args_list))

    def call(i: int, args: object) -> None:
        barrier.wait()
        try:
            results[i] = fn(args)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return [results[i] for i in range(len(args_list))]


def test_concurrent_calls_share_a_pass_and_get_their_own_rows(model: HFDualEncoder) -> None:
    coalescing = CoalescingEmbedder(model, max_images=8, max_wait_s=0.5)
    batches = [_images(2, seed) for seed in range(3)]
    got = _concurrently(coalescing.embed_images, batches)
    assert coalescing.passes == [(6, 3)]  # three tasks' images in one forward pass
    for images, vectors in zip(batches, got, strict=True):
        np.testing.assert_allclose(vectors, model.embed_images(images), atol=1e-5)
    assert coalescing.dim == model.dim and coalescing.model_id == model.model_id  # the rest is forwarded


def test_passes_never_exceed_the_cap_and_a_lone_call_waits_only_briefly(model: HFDualEncoder) -> None:
    coalescing = CoalescingEmbedder(model, max_images=5, max_wait_s=0.5)
    got = _concurrently(coalescing.embed_prepared, [[model.prepare_image(i) for i in _images(3, s)] for s in range(3)])
    assert sorted(n for n, _ in coalescing.passes) == [3, 3, 3]  # 3 + 3 > 5: never merged past the cap
    assert all(v.shape == (3, model.dim) for v in got)
    quick = CoalescingEmbedder(model, max_images=8, max_wait_s=0.0)
    assert quick.embed_images(_images(1, 9)).shape == (1, model.dim)
    assert quick.passes == [(1, 1)]


def test_a_failed_pass_fails_each_of_its_callers(model: HFDualEncoder) -> None:
    coalescing = CoalescingEmbedder(model, max_images=8, max_wait_s=0.5)
    got = _concurrently(coalescing.embed_prepared, [[np.zeros((1, 2, 3), np.float32)], [np.zeros((1,), np.float32)]])
    assert all(isinstance(r, Exception) for r in got)
    assert coalescing.embed_images(_images(2, 4)).shape == (2, model.dim)  # the thread lives on
