"""Task queue on Celery. The message body is the protobuf ``ordo.v1.EmbedBatch`` (base64 inside
Celery's JSON envelope), so producers and workers in any language share one contract.

A task carries ids and object keys only — never client text such as a file name or source URI (the
worker reads those from the asset record) — so its size is bounded by the batch size, whatever a
client sends: a 100 KB file name once produced a message the old file transport read half-written."""

from __future__ import annotations

import base64
import binascii

from celery import Celery
from google.protobuf.message import DecodeError
from kombu.exceptions import OperationalError

from ordo.domain import BoundingBox, EmbedTask, ProcessingOptions, SampleKind, SampleRef
from ordo.errors import Reason, Unavailable
from ordo.v1 import common_pb2, tasks_pb2
from ordo.wire import KIND_TO_PB, PB_TO_KIND
from ordo.worker.celery_app import EMBED_QUEUE, EMBED_TASK

PAYLOAD_VERSION = 1


def encode_task(task: EmbedTask) -> str:
    msg = tasks_pb2.EmbedBatch(
        batch_id=task.batch_id,
        job_id=task.job_id,
        collection=task.collection,
        model_id=task.model_id,
        version=PAYLOAD_VERSION,
    )
    if task.processing.detect_objects is not None:
        msg.processing.detect_objects = task.processing.detect_objects
    if task.processing.read_text is not None:
        msg.processing.read_text = task.processing.read_text
    for ref in task.samples:
        pb = msg.samples.add(
            asset_id=ref.asset_id,
            original_key=ref.original_key,
            kind=KIND_TO_PB[ref.kind],
        )
        if ref.bbox:
            pb.bbox.CopyFrom(
                common_pb2.BoundingBox(x=ref.bbox.x, y=ref.bbox.y, width=ref.bbox.width, height=ref.bbox.height)
            )
    return base64.b64encode(msg.SerializeToString()).decode()


def decode_task(payload: str) -> EmbedTask:
    """Raises ValueError for anything that is not a valid EmbedBatch of a version we understand."""
    try:
        msg = tasks_pb2.EmbedBatch.FromString(base64.b64decode(payload, validate=True))
    except (binascii.Error, DecodeError, TypeError) as exc:
        raise ValueError(f"not an EmbedBatch payload: {exc}") from exc
    if msg.version != PAYLOAD_VERSION:
        raise ValueError(f"EmbedBatch version {msg.version} is not supported (expected {PAYLOAD_VERSION})")
    if not msg.batch_id or not msg.job_id:
        raise ValueError("EmbedBatch without batch_id or job_id")
    refs = tuple(
        SampleRef(
            asset_id=s.asset_id,
            original_key=s.original_key,
            kind=PB_TO_KIND.get(s.kind, SampleKind.IMAGE),
            bbox=BoundingBox(s.bbox.x, s.bbox.y, s.bbox.width, s.bbox.height) if s.HasField("bbox") else None,
            source_uri=s.source_uri,
            file_name=s.file_name,
        )
        for s in msg.samples
    )
    p = msg.processing
    processing = ProcessingOptions(
        detect_objects=p.detect_objects if p.HasField("detect_objects") else None,
        read_text=p.read_text if p.HasField("read_text") else None,
    )
    return EmbedTask(msg.batch_id, msg.job_id, refs, msg.collection, msg.model_id, processing)


class CeleryTaskQueue:
    """Sends EmbedBatch tasks; the same class serves the filesystem and the Redis broker."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.backend = app.conf.broker_url.split(":", 1)[0]

    def submit(self, task: EmbedTask) -> None:
        try:
            self.app.send_task(
                EMBED_TASK,
                args=[encode_task(task)],
                queue=EMBED_QUEUE,
                task_id=task.batch_id,
                retry=True,
                retry_policy={
                    "max_retries": 3,
                    "interval_start": 0.2,
                    "interval_step": 0.5,
                    "interval_max": 2,
                },
            )
        except (OperationalError, OSError) as exc:
            raise Unavailable(
                f"the task queue ({self.backend}) is unreachable: {exc}", reason=Reason.QUEUE_UNAVAILABLE
            ) from exc

    def check(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
        except (OperationalError, OSError) as exc:
            raise Unavailable(
                f"the task queue ({self.backend}) is unreachable: {exc}", reason=Reason.QUEUE_UNAVAILABLE
            ) from exc
