"""Wiring: settings → adapters → core objects, built lazily and once per process.

This is the only module that knows which adapter serves which port. Everything else receives
ready objects, which keeps services thin and lets tests build a context from explicit settings.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import TYPE_CHECKING

from ordo.config import Settings
from ordo.core.catalog import AssetCatalog
from ordo.domain import Asset, SampleKind
from ordo.imaging import ImageLimits

if TYPE_CHECKING:
    from celery import Celery

    from ordo.core.embedding_pipeline import EmbeddingPipeline
    from ordo.core.ingestion import IngestCore
    from ordo.core.search import SearchCore
    from ordo.domain import Sample
    from ordo.embedding.base import Embedder
    from ordo.ports.job_store import JobStore
    from ordo.ports.object_store import ObjectStore
    from ordo.ports.task_queue import TaskQueue
    from ordo.ports.vector_index import VectorIndex

log = logging.getLogger(__name__)


def create_object_store(settings: Settings, bucket: str | None = None) -> ObjectStore:
    if settings.object_store == "s3" or bucket is not None:
        from ordo.adapters.s3_store import S3Store

        if not (settings.s3_access_key and settings.s3_secret_key):
            from ordo.errors import InvalidInput

            raise InvalidInput(
                "s3:// needs ORDO_S3_ENDPOINT, ORDO_S3_ACCESS_KEY and ORDO_S3_SECRET_KEY",
                reason="S3_NOT_CONFIGURED",
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


def create_vector_index(settings: Settings) -> VectorIndex:
    if settings.vector_backend == "qdrant" and settings.qdrant_url.startswith("ordo-index://"):
        from ordo.adapters.index_host import HostedVectorIndex  # dev stand-in for a Qdrant server

        return HostedVectorIndex(settings.qdrant_url, settings.collection_name)
    if settings.vector_backend == "qdrant":
        from ordo.adapters.qdrant_index import QdrantServerIndex

        return QdrantServerIndex.from_settings(settings)
    from ordo.adapters.edge_index import EdgeVectorIndex

    return EdgeVectorIndex(settings.data_dir / "vectors" / settings.collection_name)


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

    @cached_property
    def index(self) -> VectorIndex:
        with self._lock:
            return create_vector_index(self.settings)

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

    @cached_property
    def embedder(self) -> Embedder:
        from ordo.embedding.factory import get_embedder

        with self._lock:
            embedder = get_embedder(
                self.settings.model,
                device=self.settings.device,
                batch_size=self.settings.model_batch_size,
                cache_dir=self.settings.model_cache_dir or None,
                torch_threads=self.settings.torch_threads or None,
                quantize_text_on_cpu=self.settings.quantize_text_on_cpu,
            )
            embedder.load()
            log.info("model %s loaded on %s (dim %d)", embedder.model_id, embedder.device, embedder.dim)
            return embedder

    @property
    def decode_side(self) -> int:
        """Smallest side JPEGs are draft-decoded to. The worker and image queries use the same value, so
        a query with the bytes of an indexed image gets exactly that image's vector."""
        return max(int(getattr(self.embedder, "input_size", 224)), self.settings.thumbnail_size)

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
            collection=self.settings.collection_name,
            model_id=self.settings.model,
            task_batch_size=self.settings.task_batch_size,
            bucket_store=bucket_store,
        )

    @cached_property
    def search(self) -> SearchCore:
        from ordo.core.search import SearchCore

        return SearchCore(index=self.index, embedder=self.embedder, limits=self.limits, decode_side=self.decode_side)

    @cached_property
    def pipeline(self) -> EmbeddingPipeline:
        from ordo.core.embedding_pipeline import EmbeddingPipeline

        return EmbeddingPipeline(
            store=self.store,
            index=self.index,
            jobs=self.jobs,
            embedder=self.embedder,
            limits=self.limits,
            decode_threads=self.settings.decode_threads,
            thumbnail_size=self.settings.thumbnail_size,
            decode_side=self.decode_side,
        )

    # --- asset operations that span ports ----------------------------------------------------
    def samples_of(self, asset: Asset) -> list[Sample]:
        from ordo.core.payload import sample_from_payload
        from ordo.ids import sample_id_for

        if not self.index.dim:
            return []
        points = self.index.retrieve([sample_id_for(asset.asset_id, SampleKind.IMAGE)])
        return [sample_from_payload(p.id, p.payload) for p in points]

    def delete_asset(self, asset_id: str) -> None:
        """Vectors first, then bytes and record: a crash in between leaves a record to delete again,
        never a vector pointing at nothing."""
        self.catalog.get(asset_id)  # NotFound for unknown ids
        if self.index.dim:
            self.index.delete_by_asset(asset_id)
        self.catalog.delete(asset_id)

    def close(self) -> None:
        for name in ("index", "pipeline"):
            obj = self.__dict__.get(name)
            if obj is not None:
                obj.close()


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
