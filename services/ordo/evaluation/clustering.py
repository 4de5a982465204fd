"""Clustering quality on a labelled folder, measured through the AnalysisService of a running stack.

For each algorithm (DBSCAN with automatic eps, HDBSCAN, and the k-means baseline with k = the number of true
classes) one ``CreateClusteringRun`` is started over the whole (scratch) collection with the folder's labels
as ground truth (asset id = SHA-256 of the file's bytes → label); its job is followed to the end and the
finished ``Run`` is read back: purity, NMI, ARI and noise as the service computed them (see
``ordo.analysis.metrics`` for how noise enters each), cluster count, the service's own seconds, and the names of
the largest clusters. Nothing is re-computed locally: the numbers are what a user of the API gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ordo.errors import InvalidInput, OrdoError
from ordo.evaluation.datasets import LabelledImage

ALGORITHMS: tuple[str, ...] = ("dbscan", "hdbscan", "kmeans")
METRICS: tuple[str, ...] = ("purity", "nmi", "ari", "noise_fraction", "silhouette")
TOP_CLUSTERS = 5  # names of the largest clusters kept in the report


class RunFailed(OrdoError):
    """A clustering run ended FAILED; the message carries the service's reason."""

    reason = "RUN_FAILED"


def labels_map(images: Sequence[LabelledImage]) -> dict[str, str]:
    """Ground truth as the RPC wants it: asset id → label."""
    return {image.asset_id: image.label for image in images}


def _algorithm_enum(name: str) -> int:
    from ordo.v1 import analysis_pb2

    return int(getattr(analysis_pb2, f"CLUSTERING_ALGORITHM_{name.upper()}"))


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
        }
    )
    return row


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
        raise InvalidInput("no labelled images to evaluate", reason="EMPTY_DATASET")
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
        rows.append(_row(algorithm, run, wall, _largest_clusters(client, run.run_id)))
    return {"images": len(images), "classes": k, "k": k, "rows": rows}
