"""Embedded vector index: the real Qdrant engine in-process (Qdrant Edge), one on-disk shard, HNSW, cosine.

This is the default backend: no server to run, yet the same engine, payload indexes and filter
semantics as a Qdrant server, so moving to ``ORDO_QDRANT_URL`` later changes speed, not results.

What we found about ``qdrant-edge-py`` 0.9.0 (beta) and how this adapter copes:

* **One opener per directory.** The shard's write-ahead log is locked with a non-blocking file lock;
  a second ``EdgeShard.load`` on the same path — from another process *or* this one — fails with
  ``failed to open WAL …: Can't init WAL: Kind(WouldBlock)``. We turn that into ``Unavailable`` with
  a message that says what to do. The lock goes with ``close()`` (or when the process dies).
* **The binding holds the GIL** for every call (query, update, even ``optimize()``), so calls from
  the gRPC server's threads are serialised anyway. One ``RLock`` guards the shard as well, because
  the binding does not promise thread safety and ``ensure_collection``/``close`` are check-then-act.
* **HNSW is built only by ``optimize()``** (no background optimiser): upserted points land in an
  appendable *plain* segment, searched exactly (correct at once; ≈1.5 ms for 20k × 512, linear in
  size). The engine's own optimise holds the GIL for its whole run (≈170 s per 100k × 512 on 2
  cores), so :meth:`EdgeVectorIndex.optimize` runs it in a child process on a dump of the shard and
  swaps the result in (``ordo.adapters.edge_rebuild``); only the child calls :meth:`optimize_here`.
  The binding's own seams (model classes, error messages) are ``ordo.adapters.edge_engine``'s.
  Segments below the indexing threshold (10 000 KB ≈ 5 000 × 512) get no graph. Once a graph exists,
  a filter admitting less than ``full_scan_threshold`` is answered exactly from the payload indexes;
  broader filters walk the graph and, like any HNSW, may miss an occasional far-away match.
* **Searches walk an int8 copy** (scalar quantization, kept in RAM, built with each segment's graph) and rescore
  the best ``2 x limit`` on the float vectors, on one search thread: since the binding holds the GIL through a
  search, its CPU is what every other thread of ``ordo up`` waits for, and this cut it from 0.64 to 0.22 ms at
  100k x 256 with the same recall (numbers in ``edge_engine``). Older shards get it at ``upgrade`` (at start).
* **A load brings little into RAM**: the float vectors and per-point payload indexes stay mapped
  (``edge_engine.VECTOR_MEMORY``, ``MAPPED_INDEXES``), as the binding holds the GIL through ``EdgeShard.load``
  of every rebuilt shard (0.27 s, was 0.80 s, at 100k x 512); older shards get it at their next rebuild.
* **Vectors come back normalised** (cosine stores unit vectors), ids as ``uuid.UUID`` (made ``str`` here); a wrong
  vector size raises a bare ``Exception`` (``Vector dimension error…``), so we check sizes first (``Conflict``).
* **The vector size** of a shard is read from the engine's ``edge_config.json`` (``vectors[""].size``), else a vector.
* **Durability.** Every update is appended to the engine's WAL first; we verified that points upserted without
  any ``flush()`` are all back after ``kill -9`` (WAL replay). We still ``flush()`` after every upsert batch,
  delete and index change: it fsyncs the segments, so an OS crash or power loss cannot drop acknowledged
  vectors, and WAL replay on start stays short. It costs ≈11 ms a call with the payload indexes (more on a busy
  disk; the upsert itself is ≈0.05 ms), noise next to embedding a batch of images.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from ordo.adapters.edge_engine import (
    MAPPED_INDEXES,
    MODELS,
    QUANTIZATION,
    SEARCH_THREADS,
    VECTOR_MEMORY,
    config_is_current,
    engine_errors,
    has_shard,
)
from ordo.adapters.edge_generations import clean_leftovers, live_dir
from ordo.adapters.edge_rebuild import rebuild
from ordo.adapters.qdrant_filters import (
    asset_filter,
    build_filter,
    check_point_ids,
    check_vector_size,
    ids_filter,
    payload_index_schemas,
    prepare_payload,
    record_to_point,
    records_to_points,
    search_params,
)
from ordo.domain import Filter, ScoredPoint, VectorPoint
from ordo.errors import Conflict, Reason, Unavailable
from ordo.ports.vector_index import IndexCapabilities

log = logging.getLogger(__name__)

# Points per engine update call: keeps one call (which holds the GIL) short for big upserts.
UPSERT_CHUNK = 512
# Qdrant's own defaults, spelled out because the Edge config wants every HNSW field.
HNSW_M = 16
HNSW_EF_CONSTRUCT = 128
DEFAULT_THRESHOLD_KB = 10_000
# The swap replays the rebuild's journal outside the index lock until at most this many writes are
# left (or after this many rounds), and only those under it.
JOURNAL_TAIL = 4
JOURNAL_CATCH_UP_ROUNDS = 8


class EdgeVectorIndex:
    """``VectorIndex`` on a Qdrant Edge shard in ``path`` (created on ``ensure_collection``).

    ``hnsw_ef`` is the search-time beam width (raised to ``limit + offset`` when that is larger, so
    deep pages stay accurate). ``indexing_threshold_kb`` and ``full_scan_threshold_kb`` only apply
    when the shard is created (they are stored with it): below the first a segment is not given an
    HNSW graph, below the second a search scans it exactly. Tests lower both to exercise HNSW on
    small data; production keeps Qdrant's defaults.

    Opening an existing shard takes its lock at construction, so a second process fails fast with
    ``Unavailable`` instead of at its first write.
    """

    backend = "qdrant-edge"
    # One process opens a shard; no background optimiser, so the caller builds the graph (optimize/maintain).
    capabilities = IndexCapabilities(single_writer=True, optimize=True)

    def __init__(
        self,
        path: Path,
        hnsw_ef: int = 128,
        *,
        indexing_threshold_kb: int = DEFAULT_THRESHOLD_KB,
        full_scan_threshold_kb: int = DEFAULT_THRESHOLD_KB,
        indexing_threads: int = 0,
    ) -> None:
        self.path = Path(path)  # the logical index; its shard lives in ``self._dir`` (see edge_rebuild)
        self._dir = live_dir(self.path)
        self.hnsw_ef = hnsw_ef
        self._indexing_threshold_kb = indexing_threshold_kb
        self._full_scan_threshold_kb = full_scan_threshold_kb
        self._indexing_threads = indexing_threads  # 0: the engine's choice; only the rebuild child sets it
        self._lock = threading.RLock()
        self._shard: qe.EdgeShard | None = None
        self._dim: int | None = None
        self._closed = False
        # Writes applied while an out-of-process rebuild runs, replayed into the new shard at the swap.
        self._journal: list[tuple[str, tuple[Any, ...]]] | None = None
        self._rebuilding = threading.Lock()
        self.last_rebuild: dict[str, Any] = {}  # timings of the last out-of-process rebuild
        if has_shard(self._dir):
            self._open_existing()

    # --- lifecycle ------------------------------------------------------------------------------

    def _open_existing(self) -> None:
        with engine_errors(self.path, "open"):
            shard = qe.EdgeShard.load(str(self._dir))
        clean_leftovers(self.path)  # we hold the shard's lock: nobody else is rebuilding it
        self._shard = shard
        self._dim = self._read_dim(shard)
        self._ensure_payload_indexes(shard)

    def _read_dim(self, shard: qe.EdgeShard) -> int | None:
        try:
            config = json.loads((self._dir / "edge_config.json").read_text())
            return int(config["vectors"][""]["size"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # the file is the engine's, not ours: fall back to looking at a stored vector
        records, _ = shard.scroll(qe.ScrollRequest(limit=1, with_vector=True, with_payload=False))
        return len(records[0].vector) if records and isinstance(records[0].vector, list) else None

    def _config(self, dim: int) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, memory=VECTOR_MEMORY),
            hnsw_config=qe.HnswIndexConfig(
                m=HNSW_M,
                ef_construct=HNSW_EF_CONSTRUCT,
                full_scan_threshold=self._full_scan_threshold_kb,
                max_indexing_threads=self._indexing_threads,
            ),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb),
            quantization_config=QUANTIZATION,  # new shards and every rebuilt one (see edge_engine)
            max_search_threads=SEARCH_THREADS,
        )

    def _ensure_payload_indexes(self, shard: qe.EdgeShard) -> None:
        """Create the ``PAYLOAD_INDEXES`` a shard lacks (all on create; new ones on older shards)."""
        existing = set(shard.info().payload_schema)
        missing = {k: v for k, v in payload_index_schemas(MODELS, MAPPED_INDEXES).items() if k not in existing}
        if not missing:
            return
        with engine_errors(self.path, "create payload indexes"):
            for name, schema in missing.items():
                shard.update(qe.UpdateOperation.create_field_index(name, schema))
            shard.flush()

    def ensure_collection(self, dim: int) -> None:
        with self._lock:
            self._check_open()
            if self._shard is None:
                self._dir = live_dir(self.path)
            if self._shard is None and has_shard(self._dir):
                self._open_existing()  # another instance created it since we were built
            if self._shard is None:
                self._dir.mkdir(parents=True, exist_ok=True)
                with engine_errors(self.path, "create"):
                    self._shard = qe.EdgeShard.create(str(self._dir), self._config(dim))
                self._dim = dim
                self._ensure_payload_indexes(self._shard)
                return
            if self._dim is None:
                self._dim = dim  # empty shard of unknown size: the engine still checks on upsert
            if self._dim != dim:
                raise Conflict(
                    f"vector index at {self.path} holds vectors of size {self._dim}, not {dim}; "
                    "use another collection (data dir) for another model",
                    reason=Reason.VECTOR_SIZE_MISMATCH,
                )

    @property
    def dim(self) -> int | None:
        return self._dim

    def close(self) -> None:
        """Flush and release the shard (and its directory lock). Safe to call twice."""
        with self._lock:
            shard, self._shard, self._closed = self._shard, None, True
            if shard is not None:
                with engine_errors(self.path, "close"):
                    shard.flush()
                    shard.close()

    def __enter__(self) -> EdgeVectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Edge-only maintenance ------------------------------------------------------------------

    @property
    def indexing_threshold_kb(self) -> int:
        return self._indexing_threshold_kb

    @property
    def full_scan_threshold_kb(self) -> int:
        return self._full_scan_threshold_kb

    def optimize(self) -> bool:
        """Build HNSW graphs for every point; True if a new shard was swapped in. The build runs in a
        child process (``ordo.adapters.edge_rebuild``), so this thread waits but the process keeps
        serving; the swap at the end holds the index lock for milliseconds (see :meth:`swap_to`). One
        rebuild at a time."""
        with self._lock:
            if self._shard_or_none() is None or not self._dim or not self.count():
                return False
        with self._rebuilding:
            self.last_rebuild = rebuild(self)
            return True

    def maintain(self) -> bool:
        """Start :meth:`optimize` on a background thread unless one runs; returns whether it started.
        What the embedding worker calls when a job ends: it goes on embedding meanwhile.

        Not while the vectors are below the indexing threshold: the engine builds no graph for them, so the
        rebuild would be a child process, a dump and a GIL-holding shard load for nothing (issue 18: ~0.3 s
        of CPU after every small job, taken from the next upload's embedding)."""
        if self._rebuilding.locked() or not self._worth_a_graph():
            return False

        def run() -> None:
            try:
                self.optimize()
            except Exception:  # the live shard is untouched; the next job's end tries again
                log.exception("background rebuild of %s failed", self.path)

        threading.Thread(target=run, name="ordo-index-rebuild", daemon=True).start()
        return True

    def upgrade(self) -> bool:
        """Start :meth:`maintain` when the live shard predates today's search settings (no int8 copy): ``ordo up``
        calls it at start, so an upgraded install gets cheaper searches without waiting for its next job."""
        return not config_is_current(self._dir) and self.maintain()

    def _worth_a_graph(self) -> bool:
        """Whether the stored vectors (float32) reach the indexing threshold, i.e. a rebuild builds a graph."""
        dim = self._dim or 0
        return self.count() * dim * 4 >= self._indexing_threshold_kb * 1024

    # --- the rebuild's hooks (ordo.adapters.edge_rebuild) ---------------------------------------
    def start_journal(self) -> None:
        with self._lock:
            self._journal = []

    def stop_journal(self) -> None:
        with self._lock:
            self._journal = None

    def _record(self, op: str, *args: Any) -> None:
        if self._journal is not None:
            self._journal.append((op, args))

    def swap_to(self, target: Path, commit: Callable[[], None]) -> dict[str, float]:
        """Open the shard built at ``target``, replay the journal into it, make it live (``commit``
        records that durably) and close the old one — holding the index lock (what searches and writes
        wait on) only for the last step.

        The load and the bulk of the replay run *outside* the lock: searches go on against the old
        shard meanwhile (the binding holds the GIL during ``load``, which is measured as ``load_s``:
        every thread of the process waits that long, once, but no lock is held). Writes keep arriving
        in the journal while we replay; we catch up in rounds until only a few are left, then, under
        the lock, apply those, flush (so what was acknowledged in the old shard is on disk in the new
        one before the pointer moves), point ``.live`` at the new shard and swap the reference.
        Returns the load time, the replay time, how many journal entries were replayed and the lock
        hold (``swap_hold_s``)."""
        start = time.perf_counter()
        with engine_errors(self.path, "open rebuilt shard"):
            new = qe.EdgeShard.load(str(target))
        loaded = time.perf_counter()
        applied = 0
        try:
            for _ in range(JOURNAL_CATCH_UP_ROUNDS):
                with self._lock:
                    pending = list((self._journal or [])[applied:])
                if len(pending) <= JOURNAL_TAIL:
                    break
                for op, args in pending:
                    self._apply(new, op, *args)
                applied += len(pending)
            with engine_errors(self.path, "flush rebuilt shard"):
                new.flush()
            replayed = time.perf_counter()
            with self._lock:
                self._check_open()  # closed while we loaded: the new shard is dropped (rebuilt next time)
                tail = list((self._journal or [])[applied:])
                for op, args in tail:
                    self._apply(new, op, *args)
                if tail:
                    with engine_errors(self.path, "flush rebuilt shard"):
                        new.flush()
                commit()
                old, self._shard, self._dir, self._journal = self._shard, new, target, None
                held = time.perf_counter() - replayed
        except BaseException:
            new.close()
            raise
        if old is not None:  # nobody can reach it any more: every engine call takes the lock
            with engine_errors(self.path, "close replaced shard"):
                old.close()
        closed = time.perf_counter()
        return {
            "load_s": round(loaded - start, 4),
            "replay_s": round(replayed - loaded, 4),
            "replayed_ops": applied + len(tail),
            "swap_hold_s": round(held, 4),
            "close_old_s": round(closed - replayed - held, 4),
        }

    def _apply(self, shard: qe.EdgeShard, op: str, *args: Any) -> None:
        if op == "upsert":
            shard.update(qe.UpdateOperation.upsert_points(args[0]))
        elif op == "delete":
            shard.update(qe.UpdateOperation.delete_points_by_filter(args[0]))
        elif op == "set_payload":
            shard.update(qe.UpdateOperation.set_payload_by_filter(args[0], args[1]))

    def optimize_here(self) -> bool:
        """The engine's own optimise, in this process: blocking and GIL-holding for its whole run (see
        the module notes). Only the rebuild child calls it."""
        with self._lock:
            shard = self._shard_or_none()
            if shard is None:
                return False
            with engine_errors(self.path, "optimize"):
                changed = shard.optimize()
                shard.flush()
            return bool(changed)

    @property
    def indexed_vectors_count(self) -> int:
        """Vectors already in an HNSW graph (the rest are scanned exactly)."""
        with self._lock:
            shard = self._shard_or_none()
            return shard.info().indexed_vectors_count if shard is not None else 0

    # --- VectorIndex ----------------------------------------------------------------------------

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        check_point_ids([p.id for p in points])
        with self._lock:
            shard = self._shard_or_none()
            if shard is None or self._dim is None:
                raise Conflict(
                    f"vector index at {self.path} has no collection yet; call ensure_collection first",
                    reason=Reason.NO_COLLECTION,
                )
            for p in points:
                check_vector_size(p.vector, self._dim)
            with engine_errors(self.path, "upsert"):
                for start in range(0, len(points), UPSERT_CHUNK):
                    chunk = points[start : start + UPSERT_CHUNK]
                    batch = [qe.Point(p.id, [float(x) for x in p.vector], prepare_payload(p.payload)) for p in chunk]
                    shard.update(qe.UpdateOperation.upsert_points(batch))
                    self._record("upsert", batch)
                shard.flush()

    def search(
        self, vector: Sequence[float], limit: int, offset: int = 0, filter: Filter | None = None
    ) -> list[ScoredPoint]:
        if limit <= 0:
            return []
        with self._lock:
            shard = self._shard_or_none()
            if shard is None or self._dim is None:
                return []
            check_vector_size(vector, self._dim)
            condition = build_filter(filter, MODELS)
            request = qe.QueryRequest(
                limit=limit,
                offset=offset,
                query=qe.Query.Nearest(vector if type(vector) is list else [float(x) for x in vector]),
                filter=condition,
                with_payload=True,
                with_vector=False,
                params=search_params(MODELS, self.hnsw_ef, limit, offset, filtered=condition is not None),
            )
            with engine_errors(self.path, "search"):
                hits = shard.query(request)
        return [ScoredPoint(id=str(h.id), score=float(h.score), payload=dict(h.payload or {})) for h in hits]

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[VectorPoint]:
        if not ids:
            return []
        check_point_ids(ids)
        with self._lock:
            shard = self._shard_or_none()
            if shard is None:
                return []
            with engine_errors(self.path, "retrieve"):
                records = shard.retrieve(list(ids), True, with_vectors)
        return records_to_points(ids, records, with_vectors)

    def delete_by_asset(self, asset_id: str) -> None:
        with self._lock:
            shard = self._shard_or_none()
            if shard is None:
                return
            with engine_errors(self.path, "delete"):
                selector = asset_filter(asset_id, MODELS)
                shard.update(qe.UpdateOperation.delete_points_by_filter(selector))
                self._record("delete", selector)
                shard.flush()

    def count(self, filter: Filter | None = None) -> int:
        with self._lock:
            shard = self._shard_or_none()
            if shard is None:
                return 0
            with engine_errors(self.path, "count"):
                return int(shard.count(qe.CountRequest(exact=True, filter=build_filter(filter, MODELS))))

    def scroll(
        self, filter: Filter | None = None, *, with_vectors: bool = True, batch_size: int = 1024
    ) -> Iterator[VectorPoint]:
        """Pages through the shard by id; the lock is held per page only, never across a ``yield``."""
        condition = build_filter(filter, MODELS)
        offset: Any = None
        while True:
            with self._lock:
                shard = self._shard_or_none()
                if shard is None:
                    return
                request = qe.ScrollRequest(
                    offset=offset, limit=batch_size, filter=condition, with_payload=True, with_vector=with_vectors
                )
                with engine_errors(self.path, "scroll"):
                    records, offset = shard.scroll(request)
            for r in records:
                yield record_to_point(r, with_vectors)
            if offset is None or not records:
                return

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merges keys into stored payloads; not flushed here (unlike upserts).

        Why: what callers write this way is derived data (an analysis run's cluster ids, which the run can
        write again), the WAL already brings it back after a killed process, and an fsync per call cost
        ≈0.2-0.35 s on 20k × 512-d points, so labelling 50 clusters took 18 s instead of under 2. The next
        upsert, delete, optimize or close flushes it with everything else.
        """
        if not ids:
            return
        check_point_ids(ids)
        with self._lock:
            shard = self._shard_or_none()
            if shard is None:
                return
            with engine_errors(self.path, "set payload"):
                for start in range(0, len(ids), UPSERT_CHUNK * 8):
                    selector = ids_filter(ids[start : start + UPSERT_CHUNK * 8], MODELS)
                    values = prepare_payload(payload)
                    shard.update(qe.UpdateOperation.set_payload_by_filter(selector, values))
                    self._record("set_payload", selector, values)

    # --- helpers --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable(f"embedded vector index at {self.path} is closed")

    def _shard_or_none(self) -> qe.EdgeShard | None:
        self._check_open()
        return self._shard
