"""Clustering quality on a labelled folder, measured through the AnalysisService of a running stack.

For each algorithm (the default Leiden at both of its levels, DBSCAN with automatic eps, HDBSCAN, and the
k-means baseline with k = the number of true classes) one ``CreateClusteringRun`` is started over the whole
(scratch) collection with the folder's labels as ground truth (asset id = SHA-256 of the file's bytes → label);
its job is followed to the end and the finished ``Run`` is read back: purity, NMI, ARI and noise as the service
computed them (see ``ordo.analysis.metrics`` for how noise enters each), cluster count, the service's own
seconds, and the names of the largest clusters. Nothing is re-computed locally: the numbers are what a user
of the API gets.

Two more columns (issue 15): the **largest cluster's share** of the samples, and **naming accuracy** — the
share of clusters whose name or top-3 terms name their majority class: the label itself, a synonym or a kind of
it in WordNet (``ordo.analysis.lexicon.matches``; "jet" names "airplane", "car" names "automobile"). Members come
from ``ListClusterMembers``; for the Leiden groups row the groups' own names are judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from ordo.errors import InvalidInput, OrdoError, Reason
from ordo.evaluation.datasets import LabelledImage

if TYPE_CHECKING:  # the generated code loads when a command talks to the stack
    from ordo.v1 import analysis_pb2

ALGORITHMS: tuple[str, ...] = ("leiden", "kmeans", "dbscan", "hdbscan")
METRICS: tuple[str, ...] = ("purity", "nmi", "ari", "noise_fraction", "silhouette")
TOP_CLUSTERS = 5  # names of the largest clusters kept in the report


class RunFailed(OrdoError):
    """A clustering run ended FAILED; the message carries the service's reason."""

    reason = Reason.RUN_FAILED


def labels_map(images: Sequence[LabelledImage]) -> dict[str, str]:
    """Ground truth as the RPC wants it: asset id → label."""
    return {image.asset_id: image.label for image in images}


def _algorithm_enum(name: str) -> analysis_pb2.ClusteringAlgorithm:
    from ordo.v1 import analysis_pb2

    # the generated stubs type enum fields as their enum class; at run time the value is this int
    return cast("analysis_pb2.ClusteringAlgorithm", int(getattr(analysis_pb2, f"CLUSTERING_ALGORITHM_{name.upper()}")))


def wait_for_run(client: Any, run: Any, on_update: Callable[[Any], None] | None = None) -> Any:
    """Follow the run's job (WatchJob) to its end, then return the finished Run (GetRun)."""
    from ordo.v1 import analysis_pb2, ingest_pb2

    for update in client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=run.job_id)):
        if on_update:
            on_update(update.job)
    finished = client.analysis.GetRun(analysis_pb2.GetRunRequest(run_id=run.run_id)).run
    if finished.state == analysis_pb2.RUN_STATE_FAILED:
        raise RunFailed(f"clustering run {finished.run_id} failed: {finished.error_reason}: {finished.error}")
    return finished


def _largest_clusters(client: Any, run_id: str) -> list[dict[str, Any]]:
    from ordo.v1 import analysis_pb2

    page = client.analysis.GetClusters(analysis_pb2.GetClustersRequest(run_id=run_id, page_size=TOP_CLUSTERS))
    return [{"name": c.name, "size": int(c.size), "top_terms": list(c.top_terms[:3])} for c in page.clusters]


def _all_clusters(client: Any, run_id: str, level: int) -> list[Any]:
    from ordo.v1 import analysis_pb2

    out, token = [], ""
    while True:
        page = client.analysis.GetClusters(
            analysis_pb2.GetClustersRequest(
                run_id=run_id, page_size=500, page_token=token, level=cast("analysis_pb2.ClusterLevel", level)
            )
        )
        out.extend(page.clusters)
        token = page.next_page_token
        if not token:
            return out


def _member_assets(client: Any, run_id: str, cluster_id: str) -> list[str]:
    from ordo.v1 import analysis_pb2

    assets, token = [], ""
    while True:
        page = client.analysis.ListClusterMembers(
            analysis_pb2.ListClusterMembersRequest(
                run_id=run_id, cluster_id=cluster_id, page_size=1000, page_token=token
            )
        )
        assets.extend(m.asset_id for m in page.members)
        token = page.next_page_token
        if not token:
            return assets


def naming_accuracy(client: Any, run_id: str, truth: dict[str, str], level: int = 0) -> tuple[float | None, list]:
    """Share of clusters whose name or top-3 terms name their majority class (see module docstring)."""
    from collections import Counter

    from ordo.analysis.lexicon import matches

    clusters = _all_clusters(client, run_id, level)
    if not clusters:
        return None, []
    judged = []
    for c in clusters:
        labels = Counter(truth[a] for a in _member_assets(client, run_id, c.cluster_id) if a in truth)
        if not labels:
            continue
        majority = labels.most_common(1)[0][0]
        candidates = [c.name, *list(c.top_terms[:3])]
        judged.append((c.name, majority, any(t and matches(t, majority) for t in candidates)))
    if not judged:
        return None, []
    return round(sum(ok for _, _, ok in judged) / len(judged), 4), judged


