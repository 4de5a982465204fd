"""AnalysisCore: clustering and projection runs over the vector index, as jobs, persisted as runs.

Plain domain code (no gRPC): the servicer validates and converts, this module does the work through the ports
(``VectorIndex.scroll``/``set_payload``, the ``ObjectStore`` via :class:`RunStore`, the ``JobStore``).

A facade: each responsibility lives in its own module and ``AnalysisCore`` wires them to one index, run store
and job store —

- ``clustering_job``: clustering runs (checks, steps, id matching with the previous run, naming, metrics);
- ``projection_job``: 2-D map runs and their points page by page;
- ``runner``: what every run shares (record and job, step clock, loading vectors, failing cleanly);
- ``assignment``: new samples joining the latest run's clusters;
- ``duplicates``: near-duplicate groups, paged.

Runs, cluster listings and renames stay here: they read or edit stored runs, whatever computed them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

from ordo import paging
from ordo.analysis import runs as rs
from ordo.analysis.assignment import Assigner
from ordo.analysis.clustering_job import ClusteringJob, ClusteringRequest, TextEncoder
from ordo.analysis.concepts import ConceptHead
from ordo.analysis.duplicates import DuplicateGroup, DuplicatePages
from ordo.analysis.moves import ClusterMover, MoveResult
from ordo.analysis.projection_job import ProjectedPage, ProjectionJob, ProjectionRequest
from ordo.analysis.prompt_cache import CacheDirs
from ordo.analysis.runner import Runner, default_kinds
from ordo.analysis.runs import ClusterInfo, RunRecord, RunStore
from ordo.domain import Filter, Job, VectorPoint
from ordo.errors import InvalidInput, NotFound, Reason
from ordo.ports.job_store import JobStore
from ordo.ports.object_store import ObjectStore
from ordo.ports.vector_index import VectorIndex

log = logging.getLogger(__name__)

__all__ = [
    "AnalysisCore",
    "ClusteringRequest",
    "ProjectedPage",
    "ProjectionRequest",
    "TextEncoder",
    "default_kinds",
]

MAX_CLUSTER_NAME_CHARS = 200


class AnalysisCore:
    """Clustering/projection runs, clusters, renames, duplicates and incremental assignment.

    ``text_encoder`` (the serving model's text tower) names clusters; without it names stay empty.
    ``cache_dir`` keeps the naming vocabulary's prompt embeddings across restarts (and libraries:
    ``ordo.analysis.prompt_cache``).
    """

    def __init__(
        self,
        *,
        index: VectorIndex,
        store: ObjectStore,
        jobs: JobStore,
        model_id: str = "",
        text_encoder: TextEncoder | None = None,
        cache_dir: CacheDirs = None,
        concept_head: Callable[[], ConceptHead | None] | None = None,
    ) -> None:
        self.index = index
        self.runs = RunStore(store)
        self.jobs = jobs
        self.model_id = model_id
        self.cache_dir = cache_dir
        self._runner = Runner(index=index, runs=self.runs, jobs=jobs, model_id=model_id)
        self._assigner = Assigner(self._runner)
        self._runner.on_success = self._assigner.forget  # the next ingest batch uses the new run
        self._clustering = ClusteringJob(self._runner, text_encoder, cache_dir, concept_head)
        self._projection = ProjectionJob(self._runner)
        self._mover = ClusterMover(self._runner)
        self._duplicates = DuplicatePages(index)
        if index.capabilities.single_writer:
            self._recover_interrupted()

    @property
    def text_encoder(self) -> TextEncoder | None:
        """The text tower that names clusters (settable: the serving model may load it later)."""
        return self._clustering.text_encoder

    @text_encoder.setter
    def text_encoder(self, encoder: TextEncoder | None) -> None:
        self._clustering.text_encoder = encoder

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

    # ------------------------------------------------------------------------------------------ runs
    def start_clustering(self, request: ClusteringRequest, background: Executor | None = None) -> tuple[RunRecord, Job]:
        """Validate, create the run and its job, and compute it on ``background`` (inline when None)."""
        return self._clustering.start(request, background)

    def start_projection(self, request: ProjectionRequest, background: Executor | None = None) -> tuple[RunRecord, Job]:
        """Validate, create the run and its job, and compute it on ``background`` (inline when None)."""
        return self._projection.start(request, background)

    def projection_pages(self, run_id: str, page_size: int) -> Iterator[ProjectedPage]:
        return self._projection.pages(run_id, page_size)

    def get_run(self, run_id: str) -> RunRecord:
        return self.runs.get(run_id)

    def list_runs(self, page_size: int, page_token: str = "", kind: str = "") -> tuple[list[RunRecord], str]:
        return self.runs.list(page_size, page_token, kind)

    # ------------------------------------------------------------------------------------------ clusters
    def get_clusters(self, run_id: str, page_size: int, page_token: str = "") -> tuple[list[ClusterInfo], str]:
        """A page of a clustering run's leaves; tokens are ``ordo.paging`` offsets bound to the run."""
        self._runner.ready(run_id, rs.CLUSTERING)
        offset = paging.decode_offset(page_token, run_id)
        clusters = self.runs.clusters(run_id)
        page = clusters[offset : offset + page_size]
        return page, paging.next_offset_token(offset, len(page), len(clusters), run_id)

    def rename_cluster(self, run_id: str, cluster_id: str, name: str) -> ClusterInfo:
        name = name.strip()
        if not name:
            raise InvalidInput("the new name is empty", reason=Reason.EMPTY_NAME)
        if len(name) > MAX_CLUSTER_NAME_CHARS:
            raise InvalidInput(f"names are at most {MAX_CLUSTER_NAME_CHARS} characters", reason=Reason.NAME_TOO_LONG)
        self._runner.ready(run_id, rs.CLUSTERING)
        with self._runner.write_lock:
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

    def move_to_cluster(
        self, run_id: str, asset_ids: list[str], cluster_id: str = "", new_name: str = ""
    ) -> MoveResult:
        """Images into a leaf, a new named leaf or noise of the latest run (``moves``: all or nothing, undoable)."""
        result = self._mover.move(run_id, asset_ids, cluster_id, new_name)
        self._assigner.forget()  # new images now see the edited run (a new leaf's centroid, the new sizes)
        return result

    # ------------------------------------------------------------------------------------------ duplicates
    def find_duplicates(
        self, flt: Filter, min_similarity: float, page_size: int, page_token: str = ""
    ) -> tuple[list[DuplicateGroup], str]:
        """Near-duplicate groups (A2's ``duplicates`` module: k-NN through the index, never all pairs), paged."""
        return self._duplicates.page(default_kinds(flt), min_similarity, page_size, page_token)

    # ------------------------------------------------------------------------------------------ incremental
    def assign_new_points(self, points: Sequence[VectorPoint]) -> int:
        """Give freshly embedded samples the nearest cluster of the latest clustering run (or noise).

        Called by the embedding pipeline after it wrote vectors. Only the payload changes (``cluster_id``,
        ``cluster_run_id``); the run's stored assignments stay the snapshot they were. Returns how many
        samples joined a cluster.
        """
        return self._assigner.assign(points)
