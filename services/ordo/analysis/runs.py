"""Analysis runs persisted in the object store, so they survive restarts and any service instance can read them.

Layout under ``analysis/runs/<run_id>/``:

* ``run.json`` — the record (:class:`RunRecord`): kind, state, parameters, model id, filter, counts, timings,
  metrics, errors. Written first with state ``running`` (so ``GetRun`` can show a run in progress) and rewritten
  last with ``succeeded``: readers treat the data files as valid only then.
* ``members.npz`` — one row per sample, in the order the index returned them (by id): ``sample_ids`` and
  ``asset_ids`` (fixed-width bytes), plus ``labels`` (int32 index into ``clusters.json``, -1 = noise) for a
  clustering run, or ``coords`` (float32 ``(n, 2)``) and ``cluster_ids`` for a projection run. ``np.savez``
  without pickles: compact (≈10 MB per 100k samples), and loads with ``allow_pickle=False``.
* ``centroids.npy`` — clustering runs: one unit row per cluster (same order as ``clusters.json``), what
  incremental assignment compares new images with.
* ``clusters.json`` — clustering runs: per cluster id, name, size, representatives, top terms, renamed flag,
  and for two-level runs the group it belongs to (``parent_id``).
* ``groups.json`` — two-level (Leiden) runs: the top-level groups, in the same shape (``level`` "group").

**Generations** (user edits after a run succeeded, ``ordo.analysis.moves``): an edit that changes membership
touches several data files at once, and no store writes several objects atomically. So an edit writes complete
new copies under ``g<N>/`` (``analysis/runs/<run_id>/g3/members.npz``...) and then rewrites ``run.json`` with
``data_generation`` N: that one atomic put is the commit point. Readers look the generation up in the record, so
they see all of generation N-1 or all of N, never a mix; generation 0 is the plain names above. The generation
before the current one is kept (a reader that read the record just before a commit still finds its files) and
older ones are deleted after the commit; a kill before that leaves only unreferenced leftovers.

A run that fails has its data files deleted and its record rewritten as ``failed`` with the reason, so nothing
half-computed is ever readable as a result.

Run ids start with the UTC creation time (``r20240501t101500123456-1a2b3c``), so the store's key order is
creation order and listing newest first needs no index.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ordo import paging
from ordo.domain import Filter, SampleKind
from ordo.errors import InvalidInput, NotFound, Reason
from ordo.ports.object_store import ObjectStore

PREFIX = "analysis/runs/"
RUN_ID_PATTERN = re.compile(r"^r\d{8}t\d{12}-[0-9a-f]{6}$")
CLUSTERING = "clustering"
PROJECTION = "projection"
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
DATA_FILES = ("members.npz", "centroids.npy", "clusters.json", "groups.json")
LEAF, GROUP = "leaf", "group"


def new_run_id(now: datetime | None = None) -> str:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"r{now:%Y%m%d}t{now:%H%M%S%f}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    """``InvalidInput`` for anything that is not a run id (never lets a client address other keys)."""
    if not run_id:
        raise InvalidInput("run_id is required", reason=Reason.MISSING_RUN_ID)
    if not RUN_ID_PATTERN.match(run_id):
        raise InvalidInput(
            f"{run_id!r} is not a run id (expected e.g. r20240501t101500123456-1a2b3c)", reason=Reason.BAD_RUN_ID
        )
    return run_id


@dataclass
class ClusterInfo:
    cluster_id: str
    size: int
    name: str = ""
    renamed: bool = False
    representative_sample_ids: list[str] = field(default_factory=list)
    representative_asset_ids: list[str] = field(default_factory=list)
    top_terms: list[str] = field(default_factory=list)
    top_term_scores: list[float] = field(default_factory=list)
    # Largest cosine distance of a member to the centroid: how far a new image may be and still join.
    radius: float = 0.0
    level: str = LEAF
    parent_id: str = ""  # leaves of a two-level run: their group's id
    child_count: int = 0  # groups: how many leaves they hold


@dataclass
class RunRecord:
    run_id: str
    kind: str  # CLUSTERING | PROJECTION
    model_id: str
    created_at: datetime
    job_id: str = ""
    state: str = RUNNING
    filter: Filter = field(default_factory=Filter)
    params: dict[str, Any] = field(default_factory=dict)
    sample_count: int = 0
    cluster_count: int = 0
    noise_count: int = 0
    eps_used: float | None = None
    # Two-level runs: how many groups, and the resolutions used (see ordo.analysis.graph_clustering).
    group_count: int = 0
    resolution_used: float | None = None
    group_stability: float | None = None
    # Cosine distance within which a new image joins its nearest cluster (incremental assignment).
    assign_radius: float | None = None
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    previous_run_id: str = ""
    clustering_run_id: str = ""
    error: str = ""
    error_reason: str = ""
    # Which copy of the data files is current (see Generations in the module docstring); 0 = the plain names.
    data_generation: int = 0

    def to_json(self) -> bytes:
        data = asdict(self)
        data["created_at"] = self.created_at.astimezone(UTC).isoformat()
        data["filter"] = filter_to_dict(self.filter)
        return json.dumps(data, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RunRecord:
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}  # newer writers may add fields
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["filter"] = filter_from_dict(data.get("filter") or {})
        return cls(**data)


def filter_to_dict(flt: Filter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Filter):
        value = getattr(flt, f.name)
        if value in ((), "", 0, None):
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = [v.value if isinstance(v, SampleKind) else v for v in value]
        out[f.name] = value
    return out


def filter_from_dict(data: dict[str, Any]) -> Filter:
    known = {f.name for f in fields(Filter)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            continue
        if key == "kinds":
            value = tuple(SampleKind(v) for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        elif key.endswith(("_after", "_before")) and isinstance(value, str):
            value = datetime.fromisoformat(value)
        kwargs[key] = value
    return Filter(**kwargs)


@dataclass(frozen=True, eq=False)
class Members:
    """Per-sample arrays of a run (see the module docstring); ``labels`` or ``coords`` by kind."""

    sample_ids: np.ndarray  # bytes (S36)
    asset_ids: np.ndarray  # bytes
    labels: np.ndarray | None = None  # int32, clustering runs
    coords: np.ndarray | None = None  # float32 (n, 2), projection runs
    cluster_ids: np.ndarray | None = None  # bytes, projection runs coloured by a clustering run
    similarity: np.ndarray | None = None  # float32, clustering runs: cosine similarity to the leaf's centroid

    def __len__(self) -> int:
        return int(self.sample_ids.shape[0])


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # pyright: ignore[reportArgumentType]: numpy's stub reads **arrays as allow_pickle
    return buffer.getvalue()


def as_bytes_array(values: list[str]) -> np.ndarray:
    return np.array([v.encode() for v in values], dtype=np.bytes_) if values else np.zeros(0, dtype="S1")


class RunStore:
    """Reads and writes runs in an ``ObjectStore``; no caching, so every instance sees every run."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @staticmethod
    def key(run_id: str, name: str, generation: int = 0) -> str:
        return f"{PREFIX}{run_id}/{name}" if generation == 0 else f"{PREFIX}{run_id}/g{generation}/{name}"

    def generation(self, run_id: str) -> int:
        """The run's current data generation (one small read of ``run.json``; 0 for a run never edited)."""
        try:
            return self.get(run_id).data_generation
        except NotFound:
            return 0

    def data_key(self, run_id: str, name: str) -> str:
        return self.key(run_id, name, self.generation(run_id))

    # --- record ---------------------------------------------------------------------------------

    def save_record(self, record: RunRecord) -> None:
        self.store.put(self.key(record.run_id, "run.json"), record.to_json(), "application/json")

    def get(self, run_id: str) -> RunRecord:
        check_run_id(run_id)
        try:
            raw = self.store.get(self.key(run_id, "run.json"))
        except NotFound:
            raise NotFound(f"no analysis run {run_id}", reason=Reason.RUN_NOT_FOUND) from None
        return RunRecord.from_json(raw)

    def run_ids(self) -> list[str]:
        """Every run id, newest first."""
        ids: list[str] = []
        after = ""
        while True:
            page = self.store.list_children(PREFIX, start_after=after, limit=1000)
            ids.extend(p for p in page if RUN_ID_PATTERN.match(p))
            if len(page) < 1000:
                break
            after = page[-1]
        return sorted(ids, reverse=True)

    def records(self, kind: str = "", before: str = "") -> Iterator[RunRecord]:
        """Records newest first (optionally of one kind, and older than run id ``before``), read lazily so a
        caller that stops early reads only what it used; unreadable leftovers are skipped."""
        for run_id in self.run_ids():
            if before and run_id >= before:
                continue
            try:
                record = self.get(run_id)
            except (NotFound, ValueError, KeyError, TypeError):
                continue
            if not kind or record.kind == kind:
                yield record

    def list(self, page_size: int, page_token: str = "", kind: str = "") -> tuple[list[RunRecord], str]:
        """Newest first; the token's position is a cursor, the last run id of the previous page (run ids
        sort by time, so a run created while a client pages does not shift its pages)."""
        before = paging.decode_token(page_token, "runs", kind)
        if before is not None:
            try:
                check_run_id(before if isinstance(before, str) else "")
            except InvalidInput:
                raise InvalidInput(
                    "page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN
                ) from None
        out: list[RunRecord] = []
        for record in self.records(kind, before=before if isinstance(before, str) else ""):
            if len(out) == page_size:
                return out, paging.encode_token(out[-1].run_id, "runs", kind)
            out.append(record)
        return out, ""

    def latest(self, kind: str, model_id: str) -> RunRecord | None:
        """The newest succeeded run of ``kind`` for ``model_id``."""
        for record in self.records(kind):
            if record.state == SUCCEEDED and record.model_id == model_id:
                return record
        return None

    # --- data -----------------------------------------------------------------------------------

    def save_data(
        self,
        run_id: str,
        members: Members,
        *,
        centroids: np.ndarray | None = None,
        clusters: list[ClusterInfo] | None = None,
    ) -> None:
        self.store.put(self.key(run_id, "members.npz"), _npz_bytes(_member_arrays(members)))
        if centroids is not None:
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(centroids, dtype=np.float32))
            self.store.put(self.key(run_id, "centroids.npy"), buffer.getvalue())
        if clusters is not None:
            self.save_clusters(run_id, clusters)

    def save_clusters(self, run_id: str, clusters: list[ClusterInfo], generation: int | None = None) -> None:
        """Into the current generation, or ``generation`` (an edit writing its next one)."""
        body = json.dumps([asdict(c) for c in clusters], indent=1).encode()
        gen = self.generation(run_id) if generation is None else generation
        self.store.put(self.key(run_id, "clusters.json", gen), body, "application/json")

    def save_groups(self, run_id: str, groups: list[ClusterInfo], generation: int | None = None) -> None:
        body = json.dumps([asdict(c) for c in groups], indent=1).encode()
        gen = self.generation(run_id) if generation is None else generation
        self.store.put(self.key(run_id, "groups.json", gen), body, "application/json")

    def commit_generation(
        self,
        record: RunRecord,
        members: Members,
        centroids: np.ndarray,
        clusters: list[ClusterInfo],
        groups: list[ClusterInfo],
    ) -> None:
        """Writes a whole new generation of the data files, then the record pointing at it (the commit point:
        ``run.json``'s put is atomic, temp file + fsync + rename in the local store, one PUT on S3); then deletes
        the generation before the previous one. ``record`` is updated in place (``data_generation``)."""
        old = record.data_generation
        new = old + 1
        self.store.put(self.key(record.run_id, "members.npz", new), _npz_bytes(_member_arrays(members)))
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(centroids, dtype=np.float32))
        self.store.put(self.key(record.run_id, "centroids.npy", new), buffer.getvalue())
        self.save_clusters(record.run_id, clusters, new)
        if groups:
            self.save_groups(record.run_id, groups, new)
        record.data_generation = new
        self.save_record(record)
        if old >= 1:  # keep ``old`` for readers in flight; the one before it has no reader left
            for name in DATA_FILES:
                self.store.delete(self.key(record.run_id, name, old - 1))

    def groups(self, run_id: str) -> list[ClusterInfo]:
        """The run's top-level groups; empty for single-level runs (and runs written before groups existed)."""
        try:
            raw = self.store.get(self.data_key(run_id, "groups.json"))
        except NotFound:
            return []
        return [_cluster_info(c) for c in json.loads(raw)]

    def delete_data(self, run_id: str) -> None:
        current = self.generation(run_id)
        for generation in {0, max(0, current - 1), current}:
            for name in DATA_FILES:
                self.store.delete(self.key(run_id, name, generation))

    def members(self, run_id: str) -> Members:
        with np.load(io.BytesIO(self.store.get(self.data_key(run_id, "members.npz"))), allow_pickle=False) as data:
            return Members(**{name: data[name] for name in data.files})

    def centroids(self, run_id: str) -> np.ndarray:
        return np.load(io.BytesIO(self.store.get(self.data_key(run_id, "centroids.npy"))), allow_pickle=False)

    def clusters(self, run_id: str) -> list[ClusterInfo]:
        return [_cluster_info(c) for c in json.loads(self.store.get(self.data_key(run_id, "clusters.json")))]


def _member_arrays(members: Members) -> dict[str, np.ndarray]:
    arrays = {"sample_ids": members.sample_ids, "asset_ids": members.asset_ids}
    for name in ("labels", "coords", "cluster_ids", "similarity"):
        value = getattr(members, name)
        if value is not None:
            arrays[name] = value
    return arrays


def _cluster_info(data: dict[str, Any]) -> ClusterInfo:
    known = {f.name for f in fields(ClusterInfo)}
    return ClusterInfo(**{k: v for k, v in data.items() if k in known})  # newer writers may add fields
