"""Ingestion: bytes in → a stored, deduplicated asset and a queued embedding.

The per-file step is deliberately cheap (hash, header probe, one object write): full decoding and
the model run on the embedding workers, so an upload is never blocked on the GPU and a burst of
uploads turns into well-filled batches. Every file ends up in exactly one of three outcomes — new,
duplicate, failed with a reason — and a bad file never stops the rest of its batch.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from ordo.chaos import checkpoint
from ordo.core import local_files
from ordo.core.catalog import AssetCatalog, original_key, thumbnail_key
from ordo.core.object_reads import read_object_bounded
from ordo.domain import Asset, AssetState, EmbedTask, FileFailure, Job, ProcessingOptions, SampleKind, SampleRef
from ordo.errors import InvalidInput, OrdoError, TooLarge
from ordo.ids import asset_id_for, batch_id_for
from ordo.imaging import ImageInfo, ImageLimits, probe
from ordo.ports.job_store import JobStore
from ordo.ports.object_store import ObjectStore
from ordo.ports.task_queue import TaskQueue

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    file_name: str
    source_uri: str
    outcome: Outcome
    asset_id: str = ""
    failure: FileFailure | None = None


@dataclass
class _JobBatcher:
    """Collects one job's new samples into queue tasks of ``size``; remembers what the job has seen,
    so a second copy of the same bytes within one job counts as a duplicate, not a second embedding."""

    job_id: str
    size: int
    pending: list[SampleRef] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    seq: int = 0
    processing: ProcessingOptions = field(default_factory=ProcessingOptions)  # travels with each task


@dataclass(frozen=True)
class IncomingFile:
    """One file's bytes and what its sender says of it, for :meth:`IngestCore.ingest_many`."""

    data: bytes
    file_name: str
    source_uri: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    library: str = "default"

    @property
    def uri(self) -> str:
        return self.source_uri or f"upload://{self.file_name}"


#: How many files, or bytes, a caller holds before storing them as one durable group
#: (:meth:`IngestCore.ingest_many`): eight files cut the commits per file by eight, and the byte bound caps the
#: memory a stream holds (``FileGroup.add``: at most 16 MiB, or one file when a file is larger).
GROUP_FILES: Final = 8
GROUP_BYTES: Final = 16 * 2**20


class FileGroup:
    """Whole files held until ``GROUP_FILES`` or ``GROUP_BYTES`` of them are at hand, then stored together by
    ``store`` (an :meth:`IngestCore.ingest_many`); ``flush`` stores what is held. ``add`` and ``flush`` return
    the results of the files they stored, in the order the files were added."""

    def __init__(self, store: Callable[[list[IncomingFile]], list[FileResult]]) -> None:
        self._store = store
        self._held: list[IncomingFile] = []
        self._bytes = 0

    def add(self, incoming: IncomingFile) -> list[FileResult]:
        """Holds the file; returns the results of the groups it completed ([] while the group fills). The
        bytes held never exceed ``GROUP_BYTES`` or one file, whichever is larger: a file that would take the
        group past it first sends the group on."""
        done = self.flush() if self._held and self._bytes + len(incoming.data) > GROUP_BYTES else []
        self._held.append(incoming)
        self._bytes += len(incoming.data)
        if len(self._held) >= GROUP_FILES or self._bytes >= GROUP_BYTES:
            done += self.flush()
        return done

    def flush(self) -> list[FileResult]:
        """Stores the held files (they are let go first, so a store that raises is not tried twice)."""
        held, self._held, self._bytes = self._held, [], 0
        return self._store(held) if held else []

    def __len__(self) -> int:
        return len(self._held)


#: Locks striped by asset id: uploads of the same bytes serialise their check-store-queue, others don't. A
#: group of eight files holds eight stripes while it is stored, so there are enough that concurrent groups of
#: different files rarely share one (two groups: ~6 %).
_ASSET_LOCK_STRIPES = 1024


