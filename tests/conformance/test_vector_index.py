"""One conformance suite for every ``VectorIndex`` adapter.

Each test runs on:

* ``edge`` — ``EdgeVectorIndex`` (Qdrant Edge in-process) as configured in production: fresh points sit in
  a plain segment and are searched exactly;
* ``edge-hnsw`` — the same adapter with tiny indexing thresholds and ``optimize()`` after every upsert, so
  searches, filters and pagination go through real HNSW graphs and payload indexes;
* ``qdrant-local`` — ``QdrantServerIndex`` on qdrant-client local mode (the server adapter's calls, exact
  numpy search underneath).

Expected answers come from numpy (cosine ranking) and from :func:`matches`, a plain-Python statement of the
filter semantics documented in ``ordo.adapters.qdrant_filters``, so every backend is held to the same
written rules rather than to each other alone.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client.conversions.conversion import RestToGrpc

from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.adapters.qdrant_filters import build_filter, ids_filter, payload_index_schemas, search_params
from ordo.adapters.qdrant_index import MODELS as CLIENT_MODELS
from ordo.adapters.qdrant_index import QdrantServerIndex
from ordo.domain import Filter, SampleKind, VectorPoint
from ordo.errors import Conflict, InvalidInput, Unavailable
from ordo.ports.vector_index import VectorIndex

DIM = 64
N_POINTS = 500
N_CLUSTERS = 10
BACKENDS = ["edge", "edge-hnsw", "qdrant-local"]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


# --- backends -----------------------------------------------------------------------------------------


class OptimizingEdgeIndex(EdgeVectorIndex):
    """Edge with HNSW on tiny segments, rebuilt after every upsert (production leaves that to the caller).

    Any segment over 1 KB gets a graph; a search whose filter admits under ~80 points (20 KB of 64-d
    vectors) is answered exactly from the payload index, as production does below ~5 000 points of 512-d.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, hnsw_ef=256, indexing_threshold_kb=1, full_scan_threshold_kb=20)

    def upsert(self, points: Any) -> None:
        super().upsert(points)
        self.optimize()


def open_index(backend: str, path: Path, *, on_disk: bool = True) -> VectorIndex:
    """An adapter on ``path`` (a folder that may already hold its data).

    ``on_disk=False`` puts qdrant-client local mode in memory (its on-disk mode pickles every point into
    SQLite, which is slow and not what the server adapter is about); Edge is always on disk.
    """
    if backend == "edge":
        return EdgeVectorIndex(path, hnsw_ef=256)
    if backend == "edge-hnsw":
        return OptimizingEdgeIndex(path)
    if backend == "qdrant-local":
        return QdrantServerIndex.connect("conformance", path=str(path) if on_disk else ":memory:", hnsw_ef=256)
    raise AssertionError(backend)


# --- data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    points: list[VectorPoint]
    vectors: np.ndarray  # unit rows, same order as points
    centers: np.ndarray

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.points]


def point_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012x}"


def asset_of(i: int) -> str:
    return f"{i // 2:064x}"  # two samples per asset


