"""A projection run: validate, load, map to 2-D (t-SNE, UMAP or PCA), colour by a clustering run, write.

The map itself comes from ``projection.project``; this module is the run around it, through the shared
life cycle of :mod:`ordo.analysis.runner`. Points are read back page by page (:meth:`ProjectionJob.pages`)
so a 100k-point map streams in bounded messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np

from ordo.analysis import runs as rs
from ordo.analysis.projection import METHODS, Method, project
from ordo.analysis.runner import Loaded, Runner, StepClock, default_kinds, stored
from ordo.analysis.runs import Members, RunRecord
from ordo.analysis.vectors import NOISE
from ordo.domain import Filter, Job
from ordo.errors import Conflict, InvalidInput, NotFound, Reason

PROJECTION_STEPS = ("load", "project", "write")
DEFAULT_PERPLEXITY = 30.0


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


class ProjectionJob:
    """Projection runs over the vector index, and their points page by page."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.runs = runner.runs

    def start(self, request: ProjectionRequest, background: Executor | None = None) -> tuple[RunRecord, Job]:
        """Validate, create the run and its job, and compute it on ``background`` (inline when None)."""
        request = self.checked(request)
        params = {"method": request.method, "perplexity": request.perplexity, "seed": request.seed}
        record, job = self.runner.create(rs.PROJECTION, request.filter, params, len(PROJECTION_STEPS))
        record.clustering_run_id = request.clustering_run_id
        self.runs.save_record(record)
        self.runner.submit(background, self.run, record, request)
        return self.runs.get(record.run_id), self.runner.jobs.get(job.job_id)

    def checked(self, request: ProjectionRequest) -> ProjectionRequest:
        """The request with its defaults filled in, or the reason it cannot run (nothing persisted yet)."""
        method = request.method or "tsne"
        if method not in METHODS:
            raise InvalidInput(f"unknown projection method {method!r}; use tsne, umap or pca", reason=Reason.BAD_METHOD)
        if not np.isfinite(request.perplexity) or request.perplexity < 0:
            raise InvalidInput(
                f"perplexity must be a positive number, got {request.perplexity}", reason=Reason.BAD_PERPLEXITY
            )
        if request.clustering_run_id:
            source = self.runs.get(request.clustering_run_id)
            if source.kind != rs.CLUSTERING:
                raise InvalidInput(
                    f"run {source.run_id} is a {source.kind} run, not a clustering run", reason=Reason.BAD_RUN_KIND
                )
            if source.state != rs.SUCCEEDED:
                raise Conflict(
                    f"clustering run {source.run_id} is {source.state}, not succeeded", reason=Reason.RUN_NOT_READY
                )
        flt = default_kinds(request.filter)
        n = self.runner.count_or_refuse(flt)
        if method == "tsne" and request.perplexity and request.perplexity >= n:
            raise InvalidInput(
                f"perplexity {request.perplexity:g} must be smaller than the number of samples ({n})",
                reason=Reason.BAD_PERPLEXITY,
            )
        return replace(request, method=method, perplexity=request.perplexity or DEFAULT_PERPLEXITY, filter=flt)

    def run(self, record: RunRecord, request: ProjectionRequest, clock: StepClock) -> RunRecord:
        data: Loaded = clock.step("load", lambda: self.runner.load(request.filter))
        record.model_id = data.model_id or record.model_id
        method = cast(Method, request.method)  # checked against METHODS by ProjectionJob.checked
        coords = clock.step(
            "project", lambda: project(data.vectors, method, perplexity=request.perplexity, seed=request.seed)
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
            self.runner.succeed(record, clock)

        clock.step("write", write)
        return record

    def _cluster_of_samples(self, run_id: str) -> dict[str, str]:
        members = self.runs.members(run_id)
        ids = [c.cluster_id for c in self.runs.clusters(run_id)]
        return {
            s.decode(): ids[label]
            for s, label in zip(members.sample_ids.tolist(), stored(members.labels, "labels").tolist(), strict=True)
            if label != NOISE
        }

    def pages(self, run_id: str, page_size: int) -> Iterator[ProjectedPage]:
        """The run's points, ``page_size`` at a time, in stored order."""
        record = self.runner.ready(run_id, rs.PROJECTION)
        members = self.runs.members(record.run_id)
        coords = stored(members.coords, "coords")
        cluster_ids = [s.decode() for s in stored(members.cluster_ids, "cluster ids").tolist()]
        current = self._edited_colours(record)
        if current is not None:
            cluster_ids = [current.get(s.decode(), "") for s in members.sample_ids.tolist()]
        for start in range(0, len(members), page_size):
            stop = start + page_size
            yield ProjectedPage(
                sample_ids=[s.decode() for s in members.sample_ids[start:stop].tolist()],
                asset_ids=[s.decode() for s in members.asset_ids[start:stop].tolist()],
                coords=coords[start:stop],
                cluster_ids=cluster_ids[start:stop],
            )

    def _edited_colours(self, record: RunRecord) -> dict[str, str] | None:
        """The colouring run's labels as they are now, when images were moved since it ran (else None).

        A projection stores the clusters of its colouring run as they were when it was drawn; MoveToCluster
        edits that run afterwards (a new data generation), and the map must show the images where the user put
        them, not where they were. An unedited run (generation 0) is what was stored, so it costs nothing; a run
        deleted since keeps the stored colours."""
        if not record.clustering_run_id:
            return None
        try:
            if self.runs.get(record.clustering_run_id).data_generation == 0:
                return None
            return self._cluster_of_samples(record.clustering_run_id)
        except NotFound:
            return None
