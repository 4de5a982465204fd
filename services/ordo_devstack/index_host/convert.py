"""Domain ↔ protobuf for the index host: points, hits and filters. Checked on the way in, since the
host answers whoever holds the token: sizes are capped and payloads must be JSON objects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from ordo.domain import Filter, SampleKind, ScoredPoint, VectorPoint
from ordo.errors import InvalidInput, Reason
from ordo.v1 import index_host_pb2 as pb

MAX_COLLECTION_CHARS = 255
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_VECTOR = 65_536
MAX_IDS = 100_000
MAX_LIMIT = 100_000
MAX_TEXT = 4096


def check_collection(name: str) -> str:
    if not name or len(name) > MAX_COLLECTION_CHARS:
        raise InvalidInput(
            f"collection name must have 1-{MAX_COLLECTION_CHARS} characters", reason=Reason.BAD_COLLECTION
        )
    return name


def check_count(what: str, n: int, cap: int) -> None:
    if n > cap:
        raise InvalidInput(f"{n} {what} is over the limit of {cap}", reason=Reason.TOO_MANY)


def payload_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, default=str, separators=(",", ":")).encode()


def payload_from(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"payload of {len(raw)} bytes is over the limit of {MAX_PAYLOAD_BYTES}", reason=Reason.TOO_LARGE
        )
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"payload is not JSON: {exc}", reason=Reason.BAD_PAYLOAD) from exc
    if not isinstance(value, dict):
        raise InvalidInput("payload must be a JSON object", reason=Reason.BAD_PAYLOAD)
    return value


def point_pb(point: VectorPoint) -> pb.IndexPoint:
    return pb.IndexPoint(id=point.id, vector=point.vector, payload_json=payload_json(point.payload))


def point_from(msg: pb.IndexPoint) -> VectorPoint:
    check_count("vector values", len(msg.vector), MAX_VECTOR)
    return VectorPoint(msg.id, list(msg.vector), payload_from(msg.payload_json))


def hit_pb(hit: ScoredPoint) -> pb.IndexScoredPoint:
    return pb.IndexScoredPoint(id=hit.id, score=hit.score, payload_json=payload_json(hit.payload))


def hit_from(msg: pb.IndexScoredPoint) -> ScoredPoint:
    return ScoredPoint(id=msg.id, score=msg.score, payload=payload_from(msg.payload_json))


def _stamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def _when(msg: pb.IndexFilter, field: str) -> datetime | None:
    return getattr(msg, field).ToDatetime(tzinfo=UTC) if msg.HasField(field) else None


_DATES = ("captured_after", "captured_before", "ingested_after", "ingested_before")


def filter_pb(flt: Filter | None) -> pb.IndexFilter | None:
    if flt is None:
        return None
    msg = pb.IndexFilter(
        kinds=[k.value for k in flt.kinds],
        asset_ids=list(flt.asset_ids),
        mime_types=list(flt.mime_types),
        source_uri_prefix=flt.source_uri_prefix,
        min_width=flt.min_width,
        min_height=flt.min_height,
        model_id=flt.model_id,
        exclude_asset_ids=list(flt.exclude_asset_ids),
        text_any=flt.text_any,
        cluster_ids=list(flt.cluster_ids),
        libraries=list(flt.libraries),
    )
    for field in _DATES:
        stamp = _stamp(getattr(flt, field))
        if stamp is not None:
            getattr(msg, field).CopyFrom(stamp)
    return msg


def filter_from(msg: pb.IndexFilter, present: bool) -> Filter | None:
    if not present:
        return None
    for name in ("asset_ids", "exclude_asset_ids", "mime_types", "cluster_ids", "kinds", "libraries"):
        check_count(f"filter {name}", len(getattr(msg, name)), MAX_IDS)
    for name in ("source_uri_prefix", "text_any", "model_id"):
        if len(getattr(msg, name)) > MAX_TEXT:
            raise InvalidInput(f"filter {name} is over {MAX_TEXT} characters", reason=Reason.TOO_LARGE)
    try:
        kinds = tuple(SampleKind(k) for k in msg.kinds)
    except ValueError as exc:
        raise InvalidInput(f"unknown sample kind: {exc}", reason=Reason.BAD_FILTER) from exc
    return Filter(
        kinds=kinds,
        asset_ids=tuple(msg.asset_ids),
        mime_types=tuple(msg.mime_types),
        source_uri_prefix=msg.source_uri_prefix,
        captured_after=_when(msg, "captured_after"),
        captured_before=_when(msg, "captured_before"),
        ingested_after=_when(msg, "ingested_after"),
        ingested_before=_when(msg, "ingested_before"),
        min_width=msg.min_width,
        min_height=msg.min_height,
        model_id=msg.model_id,
        exclude_asset_ids=tuple(msg.exclude_asset_ids),
        text_any=msg.text_any,
        cluster_ids=tuple(msg.cluster_ids),
        libraries=tuple(msg.libraries),
    )


def ids(values: Sequence[str]) -> list[str]:
    check_count("ids", len(values), MAX_IDS)
    return list(values)
