"""A clustering run: validate, load, cluster, match ids with the previous run, name, measure, write.

Why the checks come in two places: what can be known cheaply — parameters, an empty collection, a filter that
matches nothing, fewer samples than ``min_samples`` (``index.count``) — is refused *before* a run or job exists,
so the RPC itself answers INVALID_ARGUMENT / FAILED_PRECONDITION and nothing is persisted. What needs the
vectors (NaN or zero vectors) is found by the job; the run then ends FAILED with the reason and its data files
are deleted, so a failed run never leaves half its results behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from ordo.analysis import runs as rs
from ordo.analysis.clustering import (
    ALGORITHMS,
    Algorithm,
    ClusteringResult,
    centroids,
    cluster,
    match_clusters,
    medoids,
)
from ordo.analysis.concepts import ConceptHead
from ordo.analysis.hierarchy import point_groups
from ordo.analysis.levels import (
    check_resolution,
    describe_levels,
    level_metrics,
    member_similarity,
    two_level,
)
from ordo.analysis.metrics import evaluate, silhouette
from ordo.analysis.naming import name_clusters
from ordo.analysis.prompt_cache import CacheDirs
from ordo.analysis.runner import Loaded, Runner, StepClock, default_kinds, stored
from ordo.analysis.runs import ClusterInfo, Members, RunRecord
from ordo.analysis.vectors import NOISE
from ordo.domain import Filter, Job
from ordo.errors import Conflict, InvalidInput, NotFound, Reason

log = logging.getLogger(__name__)

CLUSTERING_STEPS = ("load", "cluster", "match", "name", "metrics", "write")
REPRESENTATIVES = 5
DEFAULT_MIN_SAMPLES = 5
DEFAULT_MIN_CLUSTER_SIZE = 5
SILHOUETTE_SAMPLE = 2000
# A new image joins its nearest cluster when within the cluster's radius: its farthest member's distance to the
# centroid, widened by this factor, because the farthest of n samples underestimates where the (n+1)-th may
# fall (with 25 members, about one newcomer in 26 lands beyond the old maximum). Outliers still stay noise.
ASSIGN_MARGIN = 1.25

TextEncoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ClusteringRequest:
    filter: Filter = field(default_factory=Filter)
    algorithm: str = "leiden"
    eps: float = 0.0  # 0: automatic (k-distance knee)
    min_samples: int = 0  # 0: default
    min_cluster_size: int = 0
    n_clusters: int = 0
    label_field: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # asset id -> ground-truth class
    seed: int = 0
    resolution: float = 0.0  # leiden only; 0: 1 (modularity)


class ClusteringJob:
    """Clustering runs. ``text_encoder`` (the serving model's text tower) names clusters; None leaves names empty.
    ``cache_dir`` keeps the naming vocabulary's prompt embeddings across restarts."""

    def __init__(
        self,
        runner: Runner,
        text_encoder: TextEncoder | None,
        cache_dir: CacheDirs,
        concept_head: Callable[[], ConceptHead | None] | None = None,
    ) -> None:
        self.runner = runner
        self.runs = runner.runs
        self.text_encoder = text_encoder
        self.cache_dir = cache_dir
        # the serving model's ImageNet evidence map (ordo-lite), loaded when a run names its clusters
        self.concept_head = concept_head

    def start(self, request: ClusteringRequest, background: Executor | None = None) -> tuple[RunRecord, Job]:
        """Validate, create the run and its job, and compute it on ``background`` (inline when None)."""
        request = self.checked(request)
        record, job = self.runner.create(
            rs.CLUSTERING, request.filter, _clustering_params(request), len(CLUSTERING_STEPS)
        )
        self.runner.submit(background, self.run, record, request)
        return self.runs.get(record.run_id), self.runner.jobs.get(job.job_id)

    def checked(self, request: ClusteringRequest) -> ClusteringRequest:
        """The request with its defaults filled in, or the reason it cannot run (nothing persisted yet)."""
        algorithm = request.algorithm or "leiden"
        _check_parameters(request, algorithm)
        min_samples = request.min_samples or DEFAULT_MIN_SAMPLES
        min_cluster_size = request.min_cluster_size or DEFAULT_MIN_CLUSTER_SIZE
        if algorithm == "hdbscan" and min_cluster_size < 2:
            raise InvalidInput(f"min_cluster_size must be >= 2, got {min_cluster_size}", reason=Reason.BAD_PARAMETER)
        if algorithm == "kmeans" and request.n_clusters < 1:
            raise InvalidInput(
                "kmeans needs n_clusters (a positive number of clusters)", reason=Reason.MISSING_N_CLUSTERS
            )
        flt = default_kinds(request.filter)
        n = self.runner.count_or_refuse(flt)
        if algorithm in ("dbscan", "hdbscan") and n < min_samples:
            raise Conflict(
                f"the filter matches {n} sample(s), fewer than min_samples={min_samples}: nothing can form a cluster",
                reason=Reason.TOO_FEW_SAMPLES,
            )
        if algorithm == "kmeans" and request.n_clusters > n:
            raise InvalidInput(
                f"n_clusters={request.n_clusters} is more than the {n} sample(s) the filter matches",
                reason=Reason.BAD_PARAMETER,
            )
        return replace(
            request, algorithm=algorithm, min_samples=min_samples, min_cluster_size=min_cluster_size, filter=flt
        )

    def run(self, record: RunRecord, request: ClusteringRequest, clock: StepClock) -> RunRecord:
        data: Loaded = clock.step("load", lambda: self.runner.load(request.filter, request.label_field))
        if len(data.sample_ids) < request.min_samples and request.algorithm in ("dbscan", "hdbscan"):
            raise Conflict(
                f"only {len(data.sample_ids)} sample(s) left, fewer than min_samples={request.min_samples}",
                reason=Reason.TOO_FEW_SAMPLES,
            )
        record.model_id = data.model_id or record.model_id
        result = clock.step("cluster", lambda: _cluster(data, request))
        labels = result.labels
        previous = self.runs.latest(rs.CLUSTERING, record.model_id)
        ids, carried = clock.step("match", lambda: self._match(previous, data.sample_ids, labels))
        label_values, centre_matrix = centroids(data.vectors, labels)
        clusters = _summaries(data, labels, label_values, centre_matrix, ids, carried)
        groups, group_centres = two_level(self.runs, data, result, clusters, previous.run_id if previous else "")
        group_labels = point_groups(labels, result.leaf_groups) if groups else labels
        clock.step(
            "name",
            lambda: (
                self._name(clusters, centre_matrix, record.model_id, data.vectors, labels),
                self._name(groups, group_centres, record.model_id, data.vectors, group_labels),
            ),
        )
        metrics = clock.step("metrics", lambda: _metrics(data, labels, request))
        metrics.update(level_metrics(data, labels, result.leaf_groups, request))
        describe_levels(record, result, groups)
        record.sample_count = len(data.sample_ids)
        record.cluster_count = len(clusters)
        record.noise_count = int((labels == NOISE).sum())
        record.eps_used = result.eps_used
        record.assign_radius = max((c.radius for c in clusters), default=None)
        record.metrics = metrics
        record.previous_run_id = previous.run_id if previous else ""
        # Cluster rows follow label order 0..k-1, which is size order (canonical labels).
        members = Members(
            sample_ids=rs.as_bytes_array(data.sample_ids),
            asset_ids=rs.as_bytes_array(data.asset_ids),
            labels=labels.astype(np.int32),
            similarity=member_similarity(data.vectors, labels, centre_matrix),
        )

        def write() -> None:
            self.runs.save_data(record.run_id, members, centroids=centre_matrix, clusters=clusters)
            if groups:
                self.runs.save_groups(record.run_id, groups)
            self.runner.label_payloads(record.run_id, data.sample_ids, labels, [c.cluster_id for c in clusters])
            self.runner.succeed(record, clock)

        clock.step("write", write)
        return record

    def _match(
        self, previous: RunRecord | None, sample_ids: list[str], labels: np.ndarray
    ) -> tuple[dict[int, str], dict[str, ClusterInfo]]:
        """Cluster ids for this run's labels (continuing ``previous``'s where members overlap) and the previous
        clusters by id (for carrying user renames)."""
        current: dict[int, set[str]] = {}
        for sample_id, label in zip(sample_ids, labels.tolist(), strict=True):
            if label != NOISE:
                current.setdefault(label, set()).add(sample_id)
        before: dict[str, set[str]] = {}
        old: dict[str, ClusterInfo] = {}
        if previous is not None:
            try:
                prev_members = self.runs.members(previous.run_id)
                prev_clusters = self.runs.clusters(previous.run_id)
            except NotFound:  # its data vanished (deleted by hand): start fresh ids
                prev_clusters = []
            if prev_clusters:
                old = {c.cluster_id: c for c in prev_clusters}
                prev_ids = [s.decode() for s in prev_members.sample_ids.tolist()]
                prev_labels = stored(prev_members.labels, "labels").tolist()
                for sample_id, label in zip(prev_ids, prev_labels, strict=True):
                    if label != NOISE:
                        before.setdefault(prev_clusters[label].cluster_id, set()).add(sample_id)
        return match_clusters(before, current), old

    def _name(
        self,
        clusters: list[ClusterInfo],
        centre_matrix: np.ndarray,
        model_id: str,
        vectors: np.ndarray,
        labels: np.ndarray,
    ) -> None:
        """Names from the text tower (``naming``: basic-level names, contrastive terms) and, for a model with an
        ImageNet head, the image tower's class evidence over each cluster's members (``labels`` 0..k-1 in
        ``clusters`` order); user renames are kept, only terms are refreshed."""
        if not clusters or self.text_encoder is None:
            return
        try:
            head = self.concept_head() if self.concept_head is not None else None
            members = [vectors[labels == i] for i in range(len(clusters))] if head is not None else None
            names = name_clusters(
                centre_matrix,
                self.text_encoder,
                model_id=model_id or None,
                cache_dir=self.cache_dir,
                concept_head=head,
                concept_members=members,
            )
        except Exception:  # names are a nicety: a text tower that cannot load must not cost the clustering
            log.warning("naming %d clusters failed; they stay unnamed", len(clusters), exc_info=True)
            return
        for info, named in zip(clusters, names, strict=True):
            info.top_terms = list(named.terms)
            info.top_term_scores = [float(s) for s in named.scores]
            if not info.renamed:
                info.name = named.name


def _check_parameters(request: ClusteringRequest, algorithm: str) -> None:
    """What is wrong with the parameters themselves, whatever the collection holds."""
    if algorithm not in ALGORITHMS:
        raise InvalidInput(
            f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}", reason=Reason.BAD_ALGORITHM
        )
    if not np.isfinite(request.eps) or request.eps < 0 or request.eps > 2:
        raise InvalidInput(
            f"eps is a cosine distance in (0, 2] (0 = choose automatically), got {request.eps}",
            reason=Reason.BAD_EPS,
        )
    check_resolution(request.resolution)
    for name in ("min_samples", "min_cluster_size", "n_clusters"):
        if getattr(request, name) < 0:
            raise InvalidInput(
                f"{name} must not be negative, got {getattr(request, name)}", reason=Reason.BAD_PARAMETER
            )


