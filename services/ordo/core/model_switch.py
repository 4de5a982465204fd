"""Switching the active model without downtime.

``start`` records the new version as BUILDING and queues every stored original for embedding with the
new model into its own collection, as a normal job (progress, rates, ETA, failures) on the normal
embedding queue — so the same workers, batching and retries do the work, and more workers make it
faster. Search keeps serving the active collection meanwhile.

After each batch of a re-embedding job a worker calls ``after_batch``. When the job has nothing in flight
it looks for assets that are in the catalog but not yet in the new collection (images ingested during
the switch went to the active model) and queues them too; only when none is missing does it flip the
active version (``ModelVersions.activate``) and close the job. The check-and-flip runs inside the worker
that finished the last batch: in the embedded mode (one worker thread) nothing else is embedding at
that moment, so no image can slip between the check and the flip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from ordo.chaos import checkpoint
from ordo.core.catalog import AssetCatalog, original_key
from ordo.core.model_versions import ModelVersion, ModelVersions, VersionState
from ordo.domain import AssetState, EmbedTask, Filter, Job, ProcessingOptions, SampleKind, SampleRef
from ordo.errors import Conflict, OrdoError, Reason
from ordo.ids import batch_id_for, sample_id_for
from ordo.ports.job_store import JobStore
from ordo.ports.task_queue import TaskQueue
from ordo.ports.vector_index import VectorIndex, optimizable

log = logging.getLogger(__name__)

JOB_KIND = "reembed"
_CHECK_CHUNK = 256


class ModelSwitcher:
    def __init__(
        self,
        *,
        versions: ModelVersions,
        catalog: AssetCatalog,
        jobs: JobStore,
        queue: TaskQueue,
        index_for: Callable[[str], VectorIndex],
        task_batch_size: int = 32,
        on_flip: Callable[[ModelVersion], None] | None = None,
    ) -> None:
        self.versions = versions
        self.catalog = catalog
        self.jobs = jobs
        self.queue = queue
        self.index_for = index_for
        self.task_batch_size = task_batch_size
        self.on_flip = on_flip

    def start(self, model: str, model_id: str, collection: str, reason: str = "") -> tuple[ModelVersion, Job]:
        """Begin building ``model``'s collection; returns (version, job). Activating the model that is
        already being built returns that build (an idempotent retry); another build in progress, or the
        model already active, is a FAILED_PRECONDITION."""
        active = self.versions.active()
        if active is not None and active.model == model:
            raise Conflict(f"{model} is already the active model", reason=Reason.MODEL_ALREADY_ACTIVE)
        building = self.versions.building()
        if building is not None:
            if building.model == model and building.job_id:
                return building, self.jobs.get(building.job_id)
            raise Conflict(
                f"a switch to {building.model} is in progress (job {building.job_id}); wait for it to finish",
                reason=Reason.MODEL_SWITCH_IN_PROGRESS,
            )
        job = self.jobs.create(JOB_KIND)
        version = self.versions.begin(model, model_id, collection, job.job_id, reason)
        log.info("switching the active model to %s: re-embedding into %s (job %s)", model, collection, job.job_id)
        try:
            queued = self._queue_missing(job.job_id, version, seq_start=0)
        except OrdoError as exc:
            self.jobs.fail(job.job_id, f"{exc.reason}: {exc.message}")
            self.versions.fail(model, exc.message)
            raise
        if queued == 0:  # nothing to embed (empty collection, or switching back to an up-to-date one)
            self._finish(job.job_id, version)
        return version, self.jobs.get(job.job_id)

    def after_batch(self, job_id: str) -> None:
        """Called by the worker after any batch; acts only on re-embedding jobs that have nothing in flight."""
        job = self.jobs.get(job_id, max_listed=0)  # counters only: this runs after every batch of every job
        if job.kind != JOB_KIND or job.state.is_final or job.pending > 0 or job.done_count < job.total:
            return
        version = next((v for v in self.versions.list() if v.job_id == job_id), None)
        if version is None or version.state is not VersionState.BUILDING:
            return
        queued = self._queue_missing(job_id, version, seq_start=job.total + 1)
        if queued == 0:
            self._finish(job_id, version)

    # --- internals ---------------------------------------------------------------------------------
    def _finish(self, job_id: str, version: ModelVersion) -> None:
        index = self.index_for(version.collection)
        optimizing = optimizable(index)
        if optimizing is not None and index.dim:
            optimizing.optimize()  # the HNSW graph before it serves, not at its first slow searches
        checkpoint("switch")
        flipped = self.versions.activate(version.model)
        if self.on_flip is not None:
            self.on_flip(flipped)
        self.jobs.add_inputs(job_id, 0, enumeration_done=True)
        log.info("model %s is now active (collection %s)", version.model, version.collection)

    def _ready_assets(self) -> Iterator[tuple[str, str, str]]:
        token = ""
        while True:
            assets, token = self.catalog.list(page_size=500, page_token=token)
            for asset in assets:
                if asset.state is AssetState.READY:
                    yield asset.asset_id, asset.source_uri, asset.file_name
            if not token:
                return

    def _missing(self, index: VectorIndex, assets: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        if not index.dim:
            return assets
        ids = {sample_id_for(a[0], SampleKind.IMAGE): a for a in assets}
        present = {p.id for p in index.retrieve(list(ids))}
        return [a for sid, a in ids.items() if sid not in present]

    def _processed_assets(self) -> dict[SampleKind, set[str]]:
        """Assets that have object crops / OCR text samples in the serving collection. Their re-embedding
        asks the image processor for the same again, whatever the deployment's default: a switch must not
        drop samples a request once asked for. Only non-image samples are read (usually few or none)."""
        active = self.versions.active()
        found: dict[SampleKind, set[str]] = {SampleKind.OBJECT: set(), SampleKind.TEXT: set()}
        if active is None:
            return found
        source = self.index_for(active.collection)
        if not source.dim:
            return found
        for point in source.scroll(Filter(kinds=tuple(found)), with_vectors=False):
            found[SampleKind(point.payload.get("kind", "image"))].add(str(point.payload.get("asset_id", "")))
        return found

    def _queue_missing(self, job_id: str, version: ModelVersion, seq_start: int) -> int:
        """Queue, as tasks of ``job_id``, every READY asset not yet in the version's collection; assets
        with crops or text samples go in tasks that ask for them."""
        index = self.index_for(version.collection)
        processed = self._processed_assets()
        queued, seq, chunk = 0, seq_start, []
        groups: dict[ProcessingOptions, list[SampleRef]] = {}

        def submit(options: ProcessingOptions) -> None:
            nonlocal seq
            refs = groups.pop(options, [])
            if not refs:
                return
            seq += 1
            self.jobs.add_inputs(job_id, len(refs))
            self.jobs.record(job_id, pending=len(refs))
            self.queue.submit(
                EmbedTask(batch_id_for(job_id, seq), job_id, tuple(refs), version.collection, version.model, options)
            )

        def add(batch: list[tuple[str, str, str]]) -> None:
            nonlocal queued
            for asset_id, source_uri, file_name in self._missing(index, batch):
                objects, text = asset_id in processed[SampleKind.OBJECT], asset_id in processed[SampleKind.TEXT]
                # Explicit True where the asset had such samples; None (deployment default) otherwise.
                options = ProcessingOptions(True if objects else None, True if text else None)
                refs = groups.setdefault(options, [])
                refs.append(SampleRef(asset_id, original_key(asset_id), SampleKind.IMAGE, None, source_uri, file_name))
                queued += 1
                if len(refs) >= self.task_batch_size:
                    submit(options)

        for asset in self._ready_assets():
            chunk.append(asset)
            if len(chunk) >= _CHECK_CHUNK:
                add(chunk)
                chunk = []
        add(chunk)
        for options in list(groups):
            submit(options)
        return queued
