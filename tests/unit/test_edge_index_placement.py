"""A rebuilt embedded shard keeps its vectors and per-point payload indexes in their files; filters stay exact.

Why: the serving process loads every rebuilt shard, and the Qdrant Edge binding holds the GIL through that
load, so every thread of ``ordo up`` waits for it once per rebuild. Rebuilding the per-point indexes (ids,
paths, OCR words, sizes) in RAM was most of that load, and reading the float vectors in another part
(``bench/edge_index_load.py``); ``edge_engine.MAPPED_INDEXES`` and ``VECTOR_MEMORY`` leave them mapped. What
must hold: the shard a rebuild produces really has them mapped (and the few-valued indexes in RAM), and every
filter Ordo builds on a mapped field answers on the graph-indexed segment exactly as a plain count over the
payloads says it should.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from ordo.adapters.edge_engine import MAPPED_INDEXES
from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.domain import Filter, SampleKind, VectorPoint
from ordo.ports.vector_index import PAYLOAD_INDEXES

DIM = 32
N = 1200
START = datetime(2024, 1, 1, tzinfo=UTC)


def _payload(i: int) -> dict:
    payload = {
        "asset_id": f"{i:064x}",
        "kind": SampleKind.TEXT.value if i % 5 == 0 else SampleKind.IMAGE.value,
        "source_uri": f"file:///photos/{'trips' if i % 3 == 0 else 'home'}/{i:05d}.jpg",
        "mime_type": "image/png" if i % 4 == 0 else "image/jpeg",
        "width": 100 + i,
        "height": 50 + i % 7,
        "ingested_at": START + timedelta(minutes=i),
        "model_id": "m",
        "library": "default",
    }
    if i % 5 == 0:
        payload["text"] = "harbour sunset" if i % 10 == 0 else "street sign"
    return payload


def _vector_storage(index: EdgeVectorIndex) -> set[str]:
    """The float vectors' storage type of every segment (``Mmap``: mapped; ``InRamMmap``: read into RAM)."""
    return {
        json.loads(f.read_text())["config"]["vector_data"][""]["storage_type"]
        for f in (index._dir / "segments").glob("*/segment.json")
    }


def _indexed_segment_config(index: EdgeVectorIndex) -> dict:
    """The payload-index config of the shard's graph-indexed (immutable) segment."""
    for config in (index._dir / "segments").glob("*/payload_index/config.json"):
        data = json.loads(config.read_text())
        kinds = [t["mutability"] for types in data["indexed_types"].values() for t in types]
        if "immutable" in kinds:
            return data
    raise AssertionError("the rebuilt shard has no immutable segment")


def test_a_rebuilt_shard_maps_per_point_indexes_and_filters_on_them_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    payloads = [_payload(i) for i in range(N)]
    # Thresholds low enough that these points get a graph (production keeps Qdrant's defaults).
    index = EdgeVectorIndex(tmp_path / "vectors", indexing_threshold_kb=64, full_scan_threshold_kb=16)
    index.ensure_collection(DIM)
    index.upsert([VectorPoint(str(uuid.UUID(int=i + 1)), vectors[i].tolist(), payloads[i]) for i in range(N)])
    assert index.optimize() is True  # the child-process rebuild ``ordo up`` runs, then the swap
    assert index.indexed_vectors_count >= N

    # The float vectors stay mapped too (only rescoring reads them): nothing in the shard is read into RAM.
    assert _vector_storage(index) == {"Mmap", "ChunkedMmap"}  # the graph-indexed and the appendable segment
    fields = _indexed_segment_config(index)["indexed_fields"]
    assert set(fields) == set(PAYLOAD_INDEXES)
    # An index left at its defaults is stored as its bare type name ("keyword"), one with params as an object.
    mapped = {name for name, spec in fields.items() if isinstance(spec, dict) and spec.get("memory") == "cold"}
    assert mapped == MAPPED_INDEXES
    assert {"kind", "library"}.isdisjoint(mapped)  # whole-library filters stay on in-RAM indexes

    def expected(keep: Callable[[dict], bool]) -> int:
        return sum(1 for p in payloads if keep(p))

    hours = (START + timedelta(hours=3), START + timedelta(hours=9))
    cases = {
        "asset ids": (
            Filter(asset_ids=(payloads[7]["asset_id"], payloads[700]["asset_id"])),
            lambda p: p["asset_id"] in {payloads[7]["asset_id"], payloads[700]["asset_id"]},
        ),
        "source prefix": (Filter(source_uri_prefix="file:///photos/trips/"), lambda p: "/trips/" in p["source_uri"]),
        "date range": (
            Filter(ingested_after=hours[0], ingested_before=hours[1]),
            lambda p: hours[0] <= p["ingested_at"] < hours[1],
        ),
        "min width": (Filter(min_width=1000), lambda p: p["width"] >= 1000),
        "min height": (Filter(min_height=55), lambda p: p["height"] >= 55),
        "words": (Filter(kinds=(SampleKind.TEXT,), text_any="harbour"), lambda p: "harbour" in p.get("text", "")),
        "mapped and in RAM": (
            Filter(kinds=(SampleKind.IMAGE,), min_width=900, mime_types=("image/png",)),
            lambda p: p["kind"] == "image" and p["width"] >= 900 and p["mime_type"] == "image/png",
        ),
    }
    for name, (flt, keep) in cases.items():
        want = expected(keep)
        assert 0 < want < N, name  # each case selects something, not everything
        assert index.count(flt) == want, name
        hits = index.search(vectors[0].tolist(), 10, filter=flt)
        assert len(hits) == min(10, want), name
        assert all(keep(payloads[uuid.UUID(h.id).int - 1]) for h in hits), name
    index.close()

    again = EdgeVectorIndex(tmp_path / "vectors", indexing_threshold_kb=64, full_scan_threshold_kb=16)
    assert again.count(Filter(min_width=1000)) == expected(lambda p: p["width"] >= 1000)  # mapped files reopen
    again.close()