def _cluster(data: Loaded, request: ClusteringRequest) -> ClusteringResult:
    return cluster(
        data.vectors,
        cast(Algorithm, request.algorithm),  # checked against ALGORITHMS by ClusteringJob.checked
        eps=request.eps or None,
        min_samples=request.min_samples,
        min_cluster_size=request.min_cluster_size,
        n_clusters=request.n_clusters or None,
        seed=request.seed,
        resolution=request.resolution or None,
    )


def _summaries(
    data: Loaded,
    labels: np.ndarray,
    label_values: np.ndarray,
    centre_matrix: np.ndarray,
    ids: dict[int, str],
    carried: dict[str, ClusterInfo],
) -> list[ClusterInfo]:
    """One :class:`ClusterInfo` per label (label order), keeping the names users gave the clusters they continue."""
    central = medoids(data.vectors, labels, per_cluster=REPRESENTATIVES) if label_values.size else {}
    sizes = np.bincount(labels[labels != NOISE], minlength=label_values.size) if label_values.size else []
    radii = _radii(data.vectors, labels, centre_matrix)
    clusters = []
    for label in label_values.tolist():
        cluster_id = ids[label]
        reps = central.get(label, [])
        info = ClusterInfo(
            cluster_id=cluster_id,
            size=int(sizes[label]),
            radius=float(radii[label]),
            representative_sample_ids=[data.sample_ids[i] for i in reps],
            representative_asset_ids=[data.asset_ids[i] for i in reps],
        )
        before = carried.get(cluster_id)
        if before is not None and before.renamed:
            info.name, info.renamed = before.name, True
        clusters.append(info)
    return clusters