def make_payload(i: int) -> dict[str, Any]:
    """Varied, deterministic payloads that exercise every filter (incl. exact datetime boundaries)."""
    payload: dict[str, Any] = {
        "asset_id": asset_of(i),
        "kind": [SampleKind.IMAGE, SampleKind.OBJECT, SampleKind.TEXT][i % 3].value,
        "mime_type": ["image/jpeg", "image/png", "image/webp"][(i // 3) % 3],
        "source_uri": f"s3://photos/{2022 + i % 3}/{(i % 12) + 1:02d}/img{i:04d}.jpg",
        "model_id": "clip-a" if i % 4 else "clip-b",
        "width": 100 + (i * 37) % 1900,
        "height": 100 + (i * 53) % 1300,
        "ingested_at": rfc3339(T0 + timedelta(minutes=i, microseconds=i)),
        "index": i,
    }
    if i % 7:  # every seventh sample has no capture time
        payload["captured_at"] = rfc3339(T0 + timedelta(days=i % 40))
    if i % 5:  # every fifth sample is in no cluster (noise, or ingested after the last analysis run)
        payload["cluster_id"] = f"c{i % 4}"
    return payload


def rfc3339(value: datetime) -> str:
    """The stored format (``ordo.core.payload``): UTC, microseconds, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> Dataset:
    """~500 unit vectors in 10 tight clusters: nearest neighbours are well separated, so HNSW must be exact."""
    rng = np.random.default_rng(7)
    centers = unit(rng.normal(size=(N_CLUSTERS, DIM)))
    labels = rng.integers(0, N_CLUSTERS, size=N_POINTS)
    vectors = unit(centers[labels] + rng.normal(scale=0.25, size=(N_POINTS, DIM)) / np.sqrt(DIM) * 4)
    vectors = vectors.astype(np.float32)
    points = [VectorPoint(point_id(i), vectors[i].tolist(), make_payload(i)) for i in range(N_POINTS)]
    return Dataset(points=points, vectors=vectors, centers=centers)


def exact_ranking(data: Dataset, query: np.ndarray, allowed: Callable[[dict[str, Any]], bool] | None = None):
    """Ids and cosine scores, best first, of the points ``allowed`` admits (numpy ground truth)."""
    scores = data.vectors @ (query / np.linalg.norm(query))
    order = np.argsort(-scores, kind="stable")
    return [(data.points[i].id, float(scores[i])) for i in order if allowed is None or allowed(data.points[i].payload)]


def queries(data: Dataset) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    near_centers = [data.centers[c] + rng.normal(scale=0.05, size=DIM) for c in (0, 3, 7)]
    return [*near_centers, data.vectors[42].astype(np.float64), rng.normal(size=DIM)]


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def index(backend: str, tmp_path: Path) -> Iterator[VectorIndex]:
    """A fresh, empty adapter (no collection yet)."""
    idx = open_index(backend, tmp_path / "index", on_disk=False)
    yield idx
    idx.close()


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, data: Dataset, tmp_path_factory: pytest.TempPathFactory):
    """An adapter holding the whole dataset, shared by the read-only tests of a backend."""
    idx = open_index(request.param, tmp_path_factory.mktemp(request.param) / "index", on_disk=False)
    idx.ensure_collection(DIM)
    idx.upsert(data.points)
    yield idx
    idx.close()


# --- collection ---------------------------------------------------------------------------------------


def test_adapter_satisfies_the_port(index: VectorIndex) -> None:
    assert isinstance(index, VectorIndex)
    assert index.backend in ("qdrant-edge", "qdrant")


def test_ensure_collection_is_idempotent_and_checks_size(index: VectorIndex) -> None:
    assert index.dim is None
    index.ensure_collection(DIM)
    assert index.dim == DIM
    index.ensure_collection(DIM)
    assert index.dim == DIM
    with pytest.raises(Conflict):
        index.ensure_collection(DIM + 1)
    assert index.dim == DIM
    assert index.count() == 0


def test_reads_before_the_collection_exists_are_empty(index: VectorIndex, data: Dataset) -> None:
    assert index.search(data.points[0].vector, limit=5) == []
    assert index.count() == 0
    assert index.retrieve([point_id(1)]) == []
    index.delete_by_asset(asset_of(1))  # nothing to do, no error
    with pytest.raises(Conflict):
        index.upsert(data.points[:1])


def test_wrong_vector_size_is_a_conflict(index: VectorIndex) -> None:
    index.ensure_collection(DIM)
    with pytest.raises(Conflict):
        index.upsert([VectorPoint(point_id(1), [0.1] * (DIM - 1), make_payload(1))])
    with pytest.raises(Conflict):
        index.search([0.1] * (DIM + 1), limit=3)
    assert index.count() == 0


def test_point_ids_must_be_uuids(index: VectorIndex) -> None:
    index.ensure_collection(DIM)
    with pytest.raises(InvalidInput):
        index.upsert([VectorPoint("not-a-uuid", [0.1] * DIM, {})])
    with pytest.raises(InvalidInput):
        index.retrieve(["not-a-uuid"])


# --- points -------------------------------------------------------------------------------------------


def test_upsert_and_retrieve(index: VectorIndex, data: Dataset) -> None:
    index.ensure_collection(DIM)
    index.upsert(data.points[:20])
    assert index.count() == 20

    wanted = [point_id(7), point_id(999), point_id(3)]  # request order, one missing
    got = index.retrieve(wanted)
    assert [p.id for p in got] == [point_id(7), point_id(3)]
    assert got[0].payload == data.points[7].payload
    assert got[0].vector == []

    with_vectors = index.retrieve([point_id(3)], with_vectors=True)
    assert with_vectors[0].payload == data.points[3].payload
    np.testing.assert_allclose(with_vectors[0].vector, data.vectors[3], atol=1e-5)


def test_upsert_same_id_replaces_the_point(index: VectorIndex, data: Dataset) -> None:
    index.ensure_collection(DIM)
    index.upsert(data.points[:10])
    new_vector = data.vectors[100].tolist()
    index.upsert([VectorPoint(point_id(4), new_vector, {"asset_id": "replaced", "kind": "text"})])
    assert index.count() == 10
    (point,) = index.retrieve([point_id(4)], with_vectors=True)
    assert point.payload == {"asset_id": "replaced", "kind": "text"}  # replaced, not merged
    np.testing.assert_allclose(point.vector, new_vector, atol=1e-5)
    assert index.search(new_vector, limit=1)[0].id == point_id(4)


def test_payload_datetimes_and_enums_are_normalised(index: VectorIndex) -> None:
    """Callers may hand over ``datetime``/``SampleKind`` objects; they are stored as filterable strings."""
    index.ensure_collection(DIM)
    captured = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    index.upsert(
        [VectorPoint(point_id(1), [1.0] + [0.0] * (DIM - 1), {"kind": SampleKind.OBJECT, "captured_at": captured})]
    )
    (point,) = index.retrieve([point_id(1)])
    assert point.payload == {"kind": "object", "captured_at": "2024-05-01T10:00:00.000000Z"}
    window = Filter(
        kinds=(SampleKind.OBJECT,),
        captured_after=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        captured_before=datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC),
    )
    assert index.count(window) == 1


def test_delete_by_asset(index: VectorIndex, data: Dataset) -> None:
    index.ensure_collection(DIM)
    index.upsert(data.points[:30])
    index.delete_by_asset(asset_of(10))  # points 10 and 11
    assert index.count() == 28
    assert [p.id for p in index.retrieve([point_id(10), point_id(11), point_id(12)])] == [point_id(12)]
    assert index.count(Filter(asset_ids=(asset_of(10),))) == 0
    hits = index.search(data.points[10].vector, limit=30)
    assert point_id(10) not in {h.id for h in hits} and len(hits) == 28
    index.delete_by_asset(asset_of(10))  # again: nothing left, no error
    assert index.count() == 28


def test_closed_index_is_unavailable(index: VectorIndex, data: Dataset) -> None:
    index.ensure_collection(DIM)
    index.close()
    with pytest.raises(Unavailable):
        index.search(data.points[0].vector, limit=1)
    index.close()  # twice is fine


# --- search -------------------------------------------------------------------------------------------


def test_search_matches_exact_cosine_ranking(loaded: VectorIndex, data: Dataset) -> None:
    assert loaded.count() == N_POINTS
    for query in queries(data):
        expected = exact_ranking(data, query)[:10]
        hits = loaded.search(query.tolist(), limit=10)
        assert [h.id for h in hits] == [i for i, _ in expected]
        np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-4)
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
        assert hits[0].payload == data.points[int(hits[0].id[-12:], 16)].payload


def test_offset_pagination(loaded: VectorIndex, data: Dataset) -> None:
    query = queries(data)[1]
    exact = [i for i, _ in exact_ranking(data, query)]
    page1 = loaded.search(query.tolist(), limit=10, offset=0)
    page2 = loaded.search(query.tolist(), limit=10, offset=10)
    assert [h.id for h in page1] == exact[:10]
    assert [h.id for h in page2] == exact[10:20]
    deep = loaded.search(query.tolist(), limit=7, offset=N_POINTS - 3)
    assert [h.id for h in deep] == exact[N_POINTS - 3 :]
    assert loaded.search(query.tolist(), limit=5, offset=N_POINTS) == []
    assert loaded.search(query.tolist(), limit=0) == []


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def matches(flt: Filter, payload: dict[str, Any]) -> bool:
    """The documented filter semantics, in plain Python: the oracle every backend is checked against."""

    def window(key: str, after: datetime | None, before: datetime | None) -> bool:
        if after is None and before is None:
            return True
        if key not in payload:
            return False
        value = parse(payload[key])
        return (after is None or value >= as_utc(after)) and (before is None or value < as_utc(before))

    return (
        (not flt.kinds or payload["kind"] in {k.value for k in flt.kinds})
        and (not flt.asset_ids or payload["asset_id"] in flt.asset_ids)
        and (not flt.mime_types or payload["mime_type"] in flt.mime_types)
        and payload["source_uri"].startswith(flt.source_uri_prefix)
        and window("captured_at", flt.captured_after, flt.captured_before)
        and window("ingested_at", flt.ingested_after, flt.ingested_before)
        and payload["width"] >= flt.min_width
        and payload["height"] >= flt.min_height
        and (not flt.model_id or payload["model_id"] == flt.model_id)
        and payload["asset_id"] not in flt.exclude_asset_ids
        and (not flt.cluster_ids or payload.get("cluster_id") in flt.cluster_ids)
    )


FILTERS: dict[str, Filter] = {
    "none": Filter(),
    "kinds": Filter(kinds=(SampleKind.OBJECT, SampleKind.TEXT)),
    "one-kind": Filter(kinds=(SampleKind.IMAGE,)),
    "asset_ids": Filter(asset_ids=(asset_of(0), asset_of(42), asset_of(200), "f" * 64)),
    "mime_types": Filter(mime_types=("image/png", "image/gif")),
    "prefix-folder": Filter(source_uri_prefix="s3://photos/2023/"),
    "prefix-partial": Filter(source_uri_prefix="s3://photos/2024/1"),  # months 10, 11, 12
    "prefix-none": Filter(source_uri_prefix="s3://other/"),
    # after is inclusive: points captured exactly at T0 + 10 days are in
    "captured-after": Filter(captured_after=T0 + timedelta(days=10)),
    # before is exclusive: points captured exactly at T0 + 5 days are out
    "captured-before": Filter(captured_before=T0 + timedelta(days=5)),
    "captured-window-naive": Filter(captured_after=datetime(2024, 1, 3), captured_before=datetime(2024, 1, 9)),
    "captured-window-tz": Filter(
        captured_after=datetime(2024, 1, 3, 2, 0, tzinfo=timezone(timedelta(hours=2))),  # = Jan 3 00:00Z
        captured_before=datetime(2024, 1, 9, 2, 0, tzinfo=timezone(timedelta(hours=2))),
    ),
    # microsecond-precise bounds against stored values T0 + i minutes + i µs
    "ingested-window": Filter(
        ingested_after=T0 + timedelta(minutes=100, microseconds=100),
        ingested_before=T0 + timedelta(minutes=300, microseconds=300),
    ),
    "ingested-after-µs": Filter(ingested_after=T0 + timedelta(minutes=250, microseconds=251)),
    "min_width": Filter(min_width=1000),
    "min_height": Filter(min_height=800),
    "min-both": Filter(min_width=1500, min_height=300),
    "model_id": Filter(model_id="clip-b"),
    "exclude": Filter(exclude_asset_ids=tuple(asset_of(i) for i in range(0, N_POINTS, 6))),
    "combined": Filter(
        kinds=(SampleKind.IMAGE, SampleKind.OBJECT),
        mime_types=("image/jpeg", "image/webp"),
        source_uri_prefix="s3://photos/202",
        captured_after=T0 + timedelta(days=2),
        min_width=300,
        model_id="clip-a",
        exclude_asset_ids=(asset_of(30), asset_of(31)),
    ),
    "nothing": Filter(kinds=(SampleKind.TEXT,), model_id="no-such-model"),
    "cluster_ids": Filter(cluster_ids=("c1", "c3", "no-such-cluster")),
    "cluster-and-kind": Filter(cluster_ids=("c2",), kinds=(SampleKind.IMAGE,)),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters(loaded: VectorIndex, data: Dataset, name: str) -> None:
    flt = FILTERS[name]
    expected_ids = {p.id for p in data.points if matches(flt, p.payload)}
    assert loaded.count(flt) == len(expected_ids)
    query = queries(data)[0]
    everything = loaded.search(query.tolist(), limit=N_POINTS, filter=flt)
    assert {h.id for h in everything} == expected_ids
    assert all(matches(flt, h.payload) for h in everything)
    top = loaded.search(query.tolist(), limit=10, filter=flt)
    expected_top = exact_ranking(data, query, lambda payload: matches(flt, payload))[:10]
    assert [h.id for h in top] == [i for i, _ in expected_top]


def test_filter_fixture_is_discriminating(data: Dataset) -> None:
    """Guard the suite itself: each filter keeps some points and drops others (except the two extremes)."""
    for name, flt in FILTERS.items():
        kept = sum(matches(flt, p.payload) for p in data.points)
        if name == "none":
            assert kept == N_POINTS
        elif name in ("nothing", "prefix-none"):
            assert kept == 0
        else:
            assert 0 < kept < N_POINTS, name
    for boundary in (T0 + timedelta(days=10), T0 + timedelta(days=5)):  # the inclusive/exclusive edges
        assert any(p.payload.get("captured_at") == rfc3339(boundary) for p in data.points)


# --- scroll and set_payload ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["none", "kinds", "cluster_ids", "combined", "nothing"])
def test_scroll_returns_every_match_once_in_a_stable_order(loaded: VectorIndex, data: Dataset, name: str) -> None:
    flt = FILTERS[name]
    expected = {p.id for p in data.points if matches(flt, p.payload)}
    first = list(loaded.scroll(flt if name != "none" else None, batch_size=37))  # many pages, a ragged last one
    assert [p.id for p in first] == sorted(expected)  # by id: stable across calls and backends
    assert len({p.id for p in first}) == len(first)
    second = [p.id for p in loaded.scroll(flt, with_vectors=False, batch_size=1000)]
    assert second == [p.id for p in first]
    for p in first[:50]:
        i = int(p.id[-12:], 16)
        assert p.payload == data.points[i].payload
        np.testing.assert_allclose(p.vector, data.vectors[i], atol=1e-5)
    assert all(p.vector == [] for p in loaded.scroll(flt, with_vectors=False, batch_size=64))


def test_scroll_before_the_collection_exists_is_empty(index: VectorIndex) -> None:
    assert list(index.scroll()) == []
    index.set_payload([point_id(1)], {"cluster_id": "c0"})  # nothing to label, no error


def test_set_payload_merges_keys_and_skips_missing_ids(index: VectorIndex, data: Dataset) -> None:
    index.ensure_collection(DIM)
    index.upsert(data.points[:40])
    labelled = [point_id(i) for i in range(0, 40, 2)]
    index.set_payload([*labelled, point_id(999)], {"cluster_id": "fresh", "run_id": "r1"})
    assert index.count() == 40  # the missing id did not create a point
    for point in index.retrieve([point_id(0), point_id(1), point_id(2)], with_vectors=True):
        i = int(point.id[-12:], 16)
        if i % 2 == 0:
            assert point.payload == {**data.points[i].payload, "cluster_id": "fresh", "run_id": "r1"}
        else:
            assert point.payload == data.points[i].payload
        np.testing.assert_allclose(point.vector, data.vectors[i], atol=1e-5)  # vectors untouched
    assert index.count(Filter(cluster_ids=("fresh",))) == 20
    assert {p.id for p in index.scroll(Filter(cluster_ids=("fresh",)))} == set(labelled)
    hits = index.search(data.points[0].vector, limit=40, filter=Filter(cluster_ids=("fresh",)))
    assert {h.id for h in hits} == set(labelled)
    index.set_payload(labelled[:5], {"cluster_id": "other"})  # relabelling replaces that key only
    assert index.count(Filter(cluster_ids=("fresh",))) == 15
    assert index.retrieve([labelled[0]])[0].payload["run_id"] == "r1"
    with pytest.raises(InvalidInput):
        index.set_payload(["not-a-uuid"], {"cluster_id": "x"})


# --- persistence and congruence -----------------------------------------------------------------------


def test_data_survives_close_and_reopen(backend: str, tmp_path: Path, data: Dataset) -> None:
    path = tmp_path / "persist"
    first = open_index(backend, path)
    first.ensure_collection(DIM)
    first.upsert(data.points[:100])
    first.delete_by_asset(asset_of(0))
    first.set_payload([point_id(50)], {"cluster_id": "kept"})  # Edge does not flush here: close() must
    query = queries(data)[2].tolist()
    before = [h.id for h in first.search(query, limit=10, filter=Filter(kinds=(SampleKind.IMAGE,)))]
    first.close()

    second = open_index(backend, path)
    try:
        assert second.dim == DIM  # known without ensure_collection
        assert second.count() == 98
        assert [h.id for h in second.search(query, limit=10, filter=Filter(kinds=(SampleKind.IMAGE,)))] == before
        assert second.retrieve([point_id(50)])[0].payload == {**data.points[50].payload, "cluster_id": "kept"}
        second.ensure_collection(DIM)
        with pytest.raises(Conflict):
            second.ensure_collection(DIM * 2)
        second.upsert(data.points[100:110])
        assert second.count() == 108
    finally:
        second.close()


def run_script(index: VectorIndex, data: Dataset) -> dict[str, Any]:
    """The same sequence of operations and questions for any adapter; answers are ids and counts."""
    index.ensure_collection(DIM)
    index.upsert(data.points[:300])
    index.upsert(data.points[250:400])  # overlapping re-upsert
    moved = [
        VectorPoint(p.id, unit(data.vectors[399 - i] + data.vectors[i]).tolist(), p.payload)
        for i, p in enumerate(data.points[:20])
    ]
    index.upsert(moved)
    for asset in (asset_of(2), asset_of(77), asset_of(150)):
        index.delete_by_asset(asset)
    answers: dict[str, Any] = {"count": index.count()}
    for q, query in enumerate(queries(data)):
        for name in ("none", "kinds", "prefix-folder", "captured-window-naive", "combined", "exclude"):
            hits = index.search(query.tolist(), limit=15, offset=3, filter=FILTERS[name])
            answers[f"search/{q}/{name}"] = [h.id for h in hits]
            answers[f"scores/{q}/{name}"] = [round(h.score, 4) for h in hits]
    for name, flt in FILTERS.items():
        answers[f"count/{name}"] = index.count(flt)
    answers["retrieve"] = [p.id for p in index.retrieve([point_id(i) for i in (0, 4, 5, 154, 399, 450)])]
    return answers


def test_backends_agree(tmp_path: Path, data: Dataset) -> None:
    """Same operations on both adapters → the same result ids, counts and (rounded) scores.

    ``edge`` (production config, exact plain segments) and ``qdrant-local`` must agree id for id.
    ``edge-hnsw`` answers broad filters through the graph, which is approximate: it must agree on counts
    and retrieval and find at least 95% of all the exact pages together (one page alone may lose a
    far-away match; ACORN keeps that rare).
    """
    results = {}
    for backend in BACKENDS:
        idx = open_index(backend, tmp_path / backend, on_disk=False)
        try:
            results[backend] = run_script(idx, data)
        finally:
            idx.close()
    reference = results["qdrant-local"]
    assert reference["count"] == 400 - 6
    found = wanted = 0
    for backend in BACKENDS:
        approximate = backend == "edge-hnsw"
        for key, value in reference.items():
            got = results[backend][key]
            if approximate and key.startswith("search/"):
                found += len(set(got) & set(value))
                wanted += len(value)
            elif approximate and key.startswith("scores/"):
                continue
            elif key.startswith("scores/"):
                np.testing.assert_allclose(got, value, atol=2e-4, err_msg=f"{backend} {key}")
            else:
                assert got == value, f"{backend} differs on {key}"
    assert found >= 0.95 * wanted, f"edge-hnsw recall {found / wanted:.3f} against the exact backends"


# --- Edge specifics -----------------------------------------------------------------------------------

SECOND_OPENER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ordo.adapters.edge_index import EdgeVectorIndex
    from ordo.errors import Unavailable
    try:
        index = EdgeVectorIndex(Path(sys.argv[1]))
    except Unavailable as exc:
        print(exc.message)
        sys.exit(3)
    print(index.count())
    index.close()
    """
)


def open_in_subprocess(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SECOND_OPENER, str(path)], capture_output=True, text=True, timeout=60)


