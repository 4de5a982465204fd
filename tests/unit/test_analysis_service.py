"""AnalysisCore against real adapters: Qdrant Edge on a tmp dir, the local object store, the SQLite job store.

Vectors are synthetic (upserted directly, no model): four tight clusters on the sphere plus a few far points,
so every expected cluster is unambiguous and tests stay fast. Runs execute inline (no background pool) except
where a test is about the pool.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.analysis import runs as rs
from ordo.analysis.service import AnalysisCore, ClusteringRequest, ProjectionRequest
from ordo.domain import Filter, JobState, SampleKind, VectorPoint
from ordo.errors import Conflict, InvalidInput, NotFound

DIM = 32
PER_CLUSTER = 25
K = 4
MODEL = "test-model"


def point_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012x}"


def asset_id(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def centres(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(K, DIM))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def blob_points(start: int, per_cluster: int = PER_CLUSTER, *, seed: int = 0, kind: str = "image") -> list[VectorPoint]:
    """``per_cluster`` points around each centre (class label in the payload), ids from ``start``."""
    rng = np.random.default_rng(seed)
    points = []
    i = start
    for label, centre in enumerate(centres()):
        for _ in range(per_cluster):
            v = centre + rng.normal(scale=0.03, size=DIM)
            payload = {"asset_id": asset_id(i), "kind": kind, "model_id": MODEL, "label": f"class{label}"}
            points.append(VectorPoint(point_id(i), (v / np.linalg.norm(v)).tolist(), payload))
            i += 1
    return points


class Stack:
    """The ports an AnalysisCore needs, on one data dir; ``reopen`` simulates a restart."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = EdgeVectorIndex(root / "vectors")
        self.store = LocalDirectoryStore(root / "objects", fsync=False)
        self.jobs = SqliteJobStore(root / "jobs.sqlite3")
        self.core = AnalysisCore(index=self.index, store=self.store, jobs=self.jobs, model_id=MODEL)

    def upsert(self, points: list[VectorPoint]) -> None:
        self.index.ensure_collection(DIM)
        self.index.upsert(points)

    def payload(self, i: int) -> dict[str, Any]:
        return self.index.retrieve([point_id(i)])[0].payload

    def reopen(self) -> Stack:
        self.index.close()
        return Stack(self.root)


@pytest.fixture
def stack(tmp_path: Path):
    s = Stack(tmp_path)
    yield s
    s.index.close()