def _clustering_params(request: ClusteringRequest) -> dict[str, Any]:
    return {
        "algorithm": request.algorithm,
        "eps": request.eps,
        "min_samples": request.min_samples,
        "min_cluster_size": request.min_cluster_size,
        "n_clusters": request.n_clusters,
        "resolution": request.resolution,
        "label_field": request.label_field,
        "labelled_assets": len(request.labels),
    }


def _metrics(data: Loaded, labels: np.ndarray, request: ClusteringRequest) -> dict[str, Any]:
    """Noise fraction and silhouette always; purity/NMI/ARI over the samples that have a ground-truth label."""
    out: dict[str, Any] = {
        "noise_fraction": float((labels == NOISE).mean()),
        "silhouette": silhouette(data.vectors, labels, sample_size=SILHOUETTE_SAMPLE, seed=request.seed),
        "labelled_count": 0,
    }
    truth: list[str | None] = [None] * len(data.sample_ids)
    if request.labels:
        truth = [request.labels.get(a) for a in data.asset_ids]
    if request.label_field:  # the labels map wins where both give a label
        truth = [t if t is not None else v for t, v in zip(truth, data.field_values, strict=True)]
    labelled = np.array([t is not None for t in truth], dtype=bool)
    if labelled.any():
        scores = evaluate(labels[labelled], np.array([t for t in truth if t is not None]))
        out.update(purity=scores["purity"], nmi=scores["nmi"], ari=scores["ari"], labelled_count=int(labelled.sum()))
    return out


def _radii(vectors: np.ndarray, labels: np.ndarray, centre_matrix: np.ndarray) -> np.ndarray:
    """Per cluster (label order): the largest cosine distance of a member to its centroid, widened by
    ``ASSIGN_MARGIN`` (what incremental assignment accepts)."""
    radii = np.zeros(centre_matrix.shape[0], dtype=np.float64)
    clustered = np.flatnonzero(labels != NOISE)
    if clustered.size:
        unit = vectors[clustered] / np.linalg.norm(vectors[clustered], axis=1, keepdims=True)
        distance = 1.0 - np.einsum("ij,ij->i", unit, centre_matrix[labels[clustered]])
        np.maximum.at(radii, labels[clustered], np.clip(distance, 0.0, 2.0))
    return np.minimum(radii * ASSIGN_MARGIN, 2.0)
