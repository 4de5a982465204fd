"""The embedded index walks its graph on an int8 copy of the vectors and rescores on the floats.

What must hold: a rebuilt shard carries the quantized copy (so searches get cheaper), scores are still the
exact cosines (rescoring), recall stays where the unquantized graph had it, and a shard made before
quantization existed keeps answering correctly until its next rebuild gives it the copy.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np
import qdrant_edge as qe

from ordo.adapters.edge_engine import config_is_current
from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.domain import VectorPoint

DIM = 64


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    x = centres[rng.integers(0, 40, n)] + 0.5 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _fill(index: EdgeVectorIndex, x: np.ndarray) -> None:
    index.ensure_collection(x.shape[1])
    index.upsert(
        [VectorPoint(str(uuid.UUID(int=i + 1)), x[i].tolist(), {"asset_id": f"{i:064x}"}) for i in range(len(x))]
    )


def _check_search(index: EdgeVectorIndex, x: np.ndarray) -> float:
    """Top-10 recall against exact search; every returned score must be the exact cosine."""
    rng = np.random.default_rng(1)
    queries = x[:100] + 0.3 * rng.normal(size=(100, DIM)).astype(np.float32) / np.sqrt(DIM)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found = 0
    for q in queries:
        hits = index.search(q.tolist(), 10)
        rows = [uuid.UUID(h.id).int - 1 for h in hits]
        np.testing.assert_allclose([h.score for h in hits], x[rows] @ q, atol=1e-4)  # rescored, not int8
        found += len(set(rows) & set(np.argsort(-(x @ q))[:10].tolist()))
    return found / 1000


def _wait_until_rebuilt(index: EdgeVectorIndex) -> None:
    """Until the background rebuild has swapped in a current shard and its thread is done."""
    deadline = time.monotonic() + 120
    while not config_is_current(index._dir):
        assert time.monotonic() < deadline, "no rebuild made the shard current"
        time.sleep(0.2)
    with index._rebuilding:  # the rebuild thread holds this until its swap returns
        pass


def _old_shard(path: Path, dim: int, **hnsw: int) -> None:
    """A shard as EdgeVectorIndex created it before int8 search: no quantization, the engine's search threads."""
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=128, **hnsw) if hnsw else None,
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=64),
    )
    qe.EdgeShard.create(str(path), config).close()


def _config(index: EdgeVectorIndex) -> dict:
    return json.loads((index._dir / "edge_config.json").read_text())


def test_a_rebuilt_shard_is_quantized_with_exact_scores_and_full_recall(tmp_path: Path) -> None:
    x = _clustered(4000)
    index = EdgeVectorIndex(tmp_path / "vectors", indexing_threshold_kb=64, full_scan_threshold_kb=16)
    _fill(index, x)
    assert index.optimize() is True  # the out-of-process rebuild, as after a job
    assert index.indexed_vectors_count == 4000
    config = _config(index)
    assert config["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
    assert config["max_search_threads"] == 1
    assert _check_search(index, x) >= 0.97
    index.close()


def test_a_shard_from_before_quantization_answers_and_gets_it_at_its_rebuild(tmp_path: Path) -> None:
    x = _clustered(4000, seed=2)
    path = tmp_path / "vectors"
    _old_shard(path, DIM, full_scan_threshold=16)
    index = EdgeVectorIndex(path, indexing_threshold_kb=64, full_scan_threshold_kb=16)
    _fill(index, x)
    assert "quantization_config" not in _config(index) or _config(index)["quantization_config"] is None
    assert _check_search(index, x) >= 0.97  # quantization search parameters are ignored without the copy
    assert index.upgrade() is True  # what `ordo up` calls at start: a background rebuild
    _wait_until_rebuilt(index)
    assert _config(index)["quantization_config"]["scalar"]["type"] == "int8"
    assert _check_search(index, x) >= 0.97
    assert index.upgrade() is False  # current now: nothing more to do
    index.close()


def test_a_current_or_small_shard_is_not_rebuilt_at_start(tmp_path: Path) -> None:
    current = EdgeVectorIndex(tmp_path / "current", indexing_threshold_kb=64, full_scan_threshold_kb=16)
    _fill(current, _clustered(4000))
    assert current.upgrade() is False
    current.close()
    path = tmp_path / "small"
    _old_shard(path, DIM)
    small = EdgeVectorIndex(path)  # production thresholds: 100 points get no graph, so no rebuild
    _fill(small, _clustered(100))
    assert small.upgrade() is False
    small.close()


def test_ordo_up_start_rebuilds_an_index_from_before_quantization(tmp_path: Path) -> None:
    from ordo.app import AppContext
    from ordo.config import Settings
    from ordo.worker.recover import recover_at_start

    ctx = AppContext(Settings(data_dir=tmp_path, model="random-clip:tiny", edge_indexing_threshold_kb=64))
    try:
        collection = ctx.active_version().collection
        dim = ctx.load_embedder().dim
        _old_shard(tmp_path / "vectors" / collection, dim)
        index = ctx.active_index()
        assert isinstance(index, EdgeVectorIndex) and not config_is_current(index._dir)
        _fill(index, np.random.default_rng(3).normal(size=(3000, dim)).astype(np.float32))
        recover_at_start(ctx)
        _wait_until_rebuilt(index)
        assert index.count() == 3000
    finally:
        ctx.close()
