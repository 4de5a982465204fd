"""Concurrent text queries share forward passes; repeated ones come from the cache; one bad query fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ordo.core.query_vectors import QueryVectors


class SlowEncoder:
    """A stand-in model whose pass costs 20 ms whatever the batch (as a text tower nearly does)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if any(t == "poison" for t in texts):
            raise ValueError("bad text")
        time.sleep(0.02)
        with self.lock:
            self.batches.append(list(texts))
        return np.array([[float(len(t)), float(sum(map(ord, t)))] for t in texts], dtype=np.float32)


def test_concurrent_queries_share_passes_and_get_their_own_vectors() -> None:
    encoder = SlowEncoder()
    vectors = QueryVectors(encoder, lambda: "m")
    queries = [f"query {i}" for i in range(64)]
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(vectors.vector, queries))
    for query, row in zip(queries, results, strict=True):
        assert row.tolist() == [float(len(query)), float(sum(map(ord, query)))]
    assert len(encoder.batches) < len(queries) / 4  # batched, not one pass per query
    assert max(len(b) for b in encoder.batches) <= vectors.max_batch


def test_repeated_queries_hit_the_cache_per_model() -> None:
    encoder = SlowEncoder()
    model = ["a"]
    vectors = QueryVectors(encoder, lambda: model[0], cache_size=2)
    vectors.vector("cat")
    vectors.vector("cat")
    assert len(encoder.batches) == 1 and vectors.cache_hits == 1
    model[0] = "b"  # a model switch never serves the old model's vector
    vectors.vector("cat")
    assert len(encoder.batches) == 2
    vectors.vector("dog")
    vectors.vector("bird")  # evicts the oldest
    vectors.vector("cat")
    assert len(encoder.batches) == 5


def test_a_bad_query_fails_alone() -> None:
    encoder = SlowEncoder()
    vectors = QueryVectors(encoder, lambda: "m")
    barrier = threading.Barrier(8)

    def ask(query: str) -> object:
        barrier.wait()
        try:
            return vectors.vector(query)
        except ValueError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, ["poison"] + [f"ok {i}" for i in range(7)]))
    assert isinstance(results[0], ValueError)
    assert all(isinstance(r, np.ndarray) for r in results[1:])
    with pytest.raises(ValueError):
        vectors.vector("poison")
