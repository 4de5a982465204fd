"""The embedding worker's work, as plain code: fetch → decode → embed → write, each stage timed.

Shaped like clip-retrieval's runner: reader (decoder threads; Pillow releases the GIL), mapper (the
model, chunk by chunk), writer (one thread: index upsert, thumbnails, records), each stage timed. The
three overlap, so the model — the expensive part — is rarely left waiting. A file that cannot be
decoded fails alone, with its reason; the rest of the task goes on. Point ids are deterministic, so a
redelivered task overwrites its own points.
"""

from __future__ import annotations

import itertools
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
            self.add(name, time.perf_counter() - start, items)

    def add(self, name: str, seconds: float, items: int) -> None:
        """Count ``seconds`` and ``items`` to a stage measured elsewhere."""
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.items[name] = self.items.get(name, 0) + items


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``spans`` (overlapping model calls count once)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


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


def chunk_bounds(count: int, size: int, streams: int = 1) -> list[int]:
    """Where a task's ``count`` images are cut into model chunks of at most ``size``: as many chunks as that
    takes, rounded up to a multiple of ``streams``, in sizes that differ by at most one. With passes running
    side by side, a task of 24 images in chunks of 8 left its third chunk alone on one stream while the other
    core idled (at a job's end, ~0.3 s of 5.7 for 128 CLIP images); four chunks of 6 end together."""
    if count <= 0:
        return [0]
    chunks = -(-count // max(size, 1))
    chunks = min(count, -(-chunks // max(streams, 1)) * max(streams, 1))
    return [count * i // chunks for i in range(chunks + 1)]


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
        # Threads that hand chunks to the model and wait for their vectors, so the task's thread can collect
        # the next chunk meanwhile; they only wait (the model's own lane or threads do the work). Four: two
        # chunks queued per task, for two tasks at once (ORDO_WORKER_CONCURRENCY).
        self._feeder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ordo-feed")
        # Called with each batch of points once they are in the index (the AppContext installs the analysis
        # service's incremental cluster assignment here); its failure is logged, never fails the batch.
        self.on_written: Callable[[list[VectorPoint]], object] | None = None
        # Optional stage (``ordo.processing``): object crops and OCR lines as extra samples, per task. Its
        # detector and OCR models are not safe to call from two threads: tasks running at once (a CPU worker
        # runs two) take turns here.
        self.processor = processor
        self._processing = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._feeder.shutdown(wait=False, cancel_futures=True)
        self._writer.shutdown(wait=True)

    def run(self, task: EmbedTask) -> BatchResult:
        """Embed one task's samples and account for each in its job. Transient faults (store or index
        unavailable) propagate so the queue retries the whole task; ids make the retry idempotent."""
        clock = StageClock()
        failures: list[FileFailure] = []
        futures = [self._pool.submit(self._load, ref, clock) for ref in task.samples]
        writes: list[Future[None]] = []
        passes: list[tuple[list[_Decoded], Future[tuple[np.ndarray, float, float]]]] = []
        # Chunk by chunk, and never waiting for the model between chunks: each decoded chunk is handed to the
        # model at once (the feeder threads queue it on the model's inference lane), so while the model runs
        # one chunk the next is already waiting for it and the lane never idles on a thread hand-off (issue
        # 18: with the tuned batch of 1-4 images a chunk is a 15-60 ms pass, and waiting for each before
        # collecting the next left the model idle between passes). The vectors go into the index once per task
        # (below), with the thumbnails beside the READY records after them, not once
        # per chunk: every index write ends in a flush (fsync of the segments) during which the embedded
        # engine holds the GIL (60-150 ms here), stalling the decoders and the model's Python.
        bounds = chunk_bounds(len(futures), self.embedder.batch_size, getattr(self.embedder, "image_streams", 1))
        for first, end in itertools.pairwise(bounds):
            ready: list[_Decoded] = []
            for ref, future in zip(task.samples[first:end], futures[first:end], strict=True):
                try:
                    ready.append(future.result())
                except (InvalidInput, TooLarge, NotFound) as exc:
                    # A task carries no client text: the record says where the file came from (gone if the
                    # asset was deleted while its task waited; then its id stands in).
                    source = self._mark_failed(ref, exc.reason, exc.message)
                    failures.append(FileFailure(source, exc.reason, exc.message))
            if ready:
                checkpoint("embed")
                passes.append((ready, self._feeder.submit(self._embed, ready)))
        embedded = [item for ready, _ in passes for item in ready]
        processed = [(d.ref, d.asset) for d in embedded]
        succeeded = len(embedded)
        try:
            results = [future.result() for _, future in passes]
        except BaseException:
            for _, future in passes:
                future.cancel()
            raise
        vectors = [v for v, _, _ in results]
        if results:  # the chunks wait for each other on the lane: their calls overlap, the model's time does not
            clock.add("embed", _covered([(start, end) for _, start, end in results]), succeeded)
        if embedded:  # vectors, then READY records with their thumbnails (the writer thread)
            writes.append(self._writer.submit(self._write, embedded, np.concatenate(vectors), clock))
        for write in writes:
            write.result()  # a store or index fault surfaces here, and the task is retried whole
        if self.processor is not None and processed:
            with self._processing:
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

    def _embed(self, ready: list[_Decoded]) -> tuple[np.ndarray, float, float]:
        """One chunk through the model (a feeder thread, which waits on the model's inference lane); returns
        the vectors and when the call started and ended."""
        start = time.perf_counter()
        if all(d.prepared is not None for d in ready):
            vectors = self.embedder.embed_prepared([d.prepared for d in ready])
        else:
            vectors = self.embedder.embed_images([d.image for d in ready])
        return vectors, start, time.perf_counter()

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
        # The READY records and the thumbnails as one durable group (their order among them does not matter):
        # an image's thumbnail and record share its folder, so one folder fsync covers both (issue 18: the
        # thumbnails were a group of their own per chunk, each folder fsynced twice). Thumbnails are not
        # state: a retried task rewrites them.
        with clock.stage("store", len(items)):
            model_id = self.embedder.model_id
            self.catalog.put_all(
                [replace(i.asset, state=AssetState.READY, error="", model_id=model_id) for i in items],
                beside=[(thumbnail_key(i.asset.asset_id), i.thumbnail, "image/jpeg") for i in items],
            )

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
