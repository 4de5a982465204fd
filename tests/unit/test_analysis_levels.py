"""Two-level (Leiden) runs through AnalysisCore on real adapters: groups, members, renames, run comparison,
and the bad inputs of issue 15 (1, 2 and 10 images, identical images, a dense blob with scattered outliers,
NaN vectors, a run interrupted midway). Synthetic vectors (no model), so every expectation is unambiguous."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ordo.analysis import runs as rs
from ordo.analysis.browse import RunBrowser
from ordo.analysis.service import ClusteringRequest, ProjectionRequest
from ordo.domain import VectorPoint
from ordo.errors import Conflict, InvalidInput, NotFound
from tests.unit.test_analysis_service import DIM, PER_CLUSTER, K, Stack, asset_id, blob_points, point_id


@pytest.fixture
def stack(tmp_path: Path):
    s = Stack(tmp_path)
    yield s
    s.index.close()


def _labels() -> dict[str, str]:
    return {asset_id(i): f"class{i // PER_CLUSTER}" for i in range(K * PER_CLUSTER)}


def test_leiden_is_the_default_and_has_two_levels(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    record, _ = stack.core.start_clustering(ClusteringRequest(labels=_labels()))
    assert record.state == rs.SUCCEEDED and record.params["algorithm"] == "leiden"
    assert record.group_count == K  # four well-separated blobs: four groups
    assert record.metrics["group_nmi"] == pytest.approx(1.0) and record.metrics["group_purity"] == 1.0
    assert record.metrics["largest_cluster_fraction"] <= 0.25 + 1e-9
    assert 0.0 <= record.group_stability <= 1.0 and record.resolution_used == 1.0
    browser = RunBrowser(stack.core.runs)
    groups, token = browser.clusters(record.run_id, 2, level=rs.GROUP)
    assert len(groups) == 2 and token
    rest, last = browser.clusters(record.run_id, 10, token, level=rs.GROUP)
    assert len(rest) == 2 and last == ""
    groups += rest
    assert sum(g.size for g in groups) == K * PER_CLUSTER
    leaves = stack.core.runs.clusters(record.run_id)
    assert {leaf.parent_id for leaf in leaves} == {g.cluster_id for g in groups}
    for g in groups:
        children, _ = browser.clusters(record.run_id, 100, parent_id=g.cluster_id)
        assert len(children) == g.child_count and sum(c.size for c in children) == g.size
    # members of a group, in pages, most central first, each with its leaf
    first, token, total = browser.members(record.run_id, groups[0].cluster_id, 10)
    assert total == groups[0].size and len(first) == 10
    similarities = [m[2] for m in first]
    assert similarities == sorted(similarities, reverse=True)
    seen = {m[0] for m in first}
    while token:
        page, token, _ = browser.members(record.run_id, groups[0].cluster_id, 10, token)
        seen |= {m[0] for m in page}
    assert len(seen) == groups[0].size
    with pytest.raises(InvalidInput):  # a token from another question
        browser.members(
            record.run_id, groups[1].cluster_id, 10, browser.members(record.run_id, groups[0].cluster_id, 10)[1]
        )
    with pytest.raises(NotFound):
        browser.members(record.run_id, "ffffffffffff", 10)
    for bad in ("x" * 65, ""):
        with pytest.raises(InvalidInput):
            browser.members(record.run_id, bad, 10)


def test_group_renames_and_ids_carry_over_runs(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    first, _ = stack.core.start_clustering(ClusteringRequest())
    groups = stack.core.runs.groups(first.run_id)
    groups[0].name, groups[0].renamed = "harbour", True
    stack.core.runs.save_groups(first.run_id, groups)
    second, _ = stack.core.start_clustering(ClusteringRequest(seed=1))
    again = {g.cluster_id: g for g in stack.core.runs.groups(second.run_id)}
    assert {g.cluster_id for g in groups} == set(again)
    assert again[groups[0].cluster_id].name == "harbour" and again[groups[0].cluster_id].renamed


def test_compare_runs_by_membership(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    a, _ = stack.core.start_clustering(ClusteringRequest(algorithm="kmeans", n_clusters=K))
    b, _ = stack.core.start_clustering(ClusteringRequest(algorithm="kmeans", n_clusters=2))
    browser = RunBrowser(stack.core.runs)
    same = browser.compare(a.run_id, a.run_id)
    assert same.ari == pytest.approx(1.0) and same.moved == 0 and same.stayed == K * PER_CLUSTER
    c = browser.compare(a.run_id, b.run_id)
    assert c.common_samples == K * PER_CLUSTER and 0 < c.ari < 1
    # each k=4 cluster lies inside one k=2 cluster: the contingency matrix has exactly 4 non-zero cells
    assert sorted(cell[2] for cell in c.cells) == [PER_CLUSTER] * K
    assert c.moved == 0 and c.clusters_b[-1] == ("", "noise", 0)
    d = browser.compare(b.run_id, a.run_id, max_cells=2)  # two clusters of 50 split in four of 25
    assert d.cells_truncated and len(d.cells) == 2
    assert d.moved == 2 * PER_CLUSTER and d.moves and len(d.moves[0][3]) == 3
    with pytest.raises(InvalidInput):
        browser.compare(a.run_id, b.run_id, level=rs.GROUP)  # k-means runs have no groups
    for bad in (0, 10_001):
        with pytest.raises(InvalidInput):
            browser.compare(a.run_id, b.run_id, max_cells=bad)
    with pytest.raises(InvalidInput):
        browser.compare("../x", b.run_id)


@pytest.mark.parametrize("count", [1, 2, 10])
def test_tiny_collections_get_a_result(stack: Stack, count: int) -> None:
    stack.upsert(blob_points(0)[:count])
    record, _ = stack.core.start_clustering(ClusteringRequest())
    assert record.state == rs.SUCCEEDED, record.error
    assert record.cluster_count >= 1 and record.group_count >= 1
    assert record.noise_count + sum(c.size for c in stack.core.runs.clusters(record.run_id)) == count


def test_identical_images_are_one_cluster(stack: Stack) -> None:
    v = np.ones(DIM) / np.sqrt(DIM)
    stack.upsert([VectorPoint(point_id(i), v.tolist(), {"asset_id": asset_id(i), "kind": "image"}) for i in range(30)])
    record, _ = stack.core.start_clustering(ClusteringRequest())
    assert record.state == rs.SUCCEEDED and record.cluster_count == 1 and record.noise_count == 0


def test_dense_blob_with_scattered_outliers(stack: Stack) -> None:
    rng = np.random.default_rng(5)
    centre = rng.normal(size=DIM)
    blob = centre + rng.normal(scale=0.02, size=(300, DIM))
    outliers = rng.normal(size=(15, DIM))
    vectors = np.vstack([blob, outliers])
    stack.upsert(
        [
            VectorPoint(point_id(i), (v / np.linalg.norm(v)).tolist(), {"asset_id": asset_id(i), "kind": "image"})
            for i, v in enumerate(vectors)
        ]
    )
    record, _ = stack.core.start_clustering(ClusteringRequest())
    assert record.state == rs.SUCCEEDED
    members = stack.core.runs.members(record.run_id)
    assert (members.labels[300:] == -1).sum() >= 12  # the scattered points are noise ...
    assert (members.labels[:300] == -1).sum() <= 15  # ... and the blob is not
    # Modularity cuts a structureless blob into a few parts (a known property, documented in graph_clustering):
    # what matters here is that the outliers are not smeared over them and nothing is lost.
    assert record.noise_count + sum(c.size for c in stack.core.runs.clusters(record.run_id)) == 315


def test_nan_vectors_fail_a_leiden_run_with_the_reason(stack: Stack) -> None:
    stack.upsert(
        [*blob_points(0), VectorPoint(point_id(999), [float("nan")] * DIM, {"asset_id": "x", "kind": "image"})]
    )
    record, _ = stack.core.start_clustering(ClusteringRequest())
    assert record.state == rs.FAILED and record.error_reason == "INVALID_VECTORS"
    assert stack.core.runs.groups(record.run_id) == []


def test_bad_resolution_is_refused_before_a_run_exists(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    for bad in (-1.0, 0.001, 51.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInput) as refused:
            stack.core.start_clustering(ClusteringRequest(resolution=bad))
        assert refused.value.reason == "BAD_RESOLUTION"
    assert stack.core.runs.run_ids() == []
    record, _ = stack.core.start_clustering(ClusteringRequest(resolution=3.0))
    assert record.state == rs.SUCCEEDED and record.resolution_used == 3.0


def test_interrupted_leiden_run_is_marked_failed_and_compare_refuses_it(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    done, _ = stack.core.start_clustering(ClusteringRequest())
    checked = stack.core._clustering.checked(ClusteringRequest())
    record, _ = stack.core._runner.create(rs.CLUSTERING, checked.filter, {}, 6)
    stack.core.runs.save_data(record.run_id, stack.core.runs.members(done.run_id))  # half-written data
    reopened = stack.reopen()  # a restart finds it RUNNING: interrupted
    try:
        again = reopened.core.get_run(record.run_id)
        assert again.state == rs.FAILED and again.error_reason == "INTERRUPTED"
        with pytest.raises(Conflict):
            RunBrowser(reopened.core.runs).compare(done.run_id, record.run_id)
    finally:
        reopened.index.close()
        stack.index = reopened.index


def test_umap_projection_is_available(stack: Stack) -> None:
    stack.upsert(blob_points(0))
    record, _ = stack.core.start_projection(ProjectionRequest(method="umap"))
    assert record.state == rs.SUCCEEDED, record.error
    coords = np.concatenate([p.coords for p in stack.core.projection_pages(record.run_id, 30)])
    assert coords.shape == (K * PER_CLUSTER, 2) and np.isfinite(coords).all()
