"""The embedding worker's work, as plain code: fetch → decode → embed → write, each stage timed.

Shaped like clip-retrieval's runner: reader (decoder threads; Pillow releases the GIL), mapper (the
model, chunk by chunk), writer (one thread: index upsert, thumbnails, records), each stage timed. The
three overlap, so the model — the expensive part — is rarely left waiting. A file that cannot be
decoded fails alone, with its reason; the rest of the task goes on. Point ids are deterministic, so a
redelivered task overwrites its own points.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ordo.chaos import checkpoint
from ordo.core.catalog import AssetCatalog, thumbnail_key
from ordo.core.payload import build_payload
from ordo.domain import Asset, AssetState, EmbedTask, FileFailure, Sample, SampleRef, VectorPoint
from ordo.embedding.base import Embedder
from ordo.errors import InvalidInput, NotFound, TooLarge
from ordo.ids import sample_id_for
from ordo.imaging import ImageLimits, decode, thumbnail_jpeg
from ordo.ports.job_store import JobStore
from ordo.ports.object_store import ObjectStore
from ordo.ports.vector_index import VectorIndex, optimizable

if TYPE_CHECKING:
    from ordo.processing.stage import ImageProcessor

log = logging.getLogger(__name__)


@dataclass
class StageClock:
    """Seconds and items per stage for one task; reported to the job and the worker's log."""

    seconds: dict[str, float] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def stage(self, name: str, items: int = 1) -> Iterator[None]:
        """Times the block; safe from the decoder threads (their times add up, like CPU time)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
                self.items[name] = self.items.get(name, 0) + items


@dataclass
class _Decoded:
    ref: SampleRef
    asset: Asset
    image: Image.Image
    thumbnail: bytes
    # The model's input, made on the decoder thread (see Embedder.prepare_image); None if unsupported.
    prepared: Any = None


@dataclass(frozen=True)
class BatchResult:
    succeeded: int
    failures: tuple[FileFailure, ...]
    clock: StageClock


class EmbeddingPipeline:
    def __init__(
        self,
        *,
        store: ObjectStore,
        index: VectorIndex,
        jobs: JobStore,
        embedder: Embedder,
        limits: ImageLimits,
        decode_threads: int = 2,
        thumbnail_size: int = 256,
        decode_side: int = 256,
        processor: ImageProcessor | None = None,
    ) -> None:
        self.store = store
        self.catalog = AssetCatalog(store)
        self.index = index
        self.jobs = jobs
        self.embedder = embedder
        self.limits = limits
        self.thumbnail_size = thumbnail_size
        # Decode JPEGs at reduced scale, but never below what the model or the thumbnail needs.
        self.decode_side = decode_side
        self._pool = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="ordo-decode")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ordo-write")
        # Called with each batch of points once they are in the index (the AppContext installs the analysis
        # service's incremental cluster assignment here); its failure is logged, never fails the batch.
        self.on_written: Callable[[list[VectorPoint]], object] | None = None
        # Optional stage (``ordo.processing``): object crops and OCR lines as extra samples, per task.
        self.processor = processor

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._writer.shutdown(wait=True)

    def run(self, task: EmbedTask) -> BatchResult:
        """Embed one task's samples and account for each in its job. Transient faults (store or index
        unavailable) propagate so the queue retries the whole task; ids make the retry idempotent."""
        clock = StageClock()
        failures: list[FileFailure] = []
        futures = [self._pool.submit(self._load, ref, clock) for ref in task.samples]
        writes: list[Future[None]] = []
        succeeded = 0
        processed: list[tuple[SampleRef, Asset]] = []
        embedded: list[_Decoded] = []
        vectors_done: list[np.ndarray] = []
        # Chunk by chunk: while the model runs on one chunk, the decoder threads work through the next
        # and the writer thread stores the previous chunk's thumbnails, so the model is rarely left waiting.
        # The vectors go into the index once per task (below), not once per chunk: every index write ends
        # in a flush (fsync of the segments) during which the embedded engine holds the GIL (60-150 ms
        # here), stalling the decoders and the model's Python; per 8-image chunk that was the largest
        # cost the bare loop does not pay (issue 18).
        chunk = max(self.embedder.batch_size, 1)
        for first in range(0, len(futures), chunk):
            ready: list[_Decoded] = []
            for ref, future in zip(task.samples[first : first + chunk], futures[first : first + chunk], strict=True):
                try:
                    ready.append(future.result())
                except (InvalidInput, TooLarge, NotFound) as exc:
                    # A task carries no client text: the record says where the file came from (gone if the
                    # asset was deleted while its task waited; then its id stands in).
                    source = self._mark_failed(ref, exc.reason, exc.message)
                    failures.append(FileFailure(source, exc.reason, exc.message))
            if ready:
                checkpoint("embed")
                with clock.stage("embed", len(ready)):
                    if all(d.prepared is not None for d in ready):
                        vectors = self.embedder.embed_prepared([d.prepared for d in ready])
                    else:
                        vectors = self.embedder.embed_images([d.image for d in ready])
                writes.append(self._writer.submit(self._store_thumbnails, ready, clock))
                embedded.extend(ready)
                vectors_done.append(vectors)
                succeeded += len(ready)
                processed.extend((d.ref, d.asset) for d in ready)
        if embedded:  # after the thumbnails (one writer thread, in order): vectors, then READY records
            writes.append(self._writer.submit(self._write, embedded, np.concatenate(vectors_done), clock))
        for write in writes:
            write.result()  # a store or index fault surfaces here, and the task is retried whole
        if self.processor is not None and processed:
            self.processor.process(task.processing, processed, clock)  # before the job can complete
        # Timings first: once the counters are recorded the job may be complete, and a watcher that
        # sees it complete should see its timings too.
        for stage, seconds in clock.seconds.items():
            self.jobs.add_stage_time(task.job_id, stage, seconds, clock.items[stage])
        job = self.jobs.record(
            task.job_id,
            succeeded=succeeded,
            failed=len(failures),
            pending=-len(task.samples),
            failures=failures,
            once_key=task.batch_id,
        )
        if job.state.is_final:
            self._maintain_index()
        log.info(
            "batch %s: %d embedded, %d failed; %s",
            task.batch_id,
            succeeded,
            len(failures),
            ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in clock.seconds.items()),
        )
        return BatchResult(succeeded, tuple(failures), clock)

    def _maintain_index(self) -> None:
        """Build the HNSW graph for new points once a job is done. The embedded engine (Qdrant Edge)
        has no background optimiser: new points are searched exactly (correct, slower) until this
        runs. It rebuilds in a child process on a background thread (``maintain``), so neither serving
        nor this worker waits for it."""
        optimizing = optimizable(self.index)
        if optimizing is not None:
            optimizing.maintain()

    def _store_thumbnails(self, items: list[_Decoded], clock: StageClock) -> None:
        """Thumbnails of an embedded chunk (the writer thread). Not state: a retried task rewrites them."""
        with clock.stage("store", len(items)):
            for item in items:
                self.store.put(thumbnail_key(item.asset.asset_id), item.thumbnail, "image/jpeg")

    def _write(self, items: list[_Decoded], vectors: np.ndarray, clock: StageClock) -> None:
        """A task's vectors into the index (one upsert, one flush), then READY records (the writer thread):
        a record says READY only once its vector is durable."""
        self.index.ensure_collection(self.embedder.dim)
        points = []
        for item, vector in zip(items, vectors, strict=True):
            sample = Sample(sample_id_for(item.asset.asset_id, item.ref.kind), item.asset.asset_id, item.ref.kind)
            payload = build_payload(item.asset, sample, self.embedder.model_id)
            points.append(VectorPoint(sample.sample_id, vector.tolist(), payload))
        with clock.stage("upsert", len(points)):
            self.index.upsert(points)
        checkpoint("write")
        if self.on_written is not None:
            with clock.stage("assign", len(points)):
                try:
                    self.on_written(points)
                except Exception:
                    log.exception("post-write hook failed for %d points (vectors are stored)", len(points))
        with clock.stage("store", len(items)):
            for item in items:
                self.catalog.put(replace(item.asset, state=AssetState.READY, error="", model_id=self.embedder.model_id))

    def _load(self, ref: SampleRef, clock: StageClock) -> _Decoded:
        with clock.stage("fetch"):
            data = self.store.get(ref.original_key)
            asset = self.catalog.get(ref.asset_id)
        with clock.stage("decode"):
            checkpoint("decode")
            image, _ = decode(data, self.limits, max_side=self.decode_side)
            if ref.bbox is not None:
                b = ref.bbox
                image = image.crop((int(b.x), int(b.y), int(b.x + b.width), int(b.y + b.height)))
            thumbnail = thumbnail_jpeg(image, self.thumbnail_size)
        # Resizing and cropping for the model also happen here, in parallel, not on the inference thread
        # (on a GPU that thread's preprocessing, not the model, was the limit: see bench/gpu_embedding.py).
        with clock.stage("preprocess"):
            prepared = self.embedder.prepare_image(image)
        return _Decoded(ref, asset, image, thumbnail, prepared)

    def _mark_failed(self, ref: SampleRef, reason: str, message: str) -> str:
        """Keep the record (so the user sees why) but drop the bytes that can never be used; returns the
        asset's source URI for the failure report."""
        asset = self.catalog.find(ref.asset_id)
        if asset is not None:
            self.catalog.put(replace(asset, state=AssetState.FAILED, error=f"{reason}: {message}"))
        self.store.delete(ref.original_key)
        return ref.source_uri or (asset.source_uri if asset is not None else f"asset://{ref.asset_id}")
