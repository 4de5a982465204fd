"""Wiring: settings → adapters → core objects, built lazily and once per process.

This is the only module that knows which adapter serves which port. Everything else receives
ready objects, which keeps services thin and lets tests build a context from explicit settings.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING

from ordo.config import Settings
from ordo.core.catalog import AssetCatalog
from ordo.domain import Asset, Job, SampleKind
from ordo.errors import InvalidInput, ModelUnavailable, Reason
from ordo.imaging import ImageLimits

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

log = logging.getLogger(__name__)


def create_object_store(settings: Settings, bucket: str | None = None) -> ObjectStore:
    if settings.object_store == "s3" or bucket is not None:
        from ordo.adapters.s3_store import S3Store

        if not (settings.s3_access_key and settings.s3_secret_key):
            from ordo.errors import InvalidInput

            raise InvalidInput(
                "s3:// needs ORDO_S3_ENDPOINT, ORDO_S3_ACCESS_KEY and ORDO_S3_SECRET_KEY",
                reason=Reason.S3_NOT_CONFIGURED,
            )
        return S3Store(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=bucket or settings.s3_bucket,
            secure=settings.s3_secure,
            create_bucket=bucket is None,
        )
    from ordo.adapters.local_store import LocalDirectoryStore

    return LocalDirectoryStore(settings.data_dir / "objects")


def create_vector_index(settings: Settings, collection: str | None = None) -> VectorIndex:
    """The index of ``collection`` (default: the configured model's). Embedded: one Qdrant Edge shard
    folder per collection under data_dir/vectors."""
    name = collection or settings.collection_name
    if settings.vector_backend == "qdrant" and settings.qdrant_url.startswith("ordo-index://"):
        from ordo.index_host.client import HostedVectorIndex, read_token  # dev stand-in for a Qdrant server

        token = read_token(settings.index_host_token, settings.index_host_token_file)
        return HostedVectorIndex(settings.qdrant_url, name, token)
    if settings.vector_backend == "qdrant":
        from ordo.adapters.qdrant_index import QdrantServerIndex

        return QdrantServerIndex.from_settings(settings, collection=name)
    from ordo.adapters.edge_index import EdgeVectorIndex

    return EdgeVectorIndex(settings.data_dir / "vectors" / name)


def create_job_store(settings: Settings) -> JobStore:
    if settings.job_store == "redis":
        from ordo.adapters.redis_jobs import RedisJobStore

        return RedisJobStore.from_url(settings.redis_url)
    from ordo.adapters.sqlite_jobs import SqliteJobStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteJobStore(settings.data_dir / "jobs.sqlite3")


class AppContext:
    """Everything one Ordo process needs, created on first use (a search-only process never
    connects to the queue; an ingest-only process never loads the model)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
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

    @cached_property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels)

    @cached_property
    def store(self) -> ObjectStore:
        with self._lock:
            return create_object_store(self.settings)

    @cached_property
    def catalog(self) -> AssetCatalog:
        return AssetCatalog(self.store)

    # --- models and collections -------------------------------------------------------------------
    @cached_property
    def model_versions(self) -> ModelVersions:
        from ordo.core.model_versions import ModelVersions

        return ModelVersions(self.store)

    @property
    def active_version(self) -> ModelVersion:
        """The serving model and collection. Resolved once (``ORDO_MODEL=auto`` picks CLIP or ordo-lite)
        and recorded; re-read from the shared record every few seconds so that every process follows a
        switch made by another."""
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
        from ordo.config import collection_for
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

    @property
    def collection(self) -> str:
        return self.active_version.collection

    def index_for(self, collection: str) -> VectorIndex:
        with self._lock:
            index = self._indexes.get(collection)
            if index is None:
                first = next(iter(self._indexes.values()), None)
                for_collection = getattr(first, "for_collection", None)
                # A Qdrant client (local mode especially) is shared by all collections.
                index = for_collection(collection) if for_collection else create_vector_index(self.settings, collection)
                self._indexes[collection] = index
            return index

    @property
    def index(self) -> VectorIndex:
        return self.index_for(self.collection)

    def embedder_for(self, model: str, *, load: bool = True) -> Embedder:
        """The shared embedder of ``model``; ``load=False`` only looks (an ingest-only process answering
        GetStats must not load a model it never uses)."""
        from ordo.embedding.factory import get_embedder
        from ordo.embedding.tuned_tower import runtime_options

        embedder = get_embedder(
            model,
            load=load,
            device=self.settings.device,
            batch_size=self.settings.model_batch_size,
            cache_dir=self.settings.model_cache_dir or None,
            torch_threads=self.settings.torch_threads or None,
            quantize_text_on_cpu=self.settings.quantize_text_on_cpu,
            **runtime_options(self.settings),
        )
        if load and model not in self._loaded_logged:
            self._loaded_logged.add(model)
            log.info("model %s loaded on %s (dim %d)", embedder.model_id, embedder.device, embedder.dim)
        return embedder

    @cached_property
    def jobs(self) -> JobStore:
        with self._lock:
            return create_job_store(self.settings)

    @cached_property
    def celery(self) -> Celery:
        from ordo.worker.celery_app import create_celery_app

        with self._lock:
            return create_celery_app(self.settings)

    @cached_property
    def queue(self) -> TaskQueue:
        from ordo.adapters.celery_queue import CeleryTaskQueue

        return CeleryTaskQueue(self.celery)

    @property
    def embedder(self) -> Embedder:
        return self.embedder_for(self.active_version.model)

    def decode_side_for(self, embedder: Embedder) -> int:
        """Smallest side JPEGs are draft-decoded to. The worker and image queries use the same value, so
        a query with the bytes of an indexed image gets exactly that image's vector."""
        return max(int(getattr(embedder, "input_size", 224)), self.settings.thumbnail_size)

    @property
    def decode_side(self) -> int:
        return self.decode_side_for(self.embedder)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @cached_property
    def ingest(self) -> IngestCore:
        from ordo.core.ingestion import IngestCore

        bucket_store = None
        if self.settings.s3_access_key:

            def bucket_store(bucket: str) -> ObjectStore:
                return create_object_store(self.settings, bucket=bucket)

        return IngestCore(
            catalog=self.catalog,
            jobs=self.jobs,
            queue=self.queue,
            limits=self.limits,
            # Empty: tasks are embedded with the model active when a worker takes them (see model_switch).
            collection="",
            model_id="",
            task_batch_size=self.settings.task_batch_size,
            bucket_store=bucket_store,
        )

    @property
    def search(self) -> SearchCore:
        """The active model's search (a switch changes it between two queries, never during one)."""
        from ordo.core.search import SearchCore

        version = self.active_version
        with self._lock:
            core = self._searches.get(version.model)
            if core is None:
                embedder = self.embedder_for(version.model)
                core = SearchCore(
                    index=self.index_for(version.collection),
                    embedder=embedder,
                    limits=self.limits,
                    decode_side=self.decode_side_for(embedder),
                )
                self._searches[version.model] = core
            return core

    @property
    def pipeline(self) -> EmbeddingPipeline:
        return self.pipeline_for("")

    def pipeline_for(self, model: str) -> EmbeddingPipeline:
        """The pipeline embedding with ``model`` into its collection; '' means the active model."""
        from ordo.config import collection_for
        from ordo.core.embedding_pipeline import EmbeddingPipeline
        from ordo.embedding.tuned_tower import decode_threads_for

        version = self.active_version
        if model and model != version.model:
            recorded = self.model_versions.get(model)
            collection = recorded.collection if recorded else collection_for(model)
        else:
            model, collection = version.model, version.collection
        with self._lock:
            pipeline = self._pipelines.get(model)
            if pipeline is None:
                embedder = self.embedder_for(model)
                pipeline = EmbeddingPipeline(
                    store=self.store,
                    index=self.index_for(collection),
                    jobs=self.jobs,
                    embedder=embedder,
                    limits=self.limits,
                    decode_threads=decode_threads_for(self.settings),
                    thumbnail_size=self.settings.thumbnail_size,
                    decode_side=self.decode_side_for(embedder),
                    processor=self.image_processor_for(embedder, self.index_for(collection)),
                )
                # newly embedded images join the nearest cluster of the latest analysis run
                pipeline.on_written = self.analysis_for(model, collection).assign_new_points
                self._pipelines[model] = pipeline
            return pipeline

    @property
    def analysis(self) -> AnalysisCore:
        """The active model's analysis: runs over its collection, cluster ids written into its payloads."""
        version = self.active_version
        return self.analysis_for(version.model, version.collection)

    def analysis_for(self, model: str, collection: str) -> AnalysisCore:
        """Clustering/projection runs over ``collection``; ``model``'s text tower names clusters (loaded
        only when a run gets that far)."""
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
                    cache_dir=self.settings.data_dir / "cache" / "naming",
                )
                self._analyses[collection] = core
            return core

    def image_processor_for(self, embedder: Embedder, index: VectorIndex) -> ImageProcessor:
        """Object crops and OCR lines as extra samples, embedded by ``embedder`` into ``index``. The
        detection and OCR models are shared by every model's pipeline and load when first needed."""
        from ordo.processing.stage import ImageProcessor

        return ImageProcessor.from_settings(
            self.settings,
            store=self.store,
            index=index,
            embedder=embedder,
            limits=self.limits,
            models=self._processing_models,
        )

    @cached_property
    def _processing_models(self) -> tuple[ObjectDetector, TextReader]:
        from ordo.processing.stage import processing_models

        return processing_models(self.settings)

    def load_image_processor(self) -> None:
        """Load the detection/OCR models the deployment enables, so a missing or corrupt model file is a
        start-up error (``ModelUnavailable``) rather than a log line per batch."""
        self.pipeline.processor.load()

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

    def _on_model_flip(self, version: ModelVersion) -> None:
        self.set_active_version(version)
        set_alias = getattr(self.index_for(version.collection), "set_alias", None)
        if set_alias is not None:
            set_alias(self.settings.collection_alias)

    def activate_model(self, model: str) -> tuple[ModelVersion, Job]:
        """Start switching to ``model`` (loads it first, so a model that cannot load fails here)."""
        from ordo.config import collection_for
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

        index = self.index
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
        collections = {self.collection} | {v.collection for v in self.model_versions.list()}
        for collection in sorted(collections):  # every model's collection, not only the serving one
            index = self.index_for(collection)
            if index.dim:
                index.delete_by_asset(asset_id)
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
