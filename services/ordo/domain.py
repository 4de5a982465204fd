"""Ordo's own data types.

The core, the ports and the adapters speak these plain dataclasses; protobuf messages and
Qdrant models are converted only at the boundary (``ordo.grpc.convert``, the adapters), so no
layer depends on another's wire format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class SampleKind(enum.StrEnum):
    """Which part of an image a sample embeds. Values are stored in vector payloads."""

    IMAGE = "image"
    OBJECT = "object"
    TEXT = "text"


class AssetState(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class BoundingBox:
    x: float
    y: float
    width: float
    height: float


@dataclass
class Asset:
    """An original image. ``asset_id`` is the hex SHA-256 of its bytes."""

    asset_id: str
    source_uri: str
    file_name: str
    mime_type: str
    size_bytes: int
    width: int
    height: int
    ingested_at: datetime
    original_key: str
    thumbnail_key: str = ""
    captured_at: datetime | None = None
    state: AssetState = AssetState.PENDING
    error: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    model_id: str = ""
    library: str = "default"  # the tenant (ordo.security.principal); part of the id outside "default"


@dataclass
class Sample:
    """One embedded unit of an asset: the whole image, an object crop or a text region."""

    sample_id: str
    asset_id: str
    kind: SampleKind
    index: int = 0
    bbox: BoundingBox | None = None
    label: str = ""
    score: float = 0.0
    polygon: list[tuple[float, float]] = field(default_factory=list)
    text: str = ""


@dataclass(frozen=True)
class VectorPoint:
    """What the vector index stores: one sample's vector plus the payload search filters on."""

    id: str
    vector: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class ScoredPoint:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Filter:
    """Restrictions on a search; empty fields do not restrict. Maps to payload fields."""

    kinds: tuple[SampleKind, ...] = ()
    asset_ids: tuple[str, ...] = ()
    mime_types: tuple[str, ...] = ()
    source_uri_prefix: str = ""
    captured_after: datetime | None = None
    captured_before: datetime | None = None
    ingested_after: datetime | None = None
    ingested_before: datetime | None = None
    min_width: int = 0
    min_height: int = 0
    model_id: str = ""
    exclude_asset_ids: tuple[str, ...] = ()
    # Keyword match on OCR text (``text`` payload, full-text index): points whose text holds any of
    # these words. Used by the keyword half of hybrid search; empty does not restrict.
    text_any: str = ""
    cluster_ids: tuple[str, ...] = ()  # payload ``cluster_id`` written by the latest analysis run
    libraries: tuple[str, ...] = ()  # payload ``library``; servicers narrow it to what the caller may read


@dataclass(frozen=True)
class FileFailure:
    source_uri: str
    reason: str
    message: str


@dataclass
class Job:
    job_id: str
    kind: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    total: int = 0
    enumeration_done: bool = False
    succeeded: int = 0
    duplicates: int = 0
    failed: int = 0
    pending: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    ended_at: datetime | None = None
    error: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_items: dict[str, int] = field(default_factory=dict)
    asset_ids: list[str] = field(default_factory=list)

    @property
    def done_count(self) -> int:
        return self.succeeded + self.duplicates + self.failed

    @property
    def rate_per_second(self) -> float:
        end = self.ended_at or self.updated_at
        elapsed = (end - self.created_at).total_seconds()
        return self.done_count / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float:
        """Seconds left at the average rate so far; -1 while unknown (no rate or total still growing)."""
        if self.state.is_final:
            return 0.0
        rate = self.rate_per_second
        if rate <= 0 or not self.enumeration_done:
            return -1.0
        return max(self.total - self.done_count, 0) / rate


class SearchMode(enum.StrEnum):
    """How text queries rank: embeddings, keywords on OCR text, or both fused (reciprocal rank fusion)."""

    SEMANTIC = "semantic"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class SearchHit:
    asset: Asset
    sample: Sample
    score: float
    rank: int
    semantic_score: float = 0.0  # cosine of the asset's best sample (0: found by keywords only)
    keyword_score: float = 0.0  # share of the query's words in the asset's OCR text


@dataclass(frozen=True)
class SampleRef:
    """A sample to compute: which asset, where its original is, and (for crops) which region."""

    asset_id: str
    original_key: str
    kind: SampleKind = SampleKind.IMAGE
    bbox: BoundingBox | None = None
    source_uri: str = ""
    file_name: str = ""


@dataclass(frozen=True)
class ProcessingOptions:
    """Which extra samples the image processor derives from each image, besides the whole image.

    None means "the deployment's default" (``ORDO_DETECT_OBJECTS`` / ``ORDO_READ_TEXT``), so a request
    only says what it wants to change; the worker resolves the rest with its own settings."""

    detect_objects: bool | None = None
    read_text: bool | None = None


@dataclass(frozen=True)
class EmbedTask:
    """One unit of work on the embedding queue (travels as ``ordo.v1.EmbedBatch``)."""

    batch_id: str
    job_id: str
    samples: tuple[SampleRef, ...]
    collection: str
    model_id: str
    processing: ProcessingOptions = field(default_factory=ProcessingOptions)
