"""The process context: what one Ordo process has built, kept for its lifetime and shared by its parts.

Adapters are chosen and built by the factories in :mod:`ordo.wiring` (the one module that knows them);
this module keeps the results so a search-only process never loads a second model and an in-process
worker shares the serving index. Port handles (store, jobs, queue...) are built on first use and hold
no model; everything that loads a model, reads or writes a record or opens an index is a *method*
(``load_embedder``, ``active_version``, ``active_index``, ``search_core``...), so reading an attribute
never has a side effect and start-up work is a visible call.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ordo.chaos import checkpoint
from ordo.config import Settings, collection_for
from ordo.core.catalog import AssetCatalog
from ordo.domain import Asset, Job, SampleKind
from ordo.errors import InvalidInput, ModelUnavailable, Reason
from ordo.ports.vector_index import aliased, shared_client
from ordo.wiring import (
    create_celery,
    create_embedder,
    create_ingest,
    create_job_store,
    create_object_store,
    create_task_queue,
    create_vector_index,
    decode_side_for,
    image_limits,
)

if TYPE_CHECKING:
    from celery import Celery

    from ordo.analysis.service import AnalysisCore
    from ordo.core.embedding_pipeline import EmbeddingPipeline
    from ordo.core.ingestion import IngestCore
    from ordo.core.model_switch import ModelSwitcher
    from ordo.core.model_versions import ModelVersion, ModelVersions
    from ordo.core.search import SearchCore
    from ordo.domain import Sample
    from ordo.embedding.base import Embedder
    from ordo.ports.job_store import JobStore
    from ordo.ports.object_store import ObjectStore
    from ordo.ports.task_queue import TaskQueue
    from ordo.ports.vector_index import VectorIndex
    from ordo.processing.regions import ObjectDetector, TextReader
    from ordo.processing.stage import ImageProcessor

# Kept importable from here: many callers build a store or index from settings alone.
__all__ = [
    "AppContext",
    "create_job_store",
    "create_object_store",
    "create_vector_index",
    "current_context",
    "set_current_context",
]

log = logging.getLogger(__name__)


class AppContext:
    """Everything one Ordo process needs, built on first use (a search-only process never connects to
    the queue; an ingest-only process never loads the model)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.limits = image_limits(self.settings)
        self._lock = threading.RLock()
        # Per-model state: a switch (``ordo models activate``) builds a second collection with a second
        # model while the active one keeps serving, so indexes, pipelines and search cores are per model.
        self._indexes: dict[str, VectorIndex] = {}
        self._pipelines: dict[str, EmbeddingPipeline] = {}
        self._searches: dict[str, SearchCore] = {}
        self._analyses: dict[str, AnalysisCore] = {}
        self._loaded_logged: set[str] = set()
        self._active: ModelVersion | None = None
        self._active_read_at = 0.0
        self._processing: tuple[ObjectDetector, TextReader] | None = None

    # --- port handles (no model, no record read) ---------------------------------------------------
    @cached_property
    def store(self) -> ObjectStore:
        with self._lock:
            return create_object_store(self.settings)

    @cached_property
    def catalog(self) -> AssetCatalog:
        return AssetCatalog(self.store)

    @cached_property
    def model_versions(self) -> ModelVersions:
        from ordo.core.model_versions import ModelVersions

        return ModelVersions(self.store)

    @cached_property
    def jobs(self) -> JobStore:
        with self._lock:
            return create_job_store(self.settings)

    @cached_property
    def celery(self) -> Celery:
        with self._lock:
            return create_celery(self.settings)

    @cached_property
    def queue(self) -> TaskQueue:
        return create_task_queue(self.celery)

    @cached_property
    def ingest(self) -> IngestCore:
        return create_ingest(self.settings, catalog=self.catalog, jobs=self.jobs, queue=self.queue, limits=self.limits)

    @cached_property
    def model_switch(self) -> ModelSwitcher:
        from ordo.core.model_switch import ModelSwitcher

        return ModelSwitcher(
            versions=self.model_versions,
            catalog=self.catalog,
            jobs=self.jobs,
            queue=self.queue,
            index_for=self.index_for,
            task_batch_size=self.settings.task_batch_size,
            on_flip=self._on_model_flip,
        )

    def open_jobs(self) -> JobStore:
        """Open the job store now, so an unreachable or newer-schema store fails start-up, not a request."""
        return self.jobs

    # --- models and collections -------------------------------------------------------------------
    def active_version(self) -> ModelVersion:
        """The serving model and collection. Resolved once (``ORDO_MODEL=auto`` picks CLIP or ordo-lite;
        a new data directory records its first model here, loading it) and re-read from the shared
        record every few seconds so that every process follows a switch made by another."""
        now = time.monotonic()
        if self._active is not None and now - self._active_read_at < self.settings.model_refresh_seconds:
            return self._active
        with self._lock:
            recorded = self.model_versions.active()
            if recorded is None:
                recorded = self._record_initial_model()
            elif self._active is None and self.settings.model not in ("auto", recorded.model):
                log.warning(
                    "ORDO_MODEL=%s differs from the active model %s recorded in this data directory; serving %s. "
                    "Switch with `ordo models activate %s` (re-embeds in the background).",
                    self.settings.model,
                    recorded.model,
                    recorded.model,
                    self.settings.model,
                )
            if self._active is None:
                log.info("active model %s (collection %s): %s", recorded.model, recorded.collection, recorded.reason)
            self._active, self._active_read_at = recorded, now
            return recorded

    def _record_initial_model(self) -> ModelVersion:
        from ordo.embedding.model_selection import ModelChoice, resolve_model

        choice = resolve_model(self.settings)
        try:
            embedder = self.embedder_for(choice.model)
        except ModelUnavailable as exc:
            fallback = self.settings.auto_fallback_model
            if self.settings.model != "auto" or choice.model == fallback:
                raise
            log.warning("ORDO_MODEL=auto: %s failed to load (%s); using %s", choice.model, exc.message, fallback)
            choice = ModelChoice(fallback, f"ORDO_MODEL=auto: {choice.model} failed to load; using {fallback}")
            embedder = self.embedder_for(choice.model)
        explicit = self.settings.collection if choice.model == self.settings.model else ""
        collection = explicit or collection_for(choice.model)
        return self.model_versions.ensure_active(choice.model, embedder.model_id, collection, choice.reason)

    def set_active_version(self, version: ModelVersion) -> None:
        """A switch completed in this process: follow it at once (other processes within the refresh)."""
        with self._lock:
            self._active, self._active_read_at = version, time.monotonic()

    def index_for(self, collection: str) -> VectorIndex:
        """The index of ``collection``, opened on first use (an embedded shard takes its lock here)."""
        with self._lock:
            index = self._indexes.get(collection)
            if index is None:
                first = next(iter(self._indexes.values()), None)
                sharing = shared_client(first) if first is not None else None
                # A Qdrant client (local mode especially) is shared by all collections.
                index = (
                    sharing.for_collection(collection) if sharing else create_vector_index(self.settings, collection)
                )
                self._indexes[collection] = index
            return index

    def active_index(self) -> VectorIndex:
        """The serving model's index (opened now if it was not)."""
        return self.index_for(self.active_version().collection)

    def embedder_for(self, model: str, *, load: bool = True) -> Embedder:
        """The shared embedder of ``model``; ``load=False`` only looks (an ingest-only process answering
        GetStats must not load a model it never uses)."""
        embedder = create_embedder(self.settings, model, load=load)
        if load and model not in self._loaded_logged:
            self._loaded_logged.add(model)
            log.info("model %s loaded on %s (dim %d)", embedder.model_id, embedder.device, embedder.dim)
        return embedder

    def load_embedder(self) -> Embedder:
        """The serving model's embedder, loaded now (model errors belong at start-up, not at a first search)."""
        return self.embedder_for(self.active_version().model)

    def search_core(self) -> SearchCore:
        """The active model's search (a switch changes it between two queries, never during one)."""
        from ordo.core.search import SearchCore

        version = self.active_version()
        with self._lock:
            core = self._searches.get(version.model)
            if core is None:
                embedder = self.embedder_for(version.model)
                core = SearchCore(
                    index=self.index_for(version.collection),
                    embedder=embedder,
                    limits=self.limits,
                    decode_side=decode_side_for(self.settings, embedder),
                )
                self._searches[version.model] = core
            return core

    def pipeline_for(self, model: str) -> EmbeddingPipeline:
        """The pipeline embedding with ``model`` into its collection; '' means the active model."""
        from ordo.core.embedding_pipeline import EmbeddingPipeline
        from ordo.embedding.tuned_tower import decode_threads_for

        version = self.active_version()
        if model and model != version.model:
            recorded = self.model_versions.get(model)
            collection = recorded.collection if recorded else collection_for(model)
        else:
            model, collection = version.model, version.collection
        with self._lock:
            pipeline = self._pipelines.get(model)
            if pipeline is None:
                embedder = self.embedder_for(model)
                index = self.index_for(collection)
                pipeline = EmbeddingPipeline(
                    store=self.store,
                    index=index,
                    jobs=self.jobs,
                    embedder=embedder,
                    limits=self.limits,
                    decode_threads=decode_threads_for(self.settings),
                    thumbnail_size=self.settings.thumbnail_size,
                    decode_side=decode_side_for(self.settings, embedder),
                    processor=self.image_processor_for(embedder, index),
                )
                # newly embedded images join the nearest cluster of the latest analysis run
                pipeline.on_written = self.analysis_for(model, collection).assign_new_points
                self._pipelines[model] = pipeline
            return pipeline

    def analysis_core(self) -> AnalysisCore:
        """The active model's analysis: runs over its collection, cluster ids written into its payloads."""
        version = self.active_version()
        return self.analysis_for(version.model, version.collection)

    def analysis_for(self, model: str, collection: str) -> AnalysisCore:
        """Clustering/projection runs over ``collection``; ``model``'s text tower names clusters (loaded
        only when a run gets that far)."""
        from ordo.analysis import prompt_cache
        from ordo.analysis.service import AnalysisCore

        with self._lock:
            core = self._analyses.get(collection)
            if core is None:
                recorded = self.model_versions.get(model)
                core = AnalysisCore(
                    index=self.index_for(collection),
                    store=self.store,
                    jobs=self.jobs,
                    model_id=recorded.model_id if recorded else "",
                    text_encoder=lambda texts: self.embedder_for(model).embed_texts(texts),
                    cache_dir=[
                        self.settings.data_dir / "cache" / "naming",
                        *filter(None, [prompt_cache.shared_dir(self.settings.naming_cache)]),
                    ],
                    concept_head=lambda: _concept_head(self.embedder_for(model)),
                )
                self._analyses[collection] = core
            return core

    def image_processor_for(self, embedder: Embedder, index: VectorIndex) -> ImageProcessor:
        """Object crops and OCR lines as extra samples, embedded by ``embedder`` into ``index``. The
        detection and OCR models are shared by every model's pipeline and load when first needed."""
        from ordo.processing.stage import ImageProcessor, processing_models

        with self._lock:
            if self._processing is None:
                self._processing = processing_models(self.settings)
        return ImageProcessor.from_settings(
            self.settings,
            store=self.store,
            index=index,
            embedder=embedder,
            limits=self.limits,
            models=self._processing,
        )

    def load_image_processor(self) -> None:
        """Load the detection/OCR models the deployment enables, so a missing or corrupt model file is a
        start-up error (``ModelUnavailable``) rather than a log line per batch."""
        processor = self.pipeline_for("").processor
        if processor is not None:  # always set by pipeline_for
            processor.load()

    def _on_model_flip(self, version: ModelVersion) -> None:
        self.set_active_version(version)
        aliasing = aliased(self.index_for(version.collection))
        if aliasing is not None:
            aliasing.set_alias(self.settings.collection_alias)

    def activate_model(self, model: str) -> tuple[ModelVersion, Job]:
        """Start switching to ``model`` (loads it first, so a model that cannot load fails here)."""
        from ordo.embedding.model_selection import resolve_model

        if not model.strip():
            raise InvalidInput("name the model to activate", reason=Reason.MODEL_REQUIRED)
        choice = resolve_model(self.settings.model_copy(update={"model": model.strip()}))
        embedder = self.embedder_for(choice.model)
        return self.model_switch.start(choice.model, embedder.model_id, collection_for(choice.model), choice.reason)

    # --- asset operations that span ports ----------------------------------------------------
    def samples_of(self, asset: Asset) -> list[Sample]:
        """Every sample of the asset: the whole image, then object crops and text lines in their order."""
        from ordo.core.payload import sample_from_payload
        from ordo.domain import Filter

        index = self.active_index()
        if not index.dim:
            return []
        points = index.scroll(Filter(asset_ids=(asset.asset_id,)), with_vectors=False)
        samples = [sample_from_payload(p.id, p.payload) for p in points]
        order = list(SampleKind)
        return sorted(samples, key=lambda s: (order.index(s.kind), s.index))

    def delete_asset(self, asset_id: str) -> None:
        """Vectors first, then bytes and record: a crash in between leaves a record to delete again,
        never a vector pointing at nothing."""
        self.catalog.get(asset_id)  # NotFound for unknown ids
        collections = {self.active_version().collection} | {v.collection for v in self.model_versions.list()}
        for collection in sorted(collections):  # every model's collection, not only the serving one
            index = self.index_for(collection)
            if index.dim:
                index.delete_by_asset(asset_id)
        checkpoint("delete")  # vectors gone, record and bytes not yet: the state a retry must finish
        self.catalog.delete(asset_id)

    def close(self) -> None:
        with self._lock:
            for pipeline in self._pipelines.values():
                pipeline.close()
            for index in self._indexes.values():
                index.close()
            self._pipelines.clear()
            self._indexes.clear()
            self._searches.clear()
            self._analyses.clear()


_current: AppContext | None = None
_current_lock = threading.Lock()


def current_context() -> AppContext:
    """The process-wide context (the Celery task and the servicers of one process share it, so an
    in-process worker and the search service share one model and one embedded index)."""
    global _current
    with _current_lock:
        if _current is None:
            _current = AppContext()
        return _current


def set_current_context(ctx: AppContext | None) -> None:
    global _current
    with _current_lock:
        _current = ctx


def _concept_head(embedder: Any) -> Any:
    """The embedder's ImageNet evidence map for naming (ordo-lite has one), or None (CLIP: text-tower names)."""
    head = getattr(embedder, "concept_head", None)
    return head() if callable(head) else None
