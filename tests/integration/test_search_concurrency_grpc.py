"""Concurrent SearchText calls over a real gRPC channel share ordo-lite's text passes and repeated queries
come from the cache: an in-process OrdoServer on the embedded adapters with the real ordo-lite model.

Why here and not only in ``test_query_vectors``: the batcher's drain runs on the model's inference lane and
ordo-lite's text tower runs batches in length groups on ONNX Runtime; a mix-up of rows between batch mates
would give each caller someone else's vector, which only the real path can show."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from ordo.app import AppContext, set_current_context
from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.grpc_api.server import OrdoServer
from ordo.v1 import search_pb2

pytest.importorskip("ordo.embedding.ordo_lite")
pytest.importorskip("onnxruntime")

QUERIES = [
    "a dog",
    "two people riding bicycles down a city street at night",
    "a plate of food with broccoli, rice and a fork next to a glass of red wine on a wooden table",
    "receipt",
    "a cat sleeping on a laptop keyboard",
    "a red double decker bus",
] * 4


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppContext, OrdoClient]]:
    ctx = AppContext(Settings(data_dir=tmp_path_factory.mktemp("concurrency"), model="ordo-lite"))
    set_current_context(ctx)
    server = OrdoServer(ctx, ("search",), "127.0.0.1", 0).start()
    try:
        yield ctx, OrdoClient(Settings(address=f"127.0.0.1:{server.port}"))
    finally:
        server.stop()
        ctx.close()
        set_current_context(None)


def test_concurrent_queries_share_passes_and_get_their_own_vectors(served: tuple[AppContext, OrdoClient]) -> None:
    ctx, client = served
    texts = [f"{q} {i}" for i, q in enumerate(QUERIES)]  # distinct: no cache hits
    client.search.SearchText(search_pb2.SearchTextRequest(query="warm-up", page_size=5), timeout=120)
    vectors = ctx.search_core().query_vectors
    passes_before = vectors.passes
    start = threading.Barrier(len(texts))
    errors: list[BaseException] = []

    def one(text: str) -> None:
        start.wait()
        try:
            client.search.SearchText(search_pb2.SearchTextRequest(query=text, page_size=5), timeout=60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    passes = vectors.passes - passes_before
    assert 1 <= passes < len(texts)  # 24 queries at once: fewer passes than queries
    # every caller got its own text's vector: the cached rows match lone passes of the same model
    embedder = ctx.load_embedder()
    model_id = str(embedder.model_id)
    batched = np.stack([vectors._cache[(model_id, t)] for t in texts[:8]])
    alone = np.concatenate([embedder.embed_texts([t]) for t in texts[:8]])
    assert float((batched * alone).sum(axis=1).min()) >= 0.999


def test_a_repeated_query_hits_the_cache(served: tuple[AppContext, OrdoClient]) -> None:
    ctx, client = served
    vectors = ctx.search_core().query_vectors
    request = search_pb2.SearchTextRequest(query="a lighthouse on a cliff at sunset", page_size=5)
    client.search.SearchText(request, timeout=60)
    passes, hits = vectors.passes, vectors.cache_hits
    client.search.SearchText(request, timeout=60)
    assert (vectors.passes, vectors.cache_hits) == (passes, hits + 1)


def test_servers_hand_the_gil_over_sooner() -> None:
    """`ordo up`/`ordo serve` set ORDO_GIL_SWITCH_INTERVAL_MS (measured faster under concurrent searches)."""
    from ordo.grpc_api.server import set_gil_switch_interval

    before = sys.getswitchinterval()
    try:
        set_gil_switch_interval(Settings(gil_switch_interval_ms=0.5))
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        sys.setswitchinterval(before)
