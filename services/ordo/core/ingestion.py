"""Ingestion: bytes in → a stored, deduplicated asset and a queued embedding.

The per-file step is deliberately cheap (hash, header probe, one object write): full decoding and
the model run on the embedding workers, so an upload is never blocked on the GPU and a burst of
uploads turns into well-filled batches. Every file ends up in exactly one of three outcomes — new,
duplicate, failed with a reason — and a bad file never stops the rest of its batch.
"""

from __future__ import annotations

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


#: Locks striped by asset id: uploads of the same bytes serialise their check-store-queue, others don't.
_ASSET_LOCK_STRIPES = 256


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

    def _asset_lock(self, asset_id: str) -> threading.Lock:
        return self._asset_locks[int(asset_id[:8], 16) % _ASSET_LOCK_STRIPES]

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

    # --- one file --------------------------------------------------------------------------------
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
        source_uri = source_uri or f"upload://{file_name}"
        self.jobs.add_inputs(job_id, 1)
        try:
            result = self._ingest(job_id, data, file_name, source_uri, metadata or {}, library)
        except (InvalidInput, TooLarge) as exc:
            result = self._failed(file_name, source_uri, exc)
        except OrdoError as exc:  # a dependency is down: account for this file, then report the outage
            self._record(job_id, self._failed(file_name, source_uri, exc))
            raise
        self._record(job_id, result)
        return result

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
        self._record(job_id, result)
        return result

    def _ingest(
        self, job_id: str, data: bytes, file_name: str, source_uri: str, metadata: dict[str, str], library: str
    ) -> FileResult:
        info = probe(data, self.limits)
        asset_id = asset_id_for(data, library)
        batcher = self._batcher(job_id)
        with self._lock:
            seen_in_job = asset_id in batcher.seen
            batcher.seen.add(asset_id)
        if seen_in_job:
            return FileResult(file_name, source_uri, Outcome.DUPLICATE, asset_id)
        # Check, store and queue atomically per asset: of concurrent uploads of the same bytes exactly one
        # is NEW and queues one embedding; the others wait here and then find the record.
        with self._asset_lock(asset_id):
            existing = self.catalog.find(asset_id)
            if existing is not None and existing.state is AssetState.READY:
                return FileResult(file_name, source_uri, Outcome.DUPLICATE, asset_id)
            if existing is not None and existing.state is AssetState.PENDING:
                with self._lock:
                    on_its_way = bytes.fromhex(asset_id)[:16] in self._queued
                if on_its_way:
                    return FileResult(file_name, source_uri, Outcome.DUPLICATE, asset_id)
                # Stored, never embedded, and its task is gone (a crash): queue it again, as new work.
                self._enqueue(batcher, SampleRef(asset_id, existing.original_key, SampleKind.IMAGE))
                return FileResult(file_name, source_uri, Outcome.NEW, asset_id)
            return self._store_new(batcher, data, info, asset_id, file_name, source_uri, metadata, library)

    def _store_new(
        self,
        batcher: _JobBatcher,
        data: bytes,
        info: ImageInfo,
        asset_id: str,
        file_name: str,
        source_uri: str,
        metadata: dict[str, str],
        library: str,
    ) -> FileResult:
        """Original (with the record's date-order markers) first, then the PENDING record, then the task: a
        crash between any two leaves either nothing acknowledged or a PENDING record that the start-up
        reconciler queues again."""
        key = original_key(asset_id)
        asset = Asset(
            asset_id=asset_id,
            source_uri=source_uri,
            file_name=file_name,
            mime_type=info.mime_type,
            size_bytes=len(data),
            width=info.width,
            height=info.height,
            captured_at=info.captured_at,
            ingested_at=datetime.now(UTC),
            original_key=key,
            thumbnail_key=thumbnail_key(asset_id),
            metadata=dict(metadata),
            model_id=self.model_id,
            library=library,
        )
        self.catalog.put_new(asset, data, on_stored=lambda: checkpoint("upload"))
        self._enqueue(batcher, SampleRef(asset_id, key, SampleKind.IMAGE))
        return FileResult(file_name, source_uri, Outcome.NEW, asset_id)

    def _record(self, job_id: str, result: FileResult) -> None:
        self.jobs.record(
            job_id,
            pending=int(result.outcome is Outcome.NEW),
            duplicates=int(result.outcome is Outcome.DUPLICATE),
            failed=int(result.outcome is Outcome.FAILED),
            failures=[result.failure] if result.failure else (),
            asset_ids=[result.asset_id] if result.asset_id else (),
        )

    # --- batching --------------------------------------------------------------------------------
    def _batcher(self, job_id: str) -> _JobBatcher:
        with self._lock:
            return self._batchers.setdefault(job_id, _JobBatcher(job_id, self.task_batch_size))

    def _enqueue(self, batcher: _JobBatcher, ref: SampleRef) -> None:
        with self._lock:
            self._queued.add(bytes.fromhex(ref.asset_id)[:16])
            batcher.pending.append(ref)
            # The job's first task is small, so a worker starts embedding while the rest still uploads.
            size = batcher.size if batcher.seq else max(1, batcher.size // 4)
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
                self.ingest_bytes(job_id, data, file_name=name, source_uri=source_uri, library=library)
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