def _row(algorithm: str, run: Any, wall: float, clusters: list[dict[str, Any]]) -> dict[str, Any]:
    m = run.metrics
    row: dict[str, Any] = {"algorithm": algorithm, "run_id": run.run_id}
    for name in METRICS:
        value = getattr(m, name)
        defined = name == "noise_fraction" or m.HasField(name)
        row[name] = round(float(value), 4) if defined else None
    row.update(
        {
            "clusters": int(run.cluster_count),
            "noise": int(run.noise_count),
            "samples": int(run.sample_count),
            "labelled": int(m.labelled_count),
            "eps_used": round(float(run.eps_used), 5) if run.eps_used else None,
            "seconds": round(float(run.seconds), 2),
            "wall_seconds": round(wall, 2),
            "stage_seconds": {k: round(v, 3) for k, v in run.stage_seconds.items()},
            "largest_clusters": clusters,
            "largest_share": round(float(m.largest_cluster_fraction), 4),
        }
    )
    return row


def _group_row(run: Any, wall: float) -> dict[str, Any]:
    """The Leiden run's top level as a row of its own (metrics the service computed for the groups)."""
    m = run.metrics
    return {
        "algorithm": "leiden (groups)",
        "run_id": run.run_id,
        "purity": round(m.group_purity, 4) if m.HasField("group_purity") else None,
        "nmi": round(m.group_nmi, 4) if m.HasField("group_nmi") else None,
        "ari": round(m.group_ari, 4) if m.HasField("group_ari") else None,
        "noise_fraction": round(float(m.noise_fraction), 4),
        "silhouette": None,
        "clusters": int(run.group_count),
        "noise": int(run.noise_count),
        "samples": int(run.sample_count),
        "labelled": int(m.labelled_count),
        "eps_used": None,
        "seconds": round(float(run.seconds), 2),
        "wall_seconds": round(wall, 2),
        "stage_seconds": {},
        "largest_clusters": [],
        "group_stability": round(float(run.group_stability), 4),
    }


def evaluate_clustering(
    client: Any,
    images: Sequence[LabelledImage],
    *,
    algorithms: Sequence[str] = ALGORITHMS,
    min_samples: int = 5,
    min_cluster_size: int = 5,
    on_run: Callable[[str, Any], None] | None = None,
) -> dict[str, Any]:
    """One clustering run per algorithm over the stack's collection (``images`` ingested), with their labels.

    ``on_run(algorithm, job)`` is called with each job update (progress). k-means gets k = the number of
    distinct labels. Returns ``{"images", "classes", "k", "rows": [...]}``; each row has the metrics (``None``
    where undefined), cluster and noise counts, the service's seconds and the largest clusters' names.
    """
    from ordo.v1 import analysis_pb2

    if not images:
        raise InvalidInput("no labelled images to evaluate", reason=Reason.EMPTY_DATASET)
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown:
        raise InvalidInput(f"unknown algorithm(s) {', '.join(unknown)}; expected {', '.join(ALGORITHMS)}")
    truth = labels_map(images)
    k = len(set(truth.values()))
    rows = []
    for algorithm in algorithms:
        params = analysis_pb2.ClusteringParams(
            algorithm=_algorithm_enum(algorithm),
            min_samples=min_samples,
            min_cluster_size=min_cluster_size if algorithm == "hdbscan" else 0,
            n_clusters=k if algorithm == "kmeans" else 0,
        )
        started = time.perf_counter()
        created = client.analysis.CreateClusteringRun(
            analysis_pb2.CreateClusteringRunRequest(params=params, labels=truth)
        )
        run = wait_for_run(client, created.run, (lambda job, a=algorithm: on_run(a, job)) if on_run else None)
        wall = time.perf_counter() - started
        row = _row(algorithm, run, wall, _largest_clusters(client, run.run_id))
        row["naming_accuracy"], row["names"] = naming_accuracy(client, run.run_id, truth)
        if algorithm == "leiden":
            group = _group_row(run, wall)
            group["naming_accuracy"], group["names"] = naming_accuracy(
                client, run.run_id, truth, analysis_pb2.CLUSTER_LEVEL_GROUP
            )
            groups = _all_clusters(client, run.run_id, analysis_pb2.CLUSTER_LEVEL_GROUP)
            group["largest_share"] = round(max((g.size for g in groups), default=0) / max(1, run.sample_count), 4)
            group["largest_clusters"] = [
                {"name": g.name, "size": int(g.size), "top_terms": list(g.top_terms[:3])} for g in groups[:TOP_CLUSTERS]
            ]
            rows.append(group)
            row["algorithm"] = "leiden (leaves)"
        rows.append(row)
    return {"images": len(images), "classes": k, "k": k, "rows": rows}
