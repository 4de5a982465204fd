"""Glue between ``AnalysisCore`` and two-level runs: groups, their metrics, the run record's fields.

Kept out of ``service.py`` (already long) so the core's clustering flow reads the same for one or two levels:
single-level algorithms return no ``leaf_groups`` and every function here is then a no-op.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ordo.analysis.clustering import ClusteringResult
from ordo.analysis.graph_clustering import MAX_RESOLUTION, MIN_RESOLUTION
from ordo.analysis.hierarchy import build_groups, point_groups
from ordo.analysis.metrics import evaluate
from ordo.analysis.runs import ClusterInfo, RunRecord, RunStore
from ordo.analysis.vectors import NOISE
from ordo.errors import InvalidInput, Reason


def check_resolution(resolution: float) -> None:
    """0 means "default"; anything else must be a finite number in the range Leiden is meaningful in."""
    if resolution == 0:
        return
    if not np.isfinite(resolution) or not (MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
        raise InvalidInput(
            f"resolution must be in [{MIN_RESOLUTION}, {MAX_RESOLUTION}] (0 = default 1), got {resolution}: "
            "beyond it every point is its own cluster or all are one",
            reason=Reason.BAD_RESOLUTION,
        )


def two_level(
    runs: RunStore, data: Any, result: ClusteringResult, leaves: list[ClusterInfo], previous_run_id: str
) -> tuple[list[ClusterInfo], np.ndarray]:
    """The run's groups and their centroids (empty for single-level results); sets leaves' ``parent_id``."""
    if result.leaf_groups is None:
        return [], np.zeros((0, data.vectors.shape[1]), dtype=np.float32)
    unit = data.vectors / np.linalg.norm(data.vectors, axis=1, keepdims=True)
    return build_groups(
        unit=unit,
        labels=result.labels,
        leaf_groups=result.leaf_groups,
        leaves=leaves,
        sample_ids=data.sample_ids,
        asset_ids=data.asset_ids,
        runs=runs,
        previous_run_id=previous_run_id,
    )


def level_metrics(data: Any, labels: np.ndarray, leaf_groups: np.ndarray | None, request: Any) -> dict[str, Any]:
    """Largest-cluster share, and purity/NMI/ARI of the groups when the run has groups and labels were given."""
    clustered = labels[labels != NOISE]
    out: dict[str, Any] = {
        "largest_cluster_fraction": float(np.bincount(clustered).max() / labels.size) if clustered.size else 0.0
    }
    if leaf_groups is None:
        return out
    truth: list[str | None] = [None] * len(data.sample_ids)
    if request.labels:
        truth = [request.labels.get(a) for a in data.asset_ids]
    if request.label_field:
        truth = [t if t is not None else v for t, v in zip(truth, data.field_values, strict=True)]
    labelled = np.array([t is not None for t in truth], dtype=bool)
    if labelled.any():
        groups = point_groups(labels, leaf_groups)
        scores = evaluate(groups[labelled], np.array([t for t in truth if t is not None]))
        out.update(group_purity=scores["purity"], group_nmi=scores["nmi"], group_ari=scores["ari"])
    return out


def describe_levels(record: RunRecord, result: ClusteringResult, groups: list[ClusterInfo]) -> None:
    record.group_count = len(groups)
    record.resolution_used = result.resolution
    record.group_stability = result.group_stability


def member_similarity(vectors: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each sample's cosine similarity to its leaf's centroid (0 for noise): the order members are listed in."""
    out = np.zeros(labels.size, dtype=np.float32)
    clustered = np.flatnonzero(labels != NOISE)
    if clustered.size:
        unit = vectors[clustered] / np.linalg.norm(vectors[clustered], axis=1, keepdims=True)
        out[clustered] = np.einsum("ij,ij->i", unit, centres[labels[clustered]])
    return out