def cluster_of_each_class(stack: Stack, n: int) -> dict[int, str]:
    """Class index → the cluster id written into the payload of its members (all must agree)."""
    out: dict[int, set[str]] = {}
    for i in range(n):
        out.setdefault(i // PER_CLUSTER, set()).add(stack.payload(i)["cluster_id"])
    assert all(len(ids) == 1 for ids in out.values()), out
    return {k: next(iter(v)) for k, v in out.items()}


def test_clustering_run_is_persisted_labels_payloads_and_survives_restart(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    labels = {asset_id(i): f"class{i // PER_CLUSTER}" for i in range(K * PER_CLUSTER)}
    record, job = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1, labels=labels))
    assert record.state == rs.SUCCEEDED and record.kind == rs.CLUSTERING
    assert stack.jobs.get(job.job_id).state == JobState.SUCCEEDED
    assert record.sample_count == K * PER_CLUSTER and record.cluster_count == K and record.noise_count == 0
    assert record.model_id == MODEL and record.eps_used == pytest.approx(0.1)
    assert record.metrics["purity"] == pytest.approx(1.0) and record.metrics["ari"] == pytest.approx(1.0)
    assert record.metrics["labelled_count"] == K * PER_CLUSTER and record.metrics["silhouette"] > 0.5
    assert set(record.stage_seconds) == {"load", "cluster", "match", "name", "metrics", "write"}
    clusters, token = stack.core.get_clusters(record.run_id, page_size=10)
    assert token == "" and [c.size for c in clusters] == [PER_CLUSTER] * K
    by_class = cluster_of_each_class(stack, K * PER_CLUSTER)
    assert set(by_class.values()) == {c.cluster_id for c in clusters}
    for info in clusters:  # representatives are members of their cluster
        members = {asset_id(i) for i in range(K * PER_CLUSTER) if by_class[i // PER_CLUSTER] == info.cluster_id}
        assert len(info.representative_asset_ids) == 5 and set(info.representative_asset_ids) <= members
    # search inside one cluster
    one = clusters[2].cluster_id
    assert stack.index.count(Filter(cluster_ids=(one,))) == PER_CLUSTER
    assert stack.payload(0)["cluster_run_id"] == record.run_id

    reopened = stack.reopen()
    try:
        again = reopened.core.get_run(record.run_id)
        assert again.to_json() == record.to_json()
        assert [c.cluster_id for c in reopened.core.get_clusters(record.run_id, 10)[0]] == [
            c.cluster_id for c in clusters
        ]
        assert [r.run_id for r in reopened.core.list_runs(10)[0]] == [record.run_id]
    finally:
        reopened.index.close()


def test_stable_ids_across_runs_and_renames_are_carried(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    first, _ = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1))
    before = cluster_of_each_class(stack, K * PER_CLUSTER)
    renamed = stack.core.rename_cluster(first.run_id, before[1], "  my beach photos ")
    assert renamed.name == "my beach photos" and renamed.renamed
    stack.upsert(blob_points(1000, per_cluster=5, seed=9))  # the collection grows a little
    second, _ = stack.core.start_clustering(ClusteringRequest(algorithm="hdbscan"))
    assert second.previous_run_id == first.run_id and second.run_id != first.run_id
    assert cluster_of_each_class(stack, K * PER_CLUSTER) == before  # same ids, other algorithm
    clusters = {c.cluster_id: c for c in stack.core.get_clusters(second.run_id, 10)[0]}
    assert clusters[before[1]].name == "my beach photos" and clusters[before[1]].renamed
    assert not clusters[before[0]].renamed
    # the first run's files are untouched; the list is newest first
    assert stack.core.get_clusters(first.run_id, 10)[0][0].size == PER_CLUSTER
    assert [r.run_id for r in stack.core.list_runs(10)[0]] == [second.run_id, first.run_id]


def test_cluster_names_come_from_the_text_encoder_and_renames_win(stack: Stack) -> None:
    """A deterministic stand-in text tower (hash-seeded vectors): names must be non-empty and distinct."""

    def encode(texts: list[str]) -> np.ndarray:
        rows = [np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).normal(size=DIM) for t in texts]
        m = np.asarray(rows, dtype=np.float32)
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    stack.core.text_encoder = encode
    stack.upsert(blob_points(0))
    record, _ = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1))
    clusters = stack.core.get_clusters(record.run_id, 10)[0]
    assert all(c.name and c.top_terms and len(c.top_terms) == len(c.top_term_scores) for c in clusters)
    assert len({c.name for c in clusters}) == K
    stack.core.rename_cluster(record.run_id, clusters[0].cluster_id, "mine")
    rerun, _ = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1))
    names = {c.cluster_id: c.name for c in stack.core.get_clusters(rerun.run_id, 10)[0]}
    assert names[clusters[0].cluster_id] == "mine"
    assert names[clusters[1].cluster_id] == clusters[1].name  # same centroid direction, same automatic name


