"""Wiring: which adapter serves which port, and how the core objects are built from settings.

This is the only module that knows the adapters by name. Every function here is an explicit factory:
calling one is what opens a connection or loads a model, so a caller can see where start-up cost and
failures come from. :class:`ordo.app.AppContext` keeps what these build for the life of a process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ordo.config import Settings
from ordo.errors import InvalidInput, Reason
from ordo.imaging import ImageLimits

if TYPE_CHECKING:
    from celery import Celery

    from ordo.core.catalog import AssetCatalog
    from ordo.core.ingestion import IngestCore
    from ordo.embedding.base import Embedder
    from ordo.ports.job_store import JobStore
    from ordo.ports.object_store import ObjectStore
    from ordo.ports.task_queue import TaskQueue
    from ordo.ports.vector_index import VectorIndex

log = logging.getLogger(__name__)


def create_object_store(settings: Settings, bucket: str | None = None) -> ObjectStore:
    """The configured store, or the S3 bucket ``bucket`` (``s3://`` ingest and the bucket watcher)."""
    if settings.object_store == "s3" or bucket is not None:
        from ordo.adapters.s3_store import S3Store

        if not (settings.s3_access_key and settings.s3_secret_key):
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


def bucket_stores(settings: Settings) -> Callable[[str], ObjectStore] | None:
    """Opens other S3 buckets for ``s3://`` ingest; None when no S3 credentials are configured."""
    if not settings.s3_access_key:
        return None

    def bucket_store(bucket: str) -> ObjectStore:
        return create_object_store(settings, bucket=bucket)

    return bucket_store


def create_vector_index(settings: Settings, collection: str | None = None) -> VectorIndex:
    """The index of ``collection`` (default: the configured model's). Embedded: one Qdrant Edge shard
    folder per collection under data_dir/vectors."""
    name = collection or settings.collection_name
    if settings.vector_backend == "qdrant" and settings.qdrant_url.startswith("ordo-index://"):
        from ordo_devstack.index_host.client import HostedVectorIndex, read_token  # dev stand-in for a Qdrant server

        token = read_token(settings.index_host_token, settings.index_host_token_file)
        return HostedVectorIndex(settings.qdrant_url, name, token)
    if settings.vector_backend == "qdrant":
        from ordo.adapters.qdrant_index import QdrantServerIndex

        return QdrantServerIndex.from_settings(settings, collection=name)
    from ordo.adapters.edge_index import EdgeVectorIndex

    return EdgeVectorIndex(
        settings.data_dir / "vectors" / name, indexing_threshold_kb=settings.edge_indexing_threshold_kb
    )


def create_job_store(settings: Settings) -> JobStore:
    if settings.job_store == "redis":
        from ordo.adapters.redis_jobs import RedisJobStore

        return RedisJobStore.from_url(settings.redis_url)
    from ordo.adapters.sqlite_jobs import SqliteJobStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteJobStore(settings.data_dir / "jobs.sqlite3")


def create_celery(settings: Settings) -> Celery:
    from ordo.worker.celery_app import create_celery_app

    return create_celery_app(settings)


def create_task_queue(celery: Celery) -> TaskQueue:
    from ordo.adapters.celery_queue import CeleryTaskQueue

    return CeleryTaskQueue(celery)


def image_limits(settings: Settings) -> ImageLimits:
    return ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)


def create_embedder(settings: Settings, model: str, *, load: bool = True) -> Embedder:
    """The process's shared embedder of ``model`` (the factory keeps one per model); ``load=False``
    only looks (an ingest-only process answering GetStats must not load a model it never uses)."""
    from ordo.embedding.factory import get_embedder
    from ordo.embedding.tuned_tower import runtime_options

    return get_embedder(
        model,
        load=load,
        device=settings.device,
        batch_size=settings.model_batch_size,
        cache_dir=settings.model_cache_dir or None,
        torch_threads=settings.torch_threads or None,
        quantize_text_on_cpu=settings.quantize_text_on_cpu,
        **runtime_options(settings),
    )


def decode_side_for(settings: Settings, embedder: Embedder) -> int:
    """Smallest side JPEGs are draft-decoded to. The worker and image queries use the same value, so
    a query with the bytes of an indexed image gets exactly that image's vector."""
    return max(embedder.input_size, settings.thumbnail_size)


def create_ingest(
    settings: Settings, *, catalog: AssetCatalog, jobs: JobStore, queue: TaskQueue, limits: ImageLimits
) -> IngestCore:
    from ordo.core.ingestion import IngestCore

    return IngestCore(
        catalog=catalog,
        jobs=jobs,
        queue=queue,
        limits=limits,
        # Empty: tasks are embedded with the model active when a worker takes them (see model_switch).
        collection="",
        model_id="",
        task_batch_size=settings.task_batch_size,
        bucket_store=bucket_stores(settings),
    )