def test_edge_second_opener_is_told_what_to_do(tmp_path: Path, data: Dataset) -> None:
    path = tmp_path / "shared"
    owner = EdgeVectorIndex(path)
    owner.ensure_collection(DIM)
    owner.upsert(data.points[:5])

    other = open_in_subprocess(path)
    assert other.returncode == 3, other.stderr
    message = other.stdout.strip()
    assert f"embedded vector index at {path} is in use by another process" in message
    assert "`ordo up`" in message and "ORDO_QDRANT_URL" in message

    with pytest.raises(Unavailable, match="in use by another process"):  # also within one process
        EdgeVectorIndex(path)

    owner.close()
    after = open_in_subprocess(path)  # the lock goes with close()
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "5"


def test_edge_search_is_exact_before_optimize_and_hnsw_after(tmp_path: Path, data: Dataset) -> None:
    idx = EdgeVectorIndex(tmp_path / "hnsw", hnsw_ef=256, indexing_threshold_kb=1, full_scan_threshold_kb=1)
    try:
        idx.ensure_collection(DIM)
        idx.upsert(data.points[:400])
        assert idx.indexed_vectors_count == 0  # no background optimiser: plain segment, exact search
        query = queries(data)[0]
        expected = [i for i, _ in exact_ranking(data, query, lambda p: p["index"] < 400)[:10]]
        assert [h.id for h in idx.search(query.tolist(), limit=10)] == expected

        assert idx.optimize() is True
        assert idx.indexed_vectors_count >= 400
        assert [h.id for h in idx.search(query.tolist(), limit=10)] == expected

        idx.upsert(data.points[400:])  # new points are searchable at once, before the next optimize
        assert idx.count() == N_POINTS
        assert [h.id for h in idx.search(query.tolist(), limit=10)] == [i for i, _ in exact_ranking(data, query)[:10]]
    finally:
        idx.close()


