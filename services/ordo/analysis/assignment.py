"""Incremental assignment: freshly embedded samples join the nearest cluster of the latest clustering run.

Why: a full clustering run costs seconds to minutes; a new image should not wait for the next one to get a
cluster. Each cluster accepts a newcomer as far out as its own farthest member (widened by the run's
``ASSIGN_MARGIN``, stored as the cluster's radius), no farther, so outliers stay noise. Only the payload changes
(``cluster_id``, ``cluster_run_id``); the run's stored assignments stay the snapshot they were.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ordo.analysis import runs as rs
from ordo.analysis.clustering import assign_to_nearest
from ordo.analysis.runner import Runner
from ordo.analysis.vectors import NOISE
from ordo.domain import SampleKind, VectorPoint

# How long the incremental assigner trusts its cached "latest run" before looking at the store again.
LATEST_RUN_TTL_S = 30.0


@dataclass(eq=False)
class _LatestRun:
    run_id: str
    cluster_ids: list[str]
    centroids: np.ndarray
    radii: np.ndarray
    kinds: tuple[str, ...]


class Assigner:
    """Assigns new points to the latest succeeded clustering run of their model, cached per model id."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.runs = runner.runs
        # model id -> (latest run or None, when looked up)
        self._latest: dict[str, tuple[_LatestRun | None, float]] = {}

    def forget(self) -> None:
        """Drop the cached runs: a run just completed, the next ingest batch uses it."""
        self._latest.clear()

    def assign(self, points: Sequence[VectorPoint]) -> int:
        """Label ``points``' payloads with their nearest cluster (or noise); returns how many joined a cluster."""
        if not points:
            return 0
        latest = self._latest_run(str(points[0].payload.get("model_id", "")))
        if latest is None:
            return 0
        chosen = [p for p in points if str(p.payload.get("kind", "image")) in latest.kinds and p.vector]
        if not chosen:
            return 0
        matrix = np.asarray([p.vector for p in chosen], dtype=np.float32)
        usable = np.isfinite(matrix).all(axis=1) & (np.linalg.norm(matrix, axis=1) > 0)
        chosen = [p for p, ok in zip(chosen, usable.tolist(), strict=True) if ok]
        if not chosen:
            return 0
        vectors = matrix[usable]
        rows = assign_to_nearest(vectors, latest.centroids, float(latest.radii.max()))
        # each cluster accepts a newcomer as far out as its own farthest member, no farther
        joined = np.flatnonzero(rows != NOISE)
        unit = vectors[joined] / np.linalg.norm(vectors[joined], axis=1, keepdims=True)
        distance = 1.0 - np.einsum("ij,ij->i", unit, latest.centroids[rows[joined]])
        rows[joined[distance > latest.radii[rows[joined]] + 1e-6]] = NOISE
        self.runner.label_payloads(latest.run_id, [p.id for p in chosen], rows, latest.cluster_ids)
        return int((rows != NOISE).sum())

    def _latest_run(self, model_id: str) -> _LatestRun | None:
        """The latest succeeded clustering run of ``model_id`` (any model when unknown), re-read at most every
        ``LATEST_RUN_TTL_S`` (sooner after a run of this process completes)."""
        now = time.monotonic()
        cached, checked = self._latest.get(model_id, (None, -LATEST_RUN_TTL_S))
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
            cached = _LatestRun(
                run_id=latest.run_id,
                cluster_ids=[c.cluster_id for c in clusters],
                centroids=self.runs.centroids(latest.run_id).astype(np.float32),
                radii=np.array([c.radius for c in clusters], dtype=np.float64),
                kinds=tuple(k.value for k in latest.filter.kinds) or (SampleKind.IMAGE.value,),
            )
        self._latest[model_id] = (cached, now)
        return cached