def test_new_images_join_the_nearest_cluster_of_the_latest_run(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    record, _ = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1))
    by_class = cluster_of_each_class(stack, K * PER_CLUSTER)
    fresh = blob_points(5000, per_cluster=2, seed=42)
    far = np.random.default_rng(1).normal(size=DIM)
    far -= centres().sum(axis=0)  # away from every centre
    outlier = VectorPoint(
        point_id(9999), (far / np.linalg.norm(far)).tolist(), {"asset_id": asset_id(9999), "kind": "image"}
    )
    stack.upsert([*fresh, outlier])
    assert "cluster_id" not in stack.payload(5000)  # upsert replaced nothing: new points start unlabelled
    joined = stack.core.assign_new_points([*fresh, outlier])
    assert joined == len(fresh)
    for k, p in enumerate(fresh):
        assert stack.index.retrieve([p.id])[0].payload["cluster_id"] == by_class[k // 2]
        assert stack.index.retrieve([p.id])[0].payload["cluster_run_id"] == record.run_id
    assert stack.payload(9999)["cluster_id"] == ""  # noise
    assert stack.core.assign_new_points([VectorPoint(point_id(7777), [0.0] * DIM, {"kind": "text"})]) == 0


def test_nothing_to_assign_before_any_run(stack: Stack) -> None:
    points = blob_points(0, per_cluster=1)
    stack.upsert(points)
    assert stack.core.assign_new_points(points) == 0
    assert "cluster_id" not in stack.payload(0)


def test_bad_input_is_refused_before_anything_is_persisted(stack: Stack) -> None:
    core = stack.core
    with pytest.raises(Conflict) as empty:
        core.start_clustering(ClusteringRequest())
    assert empty.value.reason == "EMPTY_COLLECTION"
    stack.upsert(blob_points(0, per_cluster=1))  # 4 samples
    with pytest.raises(Conflict) as nothing:
        core.start_clustering(ClusteringRequest(filter=Filter(kinds=(SampleKind.OBJECT,))))
    assert nothing.value.reason == "NO_MATCHING_SAMPLES"
    with pytest.raises(Conflict) as few:
        core.start_clustering(ClusteringRequest(algorithm="dbscan", min_samples=5))
    assert few.value.reason == "TOO_FEW_SAMPLES"
    for bad in (
        ClusteringRequest(algorithm="dbscan", eps=-0.1),
        ClusteringRequest(algorithm="dbscan", eps=float("nan")),
        ClusteringRequest(algorithm="dbscan", eps=3),
        ClusteringRequest(algorithm="dbscan", min_samples=-1),
        ClusteringRequest(algorithm="spectral"),
        ClusteringRequest(algorithm="kmeans"),
        ClusteringRequest(algorithm="kmeans", n_clusters=9),
    ):
        with pytest.raises(InvalidInput):
            core.start_clustering(bad)
    for bad_projection in (
        ProjectionRequest(perplexity=4),
        ProjectionRequest(perplexity=-1),
        ProjectionRequest(method="isomap"),
        ProjectionRequest(clustering_run_id="nope"),
    ):
        with pytest.raises(InvalidInput):
            core.start_projection(bad_projection)
    with pytest.raises(NotFound):
        core.start_projection(ProjectionRequest(clustering_run_id=rs.new_run_id()))
    with pytest.raises(NotFound):
        core.get_run(rs.new_run_id())
    with pytest.raises(InvalidInput):
        core.get_run("../../assets")
    with pytest.raises(InvalidInput):
        core.list_runs(10, page_token="garbage")
    assert core.runs.run_ids() == [] and stack.jobs.list()[0] == []  # no run, no job
    assert "cluster_id" not in stack.payload(0)


def test_nan_vectors_fail_the_run_and_leave_no_data(stack: Stack) -> None:
    points = blob_points(0)
    broken = VectorPoint(point_id(777), [float("nan")] * DIM, {"asset_id": asset_id(777), "kind": "image"})
    stack.upsert([*points, broken])
    record, job = stack.core.start_clustering(ClusteringRequest())
    assert record.state == rs.FAILED and record.error_reason == "INVALID_VECTORS"
    assert point_id(777) in record.error
    failed_job = stack.jobs.get(job.job_id)
    assert failed_job.state == JobState.FAILED and "INVALID_VECTORS" in failed_job.error
    keys = [o.key for o in stack.store.list(rs.PREFIX)]
    assert keys == [f"{rs.PREFIX}{record.run_id}/run.json"]  # only the record saying why
    assert "cluster_id" not in stack.payload(0)
    with pytest.raises(Conflict, match="NaN"):
        stack.core.get_clusters(record.run_id, 10)
    assert stack.core.assign_new_points(points) == 0  # a failed run is never used for assignment


def test_projection_runs_coloured_by_a_clustering_run_stream_in_pages(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    clustering, _ = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1))
    by_class = cluster_of_each_class(stack, K * PER_CLUSTER)
    for method in ("pca", "tsne"):
        record, _ = stack.core.start_projection(
            ProjectionRequest(method=method, perplexity=10, clustering_run_id=clustering.run_id)
        )
        assert record.state == rs.SUCCEEDED and record.clustering_run_id == clustering.run_id
        assert record.sample_count == K * PER_CLUSTER and record.cluster_count == K
        pages = list(stack.core.projection_pages(record.run_id, page_size=30))
        assert [len(p.sample_ids) for p in pages] == [30, 30, 30, 10]
        ids = [s for p in pages for s in p.sample_ids]
        assert ids == sorted(point_id(i) for i in range(K * PER_CLUSTER))
        coords = np.concatenate([p.coords for p in pages])
        assert coords.shape == (K * PER_CLUSTER, 2) and np.isfinite(coords).all()
        colours = [c for p in pages for c in p.cluster_ids]
        assert colours == [by_class[int(s[-12:], 16) // PER_CLUSTER] for s in ids]
        # clusters are separated on the map: each point is nearer its own cluster's mean than any other's
        means = {c: coords[[x == c for x in colours]].mean(axis=0) for c in set(colours)}
        nearest = [min(means, key=lambda c: np.linalg.norm(xy - means[c])) for xy in coords]
        assert nearest == colours
    with pytest.raises(InvalidInput):
        list(stack.core.projection_pages(clustering.run_id, 10))  # a clustering run has no map
    with pytest.raises(InvalidInput):
        stack.core.get_clusters(record.run_id, 10)


def test_runs_run_on_the_background_pool_and_list_in_pages(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    with ThreadPoolExecutor(max_workers=1) as pool:
        # automatic eps here (the k-distance knee may leave an edge point or two as noise)
        started = [
            stack.core.start_clustering(ClusteringRequest(algorithm="dbscan"), background=pool)[0] for _ in range(3)
        ]
    assert all(r.state in (rs.RUNNING, rs.SUCCEEDED) for r in started)
    newest_first = sorted((r.run_id for r in started), reverse=True)
    page1, token = stack.core.list_runs(2)
    page2, last = stack.core.list_runs(2, token)
    assert [r.run_id for r in page1 + page2] == newest_first and last == ""
    assert all(r.state == rs.SUCCEEDED and r.cluster_count == K and r.noise_count <= 3 for r in page1 + page2)
    assert stack.core.list_runs(10, kind=rs.PROJECTION) == ([], "")
    clusters, token = stack.core.get_clusters(started[0].run_id, page_size=3)
    rest, end = stack.core.get_clusters(started[0].run_id, page_size=3, page_token=token)
    assert len(clusters) == 3 and len(rest) == 1 and end == ""
    with pytest.raises(InvalidInput):
        stack.core.get_clusters(started[0].run_id, 3, page_token="x1")
    with pytest.raises(InvalidInput, match="other parameters"):  # AIP-158: a token is bound to its run
        stack.core.get_clusters(started[1].run_id, 3, page_token=token)
    more, _ = stack.core.get_clusters(started[0].run_id, page_size=1, page_token=token)  # page size may change
    assert more == rest[:1]
    with pytest.raises(NotFound):
        stack.core.rename_cluster(started[0].run_id, "no-such-cluster", "x")
    with pytest.raises(InvalidInput):
        stack.core.rename_cluster(started[0].run_id, clusters[0].cluster_id, "   ")


def test_find_duplicates_delegates_to_the_index(stack: Stack) -> None:
    points = blob_points(0, per_cluster=3)
    twin = VectorPoint(point_id(500), points[0].vector, {"asset_id": asset_id(500), "kind": "image"})
    stack.upsert([*points, twin])
    groups, token = stack.core.find_duplicates(Filter(), 0.999, page_size=10)
    assert token == "" and [sorted(g.asset_ids) for g in groups] == [sorted([asset_id(0), asset_id(500)])]
    first, token = stack.core.find_duplicates(Filter(), 0.5, page_size=1)
    assert len(first) == 1 and token
    rest, end = stack.core.find_duplicates(Filter(), 0.5, page_size=100, page_token=token)
    assert end == "" and first + rest == stack.core.find_duplicates(Filter(), 0.5, page_size=100)[0]
    with pytest.raises(InvalidInput, match="other parameters"):  # AIP-158: a token is bound to its question
        stack.core.find_duplicates(Filter(), 0.999, page_size=1, page_token=token)
    with pytest.raises(InvalidInput):
        stack.core.find_duplicates(Filter(), 1.5, page_size=10)


def test_a_text_tower_that_fails_leaves_clusters_unnamed_not_the_run_failed(stack: Stack) -> None:
    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("text tower unavailable")

    from ordo.analysis.naming import clear_prompt_cache

    clear_prompt_cache()  # prompt embeddings are cached per model id; another test may have filled it
    stack.core.text_encoder = broken
    stack.upsert(blob_points(0))
    record, _ = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1))
    assert record.state == rs.SUCCEEDED and record.cluster_count == K
    assert all(c.name == "" and c.top_terms == [] for c in stack.core.get_clusters(record.run_id, 10)[0])


def test_a_run_cut_short_by_a_stop_is_marked_interrupted_on_restart(stack: Stack) -> None:
    """What `OrdoServer.stop` does to runs still queued: the pool is shut down with their futures cancelled."""
    import threading

    stack.upsert(blob_points(0))
    pool = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    pool.submit(release.wait, 30)  # the one worker is busy, so the run stays queued
    record, job = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1), background=pool)
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert stack.core.get_run(record.run_id).state == rs.RUNNING

    reopened = stack.reopen()
    try:
        after = reopened.core.get_run(record.run_id)
        assert after.state == rs.FAILED and after.error_reason == "INTERRUPTED"
        assert reopened.jobs.get(job.job_id).state == JobState.FAILED
        again, _ = reopened.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1))  # and a new run works
        assert again.state == rs.SUCCEEDED and again.previous_run_id == ""
    finally:
        reopened.index.close()


def test_metrics_from_a_payload_label_field(stack: Stack) -> None:
    points = blob_points(0)
    stack.upsert(points)
    stack.index.set_payload([p.id for p in points[:10]], {"label": "class3"})  # 10 wrong labels in class 0
    record, _ = stack.core.start_clustering(ClusteringRequest(algorithm="dbscan", eps=0.1, label_field="label"))
    assert record.metrics["labelled_count"] == K * PER_CLUSTER
    assert record.metrics["purity"] == pytest.approx(1 - 10 / (K * PER_CLUSTER))
    unlabelled, _ = stack.core.start_clustering(
        ClusteringRequest(algorithm="dbscan", eps=0.1, label_field="no_such_field")
    )
    assert unlabelled.metrics["labelled_count"] == 0 and "purity" not in unlabelled.metrics
