"""AnalysisCore: clustering and projection runs over the vector index, as jobs, persisted as runs.

Plain domain code (no gRPC): the servicer validates and converts, this module does the work through the ports
(``VectorIndex.scroll``/``set_payload``, the ``ObjectStore`` via :class:`RunStore`, the ``JobStore``).

Why the checks come in two places: what can be known cheaply — parameters, an empty collection, a filter that
matches nothing, fewer samples than ``min_samples`` (``index.count``) — is refused *before* a run or job exists,
so the RPC itself answers INVALID_ARGUMENT / FAILED_PRECONDITION and nothing is persisted. What needs the
vectors (NaN or zero vectors) is found by the job; the run then ends FAILED with the reason and its data files
are deleted, so a failed run never leaves half its results behind.

Order of writes in a run: data files, then cluster ids into the vector payloads, then ``run.json`` as succeeded,
then the job's last step. A client that sees the job succeed therefore finds the run complete.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ordo.analysis import runs as rs
from ordo.analysis.clustering import ALGORITHMS, NOISE, assign_to_nearest, centroids, cluster, match_clusters, medoids
from ordo.analysis.levels import check_resolution, describe_levels, level_metrics, member_similarity, two_level
from ordo.analysis.runs import ClusterInfo, Members, RunRecord, RunStore
from ordo.chaos import checkpoint
from ordo.domain import Filter, Job, SampleKind, VectorPoint
from ordo.errors import Conflict, InvalidInput, NotFound, OrdoError, Reason
from ordo.ports.job_store import JobStore
from ordo.ports.object_store import ObjectStore
from ordo.ports.vector_index import VectorIndex

log = logging.getLogger(__name__)

CLUSTERING_STEPS = ("load", "cluster", "match", "name", "metrics", "write")
PROJECTION_STEPS = ("load", "project", "write")
REPRESENTATIVES = 5
DEFAULT_MIN_SAMPLES = 5
DEFAULT_MIN_CLUSTER_SIZE = 5
DEFAULT_PERPLEXITY = 30.0
# How long the incremental assigner trusts its cached "latest run" before looking at the store again.
LATEST_RUN_TTL_S = 30.0
MAX_CLUSTER_NAME_CHARS = 200
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


@dataclass(frozen=True)
class ProjectionRequest:
    filter: Filter = field(default_factory=Filter)
    method: str = "tsne"
    perplexity: float = 0.0  # 0: default
    seed: int = 0
    clustering_run_id: str = ""


@dataclass(frozen=True)
class ProjectedPage:
    sample_ids: list[str]
    asset_ids: list[str]
    coords: np.ndarray
    cluster_ids: list[str]


@dataclass(eq=False)
class _Loaded:
    sample_ids: list[str]
    asset_ids: list[str]
    vectors: np.ndarray
    field_values: list[str | None]  # the label field's value per sample (metrics), when one was asked for
    model_id: str


@dataclass(eq=False)
class _Assigner:
    run_id: str
    cluster_ids: list[str]
    centroids: np.ndarray
    radii: np.ndarray
    kinds: tuple[str, ...]


def default_kinds(flt: Filter) -> Filter:
    """Runs cover whole images unless the filter names kinds (object crops, text regions)."""
    return flt if flt.kinds else replace(flt, kinds=(SampleKind.IMAGE,))


class _StepClock:
    """Times a run's steps and advances its job one step at a time (the job's total is the step count)."""

    def __init__(self, jobs: JobStore, job_id: str) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()
        self.current = ("", self.started)

    def so_far(self) -> dict[str, float]:
        """Seconds per finished step, plus the step in progress up to now (the final write records itself)."""
        name, start = self.current
        return {**self.seconds, name: round(time.perf_counter() - start, 4)} if name else dict(self.seconds)

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        self.current = (name, start)
        result = fn()
        elapsed = time.perf_counter() - start
        self.seconds[name] = round(elapsed, 4)
        self.jobs.add_stage_time(self.job_id, name, elapsed, 1)
        self.jobs.record(self.job_id, succeeded=1)
        return result


class AnalysisCore:
    """Clustering/projection runs, clusters, renames, duplicates and incremental assignment.

    ``text_encoder`` (the serving model's text tower) names clusters; without it names stay empty.
    ``cache_dir`` keeps the naming vocabulary's prompt embeddings across restarts.
    """

    def __init__(
        self,
        *,
        index: VectorIndex,
        store: ObjectStore,
        jobs: JobStore,
        model_id: str = "",
        text_encoder: TextEncoder | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.index = index
        self.runs = RunStore(store)
        self.jobs = jobs
        self.model_id = model_id
        self.text_encoder = text_encoder
        self.cache_dir = cache_dir
        self._write_lock = threading.Lock()  # renames and run completion rewrite shared files
        # model id -> (latest run's assigner or None, when looked up)
        self._assigners: dict[str, tuple[_Assigner | None, float]] = {}
        self._duplicates_cache: dict[tuple[Any, ...], list[Any]] = {}
        if getattr(index, "backend", "") == "qdrant-edge":
            self._recover_interrupted()

    def _recover_interrupted(self) -> None:
        """Mark runs left RUNNING by a stopped process as FAILED (and their jobs), deleting any partial data.

        Only with the embedded index: Qdrant Edge lets exactly one process open a collection, so nobody else
        can be computing a run over it, and a run of this model still RUNNING when this process starts was cut
        short (a crash, or a stop with runs still queued on the background pool). With a Qdrant server several
        analysis instances may share the runs, so they are left alone there.
        """
        try:
            stale = [r for r in self.runs.records() if r.state == rs.RUNNING and r.model_id == self.model_id]
            for record in stale:
                self.runs.delete_data(record.run_id)
                record.state, record.error_reason = rs.FAILED, "INTERRUPTED"
                record.error = "the service stopped before this run finished; start it again"
                self.runs.save_record(record)
                if record.job_id:
                    with contextlib.suppress(NotFound):  # a reset job store: the run record is what matters
                        self.jobs.fail(record.job_id, f"INTERRUPTED: {record.error}")
                log.warning("analysis run %s was interrupted by a restart; marked failed", record.run_id)
        except Exception:  # never block start-up on housekeeping
            log.warning("could not check for interrupted analysis runs", exc_info=True)

    # ------------------------------------------------------------------------------------------ clustering
    def start_clustering(self, request: ClusteringRequest, background: Executor | None = None) -> tuple[RunRecord, Job]:
        """Validate, create the run and its job, and compute it on ``background`` (inline when None)."""
        request = self._checked_clustering(request)
        record, job = self._create(rs.CLUSTERING, request.filter, _clustering_params(request), len(CLUSTERING_STEPS))
        self._submit(background, self._run_clustering, record, request)
        return self.runs.get(record.run_id), self.jobs.get(job.job_id)

    def _checked_clustering(self, request: ClusteringRequest) -> ClusteringRequest:
        algorithm = request.algorithm or "leiden"
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
        min_samples = request.min_samples or DEFAULT_MIN_SAMPLES
        min_cluster_size = request.min_cluster_size or DEFAULT_MIN_CLUSTER_SIZE
        if algorithm == "hdbscan" and min_cluster_size < 2:
            raise InvalidInput(f"min_cluster_size must be >= 2, got {min_cluster_size}", reason=Reason.BAD_PARAMETER)
        if algorithm == "kmeans" and request.n_clusters < 1:
            raise InvalidInput(
                "kmeans needs n_clusters (a positive number of clusters)", reason=Reason.MISSING_N_CLUSTERS
            )
        flt = default_kinds(request.filter)
        n = self._count_or_refuse(flt)
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

    def _run_clustering(self, record: RunRecord, request: ClusteringRequest, clock: _StepClock) -> RunRecord:
        data: _Loaded = clock.step("load", lambda: self._load(request.filter, request.label_field))
        if len(data.sample_ids) < request.min_samples and request.algorithm in ("dbscan", "hdbscan"):
            raise Conflict(
                f"only {len(data.sample_ids)} sample(s) left, fewer than min_samples={request.min_samples}",
                reason=Reason.TOO_FEW_SAMPLES,
            )
        record.model_id = data.model_id or record.model_id
        result = clock.step(
            "cluster",
            lambda: cluster(
                data.vectors,
                request.algorithm,  # type: ignore[arg-type]
                eps=request.eps or None,
                min_samples=request.min_samples,
                min_cluster_size=request.min_cluster_size,
                n_clusters=request.n_clusters or None,
                seed=request.seed,
                resolution=request.resolution or None,
            ),
        )
        labels = result.labels
        previous = self.runs.latest(rs.CLUSTERING, record.model_id)
        ids, carried = clock.step("match", lambda: self._match(previous, data.sample_ids, labels))
        label_values, centre_matrix = centroids(data.vectors, labels)
        clusters = self._summaries(data, labels, label_values, centre_matrix, ids, carried)
        groups, group_centres = two_level(self.runs, data, result, clusters, previous.run_id if previous else "")
        clock.step(
            "name",
            lambda: (
                self._name(clusters, centre_matrix, record.model_id),
                self._name(groups, group_centres, record.model_id),
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
            self._label_payloads(record.run_id, data.sample_ids, labels, [c.cluster_id for c in clusters])
            self._succeed(record, clock)

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
                for sample_id, label in zip(prev_ids, prev_members.labels.tolist(), strict=True):
                    if label != NOISE:
                        before.setdefault(prev_clusters[label].cluster_id, set()).add(sample_id)
        return match_clusters(before, current), old

    def _summaries(
        self,
        data: _Loaded,
        labels: np.ndarray,
        label_values: np.ndarray,
        centre_matrix: np.ndarray,
        ids: dict[int, str],
        carried: dict[str, ClusterInfo],
    ) -> list[ClusterInfo]:
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

    def _name(self, clusters: list[ClusterInfo], centre_matrix: np.ndarray, model_id: str) -> None:
        """Names from the text tower (A2's ``naming``); user renames are kept, only terms are refreshed."""
        if not clusters or self.text_encoder is None:
            return
        from ordo.analysis.naming import name_clusters

        try:
            names = name_clusters(centre_matrix, self.text_encoder, model_id=model_id or None, cache_dir=self.cache_dir)
        except Exception:  # names are a nicety: a text tower that cannot load must not cost the clustering
            log.warning("naming %d clusters failed; they stay unnamed", len(clusters), exc_info=True)
            return
        for info, named in zip(clusters, names, strict=True):
            info.top_terms = list(named.terms)
            info.top_term_scores = [float(s) for s in named.scores]
            if not info.renamed:
                info.name = named.name

    def _label_payloads(self, run_id: str, sample_ids: list[str], labels: np.ndarray, cluster_ids: list[str]) -> None:
        """Write ``cluster_id`` (noise: "") and ``cluster_run_id`` into each sample's payload, one call per cluster."""
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        bounds = np.flatnonzero(np.diff(sorted_labels)) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            label = int(labels[group[0]])
            cluster_id = "" if label == NOISE else cluster_ids[label]
            self.index.set_payload([sample_ids[i] for i in group], {"cluster_id": cluster_id, "cluster_run_id": run_id})

    # ------------------------------------------------------------------------------------------ projection
    def start_projection(self, request: ProjectionRequest, background: Executor | None = None) -> tuple[RunRecord, Job]:
        request = self._checked_projection(request)
        params = {"method": request.method, "perplexity": request.perplexity, "seed": request.seed}
        record, job = self._create(rs.PROJECTION, request.filter, params, len(PROJECTION_STEPS))
        record.clustering_run_id = request.clustering_run_id
        self.runs.save_record(record)
        self._submit(background, self._run_projection, record, request)
        return self.runs.get(record.run_id), self.jobs.get(job.job_id)

    def _checked_projection(self, request: ProjectionRequest) -> ProjectionRequest:
        from ordo.analysis.projection import METHODS

        method = request.method or "tsne"
        if method not in METHODS:
            raise InvalidInput(f"unknown projection method {method!r}; use tsne, umap or pca", reason=Reason.BAD_METHOD)
        if not np.isfinite(request.perplexity) or request.perplexity < 0:
            raise InvalidInput(
                f"perplexity must be a positive number, got {request.perplexity}", reason=Reason.BAD_PERPLEXITY
            )
        if request.clustering_run_id:
            source = self.get_run(request.clustering_run_id)
            if source.kind != rs.CLUSTERING:
                raise InvalidInput(
                    f"run {source.run_id} is a {source.kind} run, not a clustering run", reason=Reason.BAD_RUN_KIND
                )
            if source.state != rs.SUCCEEDED:
                raise Conflict(
                    f"clustering run {source.run_id} is {source.state}, not succeeded", reason=Reason.RUN_NOT_READY
                )
        flt = default_kinds(request.filter)
        n = self._count_or_refuse(flt)
        if method == "tsne" and request.perplexity and request.perplexity >= n:
            raise InvalidInput(
                f"perplexity {request.perplexity:g} must be smaller than the number of samples ({n})",
                reason=Reason.BAD_PERPLEXITY,
            )
        return replace(request, method=method, perplexity=request.perplexity or DEFAULT_PERPLEXITY, filter=flt)

    def _run_projection(self, record: RunRecord, request: ProjectionRequest, clock: _StepClock) -> RunRecord:
        from ordo.analysis.projection import project

        data: _Loaded = clock.step("load", lambda: self._load(request.filter))
        record.model_id = data.model_id or record.model_id
        coords = clock.step(
            "project",
            lambda: project(data.vectors, request.method, perplexity=request.perplexity, seed=request.seed),  # type: ignore[arg-type]
        )
        colours = [""] * len(data.sample_ids)
        if request.clustering_run_id:
            by_sample = self._cluster_of_samples(request.clustering_run_id)
            colours = [by_sample.get(s, "") for s in data.sample_ids]
        record.sample_count = len(data.sample_ids)
        record.cluster_count = len({c for c in colours if c})
        members = Members(
            sample_ids=rs.as_bytes_array(data.sample_ids),
            asset_ids=rs.as_bytes_array(data.asset_ids),
            coords=np.asarray(coords, dtype=np.float32),
            cluster_ids=rs.as_bytes_array(colours),
        )

        def write() -> None:
            self.runs.save_data(record.run_id, members)
            self._succeed(record, clock)

        clock.step("write", write)
        return record

    def _cluster_of_samples(self, run_id: str) -> dict[str, str]:
        members = self.runs.members(run_id)
        ids = [c.cluster_id for c in self.runs.clusters(run_id)]
        return {
            s.decode(): ids[label]
            for s, label in zip(members.sample_ids.tolist(), members.labels.tolist(), strict=True)
            if label != NOISE
        }

    def projection_pages(self, run_id: str, page_size: int) -> Iterator[ProjectedPage]:
        record = self._ready(run_id, rs.PROJECTION)
        members = self.runs.members(record.run_id)
        for start in range(0, len(members), page_size):
            stop = start + page_size
            yield ProjectedPage(
                sample_ids=[s.decode() for s in members.sample_ids[start:stop].tolist()],
                asset_ids=[s.decode() for s in members.asset_ids[start:stop].tolist()],
                coords=members.coords[start:stop],
                cluster_ids=[s.decode() for s in members.cluster_ids[start:stop].tolist()],
            )

    # ------------------------------------------------------------------------------------------ runs
    def get_run(self, run_id: str) -> RunRecord:
        return self.runs.get(run_id)

    def list_runs(self, page_size: int, page_token: str = "", kind: str = "") -> tuple[list[RunRecord], str]:
        return self.runs.list(page_size, page_token, kind)

    def _ready(self, run_id: str, kind: str) -> RunRecord:
        record = self.runs.get(run_id)
        if record.kind != kind:
            raise InvalidInput(f"run {run_id} is a {record.kind} run, not a {kind} run", reason=Reason.BAD_RUN_KIND)
        if record.state != rs.SUCCEEDED:
            detail = f": {record.error}" if record.error else " (watch its job)"
            raise Conflict(f"run {run_id} is {record.state}{detail}", reason=Reason.RUN_NOT_READY)
        return record

    def get_clusters(self, run_id: str, page_size: int, page_token: str = "") -> tuple[list[ClusterInfo], str]:
        self._ready(run_id, rs.CLUSTERING)
        offset = _offset_token(page_token)
        clusters = self.runs.clusters(run_id)
        page = clusters[offset : offset + page_size]
        more = offset + page_size < len(clusters)
        return page, str(offset + page_size) if more else ""

    def rename_cluster(self, run_id: str, cluster_id: str, name: str) -> ClusterInfo:
        name = name.strip()
        if not name:
            raise InvalidInput("the new name is empty", reason=Reason.EMPTY_NAME)
        if len(name) > MAX_CLUSTER_NAME_CHARS:
            raise InvalidInput(f"names are at most {MAX_CLUSTER_NAME_CHARS} characters", reason=Reason.NAME_TOO_LONG)
        self._ready(run_id, rs.CLUSTERING)
        with self._write_lock:
            clusters = self.runs.clusters(run_id)
            for info in clusters:
                if info.cluster_id == cluster_id:
                    info.name, info.renamed = name, True
                    self.runs.save_clusters(run_id, clusters)
                    return info
            groups = self.runs.groups(run_id)  # a two-level run's groups are renamed the same way
            for info in groups:
                if info.cluster_id == cluster_id:
                    info.name, info.renamed = name, True
                    self.runs.save_groups(run_id, groups)
                    return info
        raise NotFound(f"run {run_id} has no cluster {cluster_id!r}", reason=Reason.CLUSTER_NOT_FOUND)

    # ------------------------------------------------------------------------------------------ duplicates
    def find_duplicates(
        self, flt: Filter, min_similarity: float, page_size: int, page_token: str = ""
    ) -> tuple[list[Any], str]:
        """Near-duplicate groups (A2's ``duplicates`` module: k-NN through the index, never all pairs).

        The groups of one (filter, threshold) are kept for the next pages so paging does not recompute them;
        the cache holds the last few questions only.
        """
        from ordo.analysis.duplicates import find_duplicate_groups

        if not np.isfinite(min_similarity) or not (0 < min_similarity <= 1):
            raise InvalidInput(
                f"min_similarity is a cosine similarity in (0, 1], got {min_similarity}",
                reason=Reason.BAD_MIN_SIMILARITY,
            )
        offset = _offset_token(page_token)
        flt = default_kinds(flt)
        key = (repr(flt), float(min_similarity), self.index.count(flt))
        groups = self._duplicates_cache.get(key) if page_token else None
        if groups is None:
            groups = find_duplicate_groups(self.index, flt, float(min_similarity))
            if len(self._duplicates_cache) > 8:
                self._duplicates_cache.clear()
            self._duplicates_cache[key] = groups
        page = groups[offset : offset + page_size]
        return page, str(offset + page_size) if offset + page_size < len(groups) else ""

    # ------------------------------------------------------------------------------------------ incremental
    def assign_new_points(self, points: Sequence[VectorPoint]) -> int:
        """Give freshly embedded samples the nearest cluster of the latest clustering run (or noise).

        Called by the embedding pipeline after it wrote vectors. Only the payload changes (``cluster_id``,
        ``cluster_run_id``); the run's stored assignments stay the snapshot they were. Returns how many
        samples joined a cluster.
        """
        if not points:
            return 0
        assigner = self._latest_assigner(str(points[0].payload.get("model_id", "")))
        if assigner is None:
            return 0
        chosen = [p for p in points if str(p.payload.get("kind", "image")) in assigner.kinds and p.vector]
        if not chosen:
            return 0
        matrix = np.asarray([p.vector for p in chosen], dtype=np.float32)
        usable = np.isfinite(matrix).all(axis=1) & (np.linalg.norm(matrix, axis=1) > 0)
        chosen = [p for p, ok in zip(chosen, usable.tolist(), strict=True) if ok]
        if not chosen:
            return 0
        vectors = matrix[usable]
        rows = assign_to_nearest(vectors, assigner.centroids, float(assigner.radii.max()))
        # each cluster accepts a newcomer as far out as its own farthest member, no farther
        joined = np.flatnonzero(rows != NOISE)
        unit = vectors[joined] / np.linalg.norm(vectors[joined], axis=1, keepdims=True)
        distance = 1.0 - np.einsum("ij,ij->i", unit, assigner.centroids[rows[joined]])
        rows[joined[distance > assigner.radii[rows[joined]] + 1e-6]] = NOISE
        self._label_payloads(assigner.run_id, [p.id for p in chosen], rows, assigner.cluster_ids)
        return int((rows != NOISE).sum())

    def _latest_assigner(self, model_id: str) -> _Assigner | None:
        """The latest succeeded clustering run of ``model_id`` (any model when unknown), re-read at most every
        ``LATEST_RUN_TTL_S`` (sooner after a run of this process completes)."""
        now = time.monotonic()
        cached, checked = self._assigners.get(model_id, (None, -LATEST_RUN_TTL_S))
        if now - checked < LATEST_RUN_TTL_S:
            return cached
        latest = next(
            (
                r
                for r in self.runs.records(rs.CLUSTERING)
                if r.state == rs.SUCCEEDED and (not model_id or r.model_id == model_id)
            ),
            None,
        )
        if latest is None or latest.cluster_count == 0:
            cached = None
        elif cached is None or cached.run_id != latest.run_id:
            clusters = self.runs.clusters(latest.run_id)
            cached = _Assigner(
                run_id=latest.run_id,
                cluster_ids=[c.cluster_id for c in clusters],
                centroids=self.runs.centroids(latest.run_id).astype(np.float32),
                radii=np.array([c.radius for c in clusters], dtype=np.float64),
                kinds=tuple(k.value for k in latest.filter.kinds) or (SampleKind.IMAGE.value,),
            )
        self._assigners[model_id] = (cached, now)
        return cached

    # ------------------------------------------------------------------------------------------ plumbing
    def _count_or_refuse(self, flt: Filter) -> int:
        n = self.index.count(flt)
        if n == 0:
            if self.index.count() == 0:
                raise Conflict("the collection is empty: ingest images first", reason=Reason.EMPTY_COLLECTION)
            raise Conflict("the filter matches no samples", reason=Reason.NO_MATCHING_SAMPLES)
        return n

    def _create(self, kind: str, flt: Filter, params: dict[str, Any], steps: int) -> tuple[RunRecord, Job]:
        job = self.jobs.create(kind)
        self.jobs.add_inputs(job.job_id, steps, enumeration_done=True)
        record = RunRecord(
            run_id=rs.new_run_id(),
            kind=kind,
            model_id=self.model_id,
            created_at=datetime.now(UTC),
            job_id=job.job_id,
            filter=flt,
            params=params,
        )
        self.runs.save_record(record)
        return record, job

    def _submit(
        self, background: Executor | None, work: Callable[..., RunRecord], record: RunRecord, request: Any
    ) -> None:
        if background is None:
            self._execute(work, record, request)
        else:
            background.submit(self._execute, work, record, request)

    def _succeed(self, record: RunRecord, clock: _StepClock) -> None:
        """The run's record as succeeded: the last write of a run, just before its job's last step."""
        record.state = rs.SUCCEEDED
        record.seconds = round(time.perf_counter() - clock.started, 4)
        record.stage_seconds = clock.so_far()
        with self._write_lock:
            self.runs.save_record(record)
            self._assigners.clear()  # the next ingest batch uses the new run

    def _execute(self, work: Callable[..., RunRecord], record: RunRecord, request: Any) -> None:
        """Run one job; on any failure delete the run's data and record why (run and job both FAILED)."""
        clock = _StepClock(self.jobs, record.job_id)
        started = clock.started
        try:
            checkpoint("analysis")
            work(record, request, clock)
        except Exception as exc:  # every failure ends the run with its reason
            reason = exc.reason if isinstance(exc, OrdoError) else "INTERNAL"
            message = exc.message if isinstance(exc, OrdoError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, OrdoError):
                log.exception("analysis run %s failed", record.run_id)
            try:
                self.runs.delete_data(record.run_id)
                record.state, record.error, record.error_reason = rs.FAILED, message, reason
                record.seconds = round(time.perf_counter() - started, 4)
                record.stage_seconds = dict(clock.seconds)
                self.runs.save_record(record)
            finally:
                self.jobs.fail(record.job_id, f"{reason}: {message}")

    def _load(self, flt: Filter, label_field: str = "") -> _Loaded:
        """All vectors matching ``flt`` (via ``scroll``), refusing NaN or zero vectors with their sample ids.

        Payloads are not kept (≈1 KB each, 100 MB per 100k samples): only asset ids, the model id and the
        ``label_field`` values the metrics need."""
        sample_ids: list[str] = []
        asset_ids: list[str] = []
        field_values: list[str | None] = []
        model_id = ""
        chunks: list[np.ndarray] = []
        batch: list[list[float]] = []
        for point in self.index.scroll(flt, with_vectors=True):
            sample_ids.append(point.id)
            asset_ids.append(str(point.payload.get("asset_id", "")))
            if label_field:
                value = point.payload.get(label_field)
                field_values.append(None if value is None else str(value))
            model_id = model_id or str(point.payload.get("model_id", ""))
            batch.append(point.vector)
            if len(batch) == 4096:
                chunks.append(np.asarray(batch, dtype=np.float32))
                batch = []
        if batch:
            chunks.append(np.asarray(batch, dtype=np.float32))
        if not sample_ids:
            raise Conflict("the filter matches no samples (any more)", reason=Reason.NO_MATCHING_SAMPLES)
        vectors = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        finite = np.isfinite(vectors).all(axis=1)
        bad = np.flatnonzero(~finite | (np.linalg.norm(np.where(finite[:, None], vectors, 0), axis=1) == 0))
        if bad.size:
            examples = ", ".join(sample_ids[i] for i in bad[:3])
            raise InvalidInput(
                f"{bad.size} vector(s) are NaN, infinite or zero (e.g. sample {examples}); re-embed those images",
                reason=Reason.INVALID_VECTORS,
            )
        return _Loaded(sample_ids, asset_ids, vectors, field_values, model_id)


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


def _metrics(data: _Loaded, labels: np.ndarray, request: ClusteringRequest) -> dict[str, Any]:
    """Noise fraction and silhouette always; purity/NMI/ARI over the samples that have a ground-truth label."""
    from ordo.analysis.metrics import evaluate, silhouette

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


def _offset_token(page_token: str) -> int:
    if not page_token:
        return 0
    if not page_token.isdigit():
        raise InvalidInput(f"page_token {page_token!r} is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
    return int(page_token)