class IngestCore:
    """Turns files into assets and embedding tasks; used by both the upload and the URI paths."""

    def __init__(
        self,
        *,
        catalog: AssetCatalog,
        jobs: JobStore,
        queue: TaskQueue,
        limits: ImageLimits,
        collection: str,
        model_id: str,
        task_batch_size: int = 32,
        bucket_store: Callable[[str], ObjectStore] | None = None,
    ) -> None:
        self.catalog = catalog
        self.jobs = jobs
        self.queue = queue
        self.limits = limits
        self.collection = collection
        self.model_id = model_id
        self.task_batch_size = task_batch_size
        self._bucket_store = bucket_store
        self._batchers: dict[str, _JobBatcher] = {}
        self._lock = threading.Lock()
        self._asset_locks = [threading.Lock() for _ in range(_ASSET_LOCK_STRIPES)]
        # Assets whose embedding this process has queued (16-byte id prefixes, ~70 B each): a PENDING
        # asset in here is on its way (a re-upload is a DUPLICATE); one not in here lost its task to a
        # crash or a wiped broker, and a re-upload queues it again.
        self._queued: set[bytes] = set()

    def mark_queued(self, asset_ids: Sequence[str]) -> None:
        """Record assets queued by someone else in this process (the start-up reconciler)."""
        with self._lock:
            self._queued.update(bytes.fromhex(a)[:16] for a in asset_ids)

    @staticmethod
    def _stripe(asset_id: str) -> int:
        return int(asset_id[:8], 16) % _ASSET_LOCK_STRIPES

    # --- jobs ------------------------------------------------------------------------------------
    def start_job(self, request_id: str = "", processing: ProcessingOptions | None = None) -> Job:
        """A new ingest job; a repeated ``request_id`` returns the job it created before. ``processing``
        asks for object crops / OCR text on this job's images (unset: the workers' defaults)."""
        job = self.jobs.create("ingest", job_id=job_id_for_request(request_id) if request_id else None)
        with self._lock:
            batcher = self._batchers.setdefault(job.job_id, _JobBatcher(job.job_id, self.task_batch_size))
            batcher.processing = processing or ProcessingOptions()
        return job

    def finish_enumeration(self, job_id: str) -> Job:
        """No more inputs: flush the last partial batch and let the job complete when workers finish.
        If the queue cannot take that batch, the job is ended as FAILED with the reason (it could never
        complete otherwise) and the error goes on to the caller."""
        try:
            self._flush(job_id)
        except OrdoError as exc:
            self.jobs.fail(job_id, f"{exc.reason}: {exc.message}")
            raise
        finally:
            with self._lock:
                self._batchers.pop(job_id, None)
        return self.jobs.add_inputs(job_id, 0, enumeration_done=True)

    # --- files ----------------------------------------------------------------------------------
    def ingest_bytes(
        self,
        job_id: str,
        data: bytes,
        *,
        file_name: str,
        source_uri: str = "",
        metadata: dict[str, str] | None = None,
        library: str = "default",
    ) -> FileResult:
        """Store one file and queue its embedding. Never raises for bad input: it becomes a FAILED result."""
        return self.ingest_many(job_id, [IncomingFile(data, file_name, source_uri, metadata or {}, library)])[0]

    def ingest_many(self, job_id: str, files: Sequence[IncomingFile]) -> list[FileResult]:
        """Store several files and queue their embeddings, one result each, in order; bad input becomes a
        FAILED result, never an exception. The new files' originals (with their date-order markers) are made
        durable as one group, then their PENDING records as another: four journal commits for the group
        where each file took four (issue 18: an upload stream waited ~12 ms per file on commits, and the
        model idled behind it). Callers group what they have at hand (``GROUP_FILES``, ``GROUP_BYTES``)."""
        if not files:
            return []
        self.jobs.add_inputs(job_id, len(files))
        results: list[FileResult | None] = [None] * len(files)
        checked: list[tuple[int, ImageInfo, str]] = []
        for i, incoming in enumerate(files):
            try:
                checked.append((i, probe(incoming.data, self.limits), asset_id_for(incoming.data, incoming.library)))
            except (InvalidInput, TooLarge) as exc:
                results[i] = self._failed(incoming.file_name, incoming.uri, exc)
        try:
            self._store_group(job_id, files, checked, results)
        except OrdoError as exc:
            for i, incoming in enumerate(files):
                if results[i] is None:
                    results[i] = self._failed(incoming.file_name, incoming.uri, exc)
            if not isinstance(exc, InvalidInput | TooLarge):  # a dependency is down: account, then report it
                self._record(job_id, [r for r in results if r is not None])
                raise
        done = [r for r in results if r is not None]
        self._record(job_id, done)
        return done

    @staticmethod
    def _failed(file_name: str, source_uri: str, exc: OrdoError) -> FileResult:
        failure = FileFailure(source_uri, exc.reason, exc.message)
        return FileResult(file_name, source_uri, Outcome.FAILED, failure=failure)

    def fail_input(self, job_id: str, source_uri: str, reason: str, message: str) -> FileResult:
        """Account for an input that never produced bytes (unreadable path, oversized upload...)."""
        self.jobs.add_inputs(job_id, 1)
        result = FileResult(
            Path(source_uri).name,
            source_uri,
            Outcome.FAILED,
            failure=FileFailure(source_uri, reason, message),
        )
        self._record(job_id, [result])
        return result

    def _store_group(
        self,
        job_id: str,
        files: Sequence[IncomingFile],
        checked: Sequence[tuple[int, ImageInfo, str]],
        results: list[FileResult | None],
    ) -> None:
        """Check, store and queue atomically per asset: of concurrent uploads of the same bytes exactly one is
        NEW and queues one embedding; the others wait on the asset's lock and then find the record. A group
        holds its assets' lock stripes in ascending order, so two groups never wait on each other in a
        circle. Results are set only once the group is stored and queued."""
        batcher = self._batcher(job_id)
        with contextlib.ExitStack() as held:
            for stripe in sorted({self._stripe(asset_id) for _, _, asset_id in checked}):
                held.enter_context(self._asset_locks[stripe])
            decided: list[tuple[int, FileResult, SampleRef | None]] = []
            new: list[tuple[Asset, bytes]] = []
            for i, info, asset_id in checked:
                incoming = files[i]
                outcome, ref = self._existing(batcher, asset_id)
                if outcome is None:  # never stored: a new asset
                    asset = self._new_asset(incoming, info, asset_id)
                    new.append((asset, incoming.data))
                    outcome, ref = Outcome.NEW, SampleRef(asset_id, asset.original_key, SampleKind.IMAGE)
                decided.append((i, FileResult(incoming.file_name, incoming.uri, outcome, asset_id), ref))
            if new:
                # Originals (with the records' date-order markers) first, then the PENDING records, then the
                # tasks: a crash between any two leaves either nothing acknowledged or PENDING records that
                # the start-up reconciler queues again.
                self.catalog.put_new_many(new, on_stored=lambda: checkpoint("upload"))
            for i, result, ref in decided:
                if ref is not None:
                    self._enqueue(batcher, ref)
                results[i] = result

    def _existing(self, batcher: _JobBatcher, asset_id: str) -> tuple[Outcome | None, SampleRef | None]:
        """What an asset already known means for this file: a DUPLICATE, NEW again (stored, never embedded,
        its task lost to a crash: queued again) or ``(None, None)``: to be stored as new (never stored, or
        FAILED before). The caller holds the asset's lock."""
        with self._lock:
            seen_in_job = asset_id in batcher.seen
            batcher.seen.add(asset_id)
        if seen_in_job:
            return Outcome.DUPLICATE, None
        existing = self.catalog.find(asset_id)
        if existing is None or existing.state not in (AssetState.READY, AssetState.PENDING):
            return None, None  # never stored, or failed before: stored (again) as new
        if existing.state is AssetState.PENDING:
            with self._lock:
                on_its_way = bytes.fromhex(asset_id)[:16] in self._queued
            if not on_its_way:
                return Outcome.NEW, SampleRef(asset_id, existing.original_key, SampleKind.IMAGE)
        return Outcome.DUPLICATE, None

    def _new_asset(self, incoming: IncomingFile, info: ImageInfo, asset_id: str) -> Asset:
        return Asset(
            asset_id=asset_id,
            source_uri=incoming.uri,
            file_name=incoming.file_name,
            mime_type=info.mime_type,
            size_bytes=len(incoming.data),
            width=info.width,
            height=info.height,
            captured_at=info.captured_at,
            ingested_at=datetime.now(UTC),
            original_key=original_key(asset_id),
            thumbnail_key=thumbnail_key(asset_id),
            metadata=dict(incoming.metadata),
            model_id=self.model_id,
            library=incoming.library,
        )

    def _record(self, job_id: str, results: Sequence[FileResult]) -> None:
        """The files' outcomes in the job, one update for the lot."""
        self.jobs.record(
            job_id,
            pending=sum(r.outcome is Outcome.NEW for r in results),
            duplicates=sum(r.outcome is Outcome.DUPLICATE for r in results),
            failed=sum(r.outcome is Outcome.FAILED for r in results),
            failures=[r.failure for r in results if r.failure],
            asset_ids=[r.asset_id for r in results if r.asset_id],
        )

    # --- batching --------------------------------------------------------------------------------
    def _batcher(self, job_id: str) -> _JobBatcher:
        with self._lock:
            return self._batchers.setdefault(job_id, _JobBatcher(job_id, self.task_batch_size))

    def _enqueue(self, batcher: _JobBatcher, ref: SampleRef) -> None:
        with self._lock:
            self._queued.add(bytes.fromhex(ref.asset_id)[:16])
            batcher.pending.append(ref)
            # The job's first tasks are small (a quarter, then half the size), so a worker starts embedding
            # while the rest still uploads and does not wait for a whole task's upload after the first.
            size = max(1, batcher.size >> max(0, 2 - batcher.seq))
            full = len(batcher.pending) >= size
        if full:
            self._flush(batcher.job_id)

    def _flush(self, job_id: str) -> None:
        with self._lock:
            batcher = self._batchers.get(job_id)
            if batcher is None or not batcher.pending:
                return
            refs, batcher.pending = batcher.pending, []
            batcher.seq += 1
            task = EmbedTask(
                batch_id_for(job_id, batcher.seq),
                job_id,
                tuple(refs),
                self.collection,
                self.model_id,
                batcher.processing,
            )
        checkpoint("queue")
        try:
            self.queue.submit(task)
        except OrdoError:  # not queued after all: a re-upload (or the next start) must queue these again
            with self._lock:
                self._queued.difference_update(bytes.fromhex(r.asset_id)[:16] for r in refs)
            raise

    # --- server-side inputs ----------------------------------------------------------------------
    def run_uri_job(
        self,
        job_id: str,
        uris: Sequence[str],
        recursive: bool = True,
        library: str = "default",
        path_guard: Callable[[Path], Path] | None = None,
    ) -> None:
        """Ingest local paths and s3:// URIs (runs in a background thread of the ingest service).
        ``path_guard`` (ordo.security.paths) vets every local file before it is read."""
        group = FileGroup(lambda files: self.ingest_many(job_id, files))
        try:
            for source_uri, name, read in self._enumerate(job_id, uris, recursive, path_guard):
                try:
                    data = read()
                except OrdoError as exc:
                    self.fail_input(job_id, source_uri, exc.reason, exc.message)
                    continue
                except OSError as exc:
                    self.fail_input(
                        job_id, source_uri, "UNREADABLE", f"cannot read {source_uri}: {exc.strerror or exc}"
                    )
                    continue
                group.add(IncomingFile(data, name, source_uri, library=library))
            group.flush()
            self.finish_enumeration(job_id)
        except Exception as exc:  # the job must end, whatever broke; workers finish what was queued
            log.exception("ingest job %s failed", job_id)
            self.jobs.fail(job_id, f"{type(exc).__name__}: {exc}")

    def _enumerate(
        self, job_id: str, uris: Sequence[str], recursive: bool, guard: Callable[[Path], Path] | None = None
    ) -> Iterator[tuple[str, str, Callable[[], bytes]]]:
        for uri in uris:
            if uri.startswith("s3://"):
                yield from self._enumerate_s3(job_id, uri)
            else:
                yield from self._enumerate_local(job_id, uri, recursive, guard)

    def _enumerate_local(
        self, job_id: str, uri: str, recursive: bool, guard: Callable[[Path], Path] | None = None
    ) -> Iterator[tuple[str, str, Callable[[], bytes]]]:
        """Every entry under the path: images to read (bounded), the rest counted with a reason."""
        path = Path(uri.removeprefix("file://")).expanduser()
        if not path.exists() and not path.is_symlink():
            self.fail_input(job_id, uri, "NOT_FOUND", f"{path} does not exist")
            return
        for entry in local_files.walk(path, recursive):
            if isinstance(entry, local_files.Skipped):
                # Named as found: resolving would name /dev/zero instead of the link the user has.
                self.fail_input(job_id, Path(os.path.abspath(entry.path)).as_uri(), entry.reason, entry.message)
                continue
            readable = entry
            if guard is not None:
                try:
                    readable = guard(entry)  # resolved, inside the ingest roots, a regular file
                except OrdoError as exc:
                    self.fail_input(job_id, Path(os.path.abspath(entry)).as_uri(), exc.reason, exc.message)
                    continue
            yield (
                _file_uri(entry),
                entry.name,
                functools.partial(local_files.read_bounded, readable, self.limits.max_bytes),
            )

    def _enumerate_s3(self, job_id: str, uri: str) -> Iterator[tuple[str, str, Callable[[], bytes]]]:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if self._bucket_store is None:
            self.fail_input(job_id, uri, "S3_NOT_CONFIGURED", "s3:// inputs need ORDO_S3_ENDPOINT and credentials")
            return
        store = self._bucket_store(bucket)
        for info in store.list(prefix):
            if info.key.endswith("/"):
                continue
            name = info.key.rsplit("/", 1)[-1]
            if info.size > self.limits.max_bytes:
                self.fail_input(
                    job_id,
                    f"s3://{bucket}/{info.key}",
                    "FILE_TOO_LARGE",
                    f"{info.size} bytes is over the limit of {self.limits.max_bytes}",
                )
                continue
            yield (
                f"s3://{bucket}/{info.key}",
                name,
                functools.partial(read_object_bounded, store, info.key, self.limits.max_bytes),
            )


def job_id_for_request(request_id: str) -> str:
    """The id of the ingest job a ``request_id`` creates: a client that lost the answer (a broken stream)
    can still find its job and the outcomes of the files that arrived."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"ordo-ingest/{request_id}").hex


def walk_images(root: Path, recursive: bool) -> Iterator[Path]:
    """Image files under ``root`` (by content) in a stable order; see :func:`local_files.walk` for the
    entries this leaves out and why."""
    for entry in local_files.walk(root, recursive):
        if not isinstance(entry, local_files.Skipped):
            yield entry


def _file_uri(path: Path) -> str:
    """The source URI of a local file: resolved where it can be; a dangling or looping link keeps the
    absolute name it was found under (it has nothing else)."""
    try:
        return path.resolve(strict=True).as_uri()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path)).as_uri()
