"""The vector payload: what each point in the index carries about its sample and asset.

Search results are built from the payload alone, so a search costs one index query and no
object-store reads. Datetimes are stored as RFC 3339 UTC strings, which both Qdrant engines index
as datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ordo.core.catalog import original_key, thumbnail_key
from ordo.domain import Asset, AssetState, BoundingBox, Sample, SampleKind


def rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def build_payload(asset: Asset, sample: Sample, model_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "asset_id": asset.asset_id,
        "kind": sample.kind.value,
        "index": sample.index,
        "source_uri": asset.source_uri,
        "file_name": asset.file_name,
        "mime_type": asset.mime_type,
        "size_bytes": asset.size_bytes,
        "width": asset.width,
        "height": asset.height,
        "ingested_at": rfc3339(asset.ingested_at),
        "model_id": model_id,
        "library": asset.library,
    }
    if asset.captured_at:
        payload["captured_at"] = rfc3339(asset.captured_at)
    if sample.bbox:
        payload["bbox"] = [sample.bbox.x, sample.bbox.y, sample.bbox.width, sample.bbox.height]
    if sample.label:
        payload["label"] = sample.label
        payload["score"] = sample.score
    if sample.polygon:
        payload["polygon"] = [list(p) for p in sample.polygon]
    if sample.text:
        payload["text"] = sample.text
    return payload


def asset_from_payload(payload: dict[str, Any]) -> Asset:
    asset_id = payload["asset_id"]
    return Asset(
        asset_id=asset_id,
        source_uri=payload.get("source_uri", ""),
        file_name=payload.get("file_name", ""),
        mime_type=payload.get("mime_type", ""),
        size_bytes=int(payload.get("size_bytes", 0)),
        width=int(payload.get("width", 0)),
        height=int(payload.get("height", 0)),
        ingested_at=parse_rfc3339(payload.get("ingested_at")) or datetime.fromtimestamp(0, UTC),
        captured_at=parse_rfc3339(payload.get("captured_at")),
        original_key=original_key(asset_id),
        thumbnail_key=thumbnail_key(asset_id),
        state=AssetState.READY,
        model_id=payload.get("model_id", ""),
        library=payload.get("library", "default"),
    )


def sample_from_payload(sample_id: str, payload: dict[str, Any]) -> Sample:
    bbox = payload.get("bbox")
    return Sample(
        sample_id=sample_id,
        asset_id=payload["asset_id"],
        kind=SampleKind(payload.get("kind", "image")),
        index=int(payload.get("index", 0)),
        bbox=BoundingBox(*bbox) if bbox else None,
        label=payload.get("label", ""),
        score=float(payload.get("score", 0.0)),
        polygon=[(p[0], p[1]) for p in payload.get("polygon", [])],
        text=payload.get("text", ""),
    )