def test_edge_is_safe_to_share_between_threads(tmp_path: Path, data: Dataset) -> None:
    idx = EdgeVectorIndex(tmp_path / "threads")
    idx.ensure_collection(DIM)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(5):
                i = k * 5 + j
                idx.upsert([data.points[i]])
                assert idx.search(data.points[i].vector, limit=1)[0].id == point_id(i)
                idx.count(Filter(kinds=(SampleKind.IMAGE,)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    idx.close()
    assert errors == []


# --- server adapter specifics -------------------------------------------------------------------------


def test_unreachable_server_is_unavailable_and_names_the_url() -> None:
    url = "http://127.0.0.1:9"  # gRPC goes to port 6334 beside it; nothing listens in tests
    idx = QdrantServerIndex.connect("c", url=url, timeout=2)
    with pytest.raises(Unavailable, match=r"Qdrant server at http://127\.0\.0\.1:9"):
        idx.ensure_collection(DIM)
    with pytest.raises(Unavailable):
        idx.count()
    idx.close()


LOCAL_SECOND_OPENER = textwrap.dedent(
    """
    import sys
    from ordo.adapters.qdrant_index import QdrantServerIndex
    from ordo.errors import Unavailable
    try:
        QdrantServerIndex.connect("c", path=sys.argv[1])
    except Unavailable as exc:
        print(exc.message)
        sys.exit(3)
    """
)


def test_local_folder_in_use_is_unavailable(tmp_path: Path) -> None:
    first = QdrantServerIndex.connect("c", path=str(tmp_path / "q"))
    try:
        other = subprocess.run(
            [sys.executable, "-c", LOCAL_SECOND_OPENER, str(tmp_path / "q")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 3, other.stderr
        assert f"Qdrant local storage at {tmp_path / 'q'} is in use by another process" in other.stdout
    finally:
        first.close()


def test_server_requests_serialise_to_grpc() -> None:
    """The server adapter talks gRPC (``prefer_grpc``); local mode never converts, so check it here.

    Every filter, the search parameters and the payload index definitions must convert to the gRPC
    messages a Qdrant server receives (e.g. ``MatchPrefix`` and keyword ``prefix`` indexes are recent).
    """
    for name, flt in FILTERS.items():
        rest = build_filter(flt, CLIENT_MODELS)
        if name == "none":
            assert rest is None
            continue
        grpc_filter = RestToGrpc.convert_filter(rest)
        assert grpc_filter.ByteSize() > 0, name
    prefix = RestToGrpc.convert_filter(build_filter(FILTERS["prefix-folder"], CLIENT_MODELS))
    assert prefix.must[0].field.match.prefix == "s3://photos/2023/"
    window = RestToGrpc.convert_filter(build_filter(FILTERS["captured-window-naive"], CLIENT_MODELS))
    assert window.must[0].field.datetime_range.HasField("gte")

    by_ids = RestToGrpc.convert_filter(ids_filter([point_id(1), point_id(2)], CLIENT_MODELS))  # set_payload's selector
    assert len(by_ids.must[0].has_id.has_id) == 2
    params = RestToGrpc.convert_search_params(search_params(CLIENT_MODELS, 128, limit=10, offset=500, filtered=True))
    assert params.hnsw_ef == 510 and params.acorn.enable
    for name, schema in payload_index_schemas(CLIENT_MODELS).items():
        if isinstance(schema, str) or not hasattr(schema, "type"):
            RestToGrpc.convert_payload_schema_type(schema)
        else:
            grpc_params = RestToGrpc.convert_payload_schema_params(schema)
            if name == "text":  # OCR text: a full-text index (keyword half of hybrid search)
                assert grpc_params.text_index_params.lowercase
                continue
            assert name == "source_uri" and grpc_params.keyword_index_params.HasField("prefix")
