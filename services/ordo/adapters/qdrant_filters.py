"""What both Qdrant adapters share: ``Filter`` → Qdrant conditions, payload indexes, payload and id rules.

Qdrant Edge (``qdrant_edge``) and qdrant-client (``qdrant_client.models``) describe the same engine
with two unrelated families of model classes. The *decisions* — which payload field a ``Filter`` field
maps to, match-any versus range, how datetimes are written, that excluded assets go to ``must_not``,
which fields get which payload index — are made once here, in :func:`build_filter` and
:func:`payload_index_schemas`. Each adapter only plugs in a :class:`QdrantModels` factory of a handful
of one-line constructors for its own classes, so the two backends cannot drift apart in what a filter
means.

Payload conventions (what callers put in ``VectorPoint.payload``; ``ordo.core.payload.build_payload`` does):

* ``asset_id``, ``mime_type``, ``source_uri``, ``model_id``: plain strings (keyword indexes).
* ``kind``: the ``SampleKind`` value string: ``"image"``, ``"object"`` or ``"text"``.
* ``width``, ``height``: integers (pixels of the original image).
* ``captured_at``, ``ingested_at``: RFC 3339 strings in UTC, e.g. ``"2024-05-01T10:00:00Z"`` or with
  microseconds ``"2024-05-01T10:00:00.123456Z"``. Both engines parse them into datetimes (datetime index), so
  ranges compare instants, not strings. A point without ``captured_at`` never matches a captured-at range.

Adapters pass every payload through :func:`prepare_payload`, which turns stray ``datetime`` and enum
values into those strings, so a caller that hands over ``datetime`` objects still gets a filterable
payload.

Filter semantics (identical on both backends):

* Tuples (``kinds``, ``asset_ids``, ``mime_types``) match any of their values; empty fields do not restrict;
  all given fields must hold together (AND).
* ``*_after`` is inclusive and ``*_before`` exclusive: ``[after, before)``, so consecutive windows tile
  without overlap or gaps. Naive datetimes are taken as UTC.
* ``min_width`` / ``min_height`` are inclusive lower bounds.
* ``source_uri_prefix`` is a plain, case-sensitive string prefix of ``source_uri`` (Qdrant ``MatchPrefix``);
  ``"s3://photos/2024"`` also matches ``"s3://photos/2024-old/…"``, so pass a trailing ``/`` to mean a folder.
  Both engines support prefix matching on keyword fields (Qdrant Edge 0.9, qdrant-client 1.20 and the server
  version that goes with it), and ``source_uri``'s keyword index is created with the ``prefix`` option so the
  server answers it from the index. That is why no helper payload field (list of parent prefixes) is stored.
* ``exclude_asset_ids`` becomes a ``must_not`` match-any on ``asset_id``.
* ``text_any`` matches points whose ``text`` (OCR text, full-text index: word tokenizer, lower-cased) holds
  any of its space-separated words (Qdrant ``MatchTextAny``); ranking those matches is the caller's job.
* ``cluster_ids`` match any of the payload's ``cluster_id`` (written by analysis runs via ``set_payload``).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from ordo.domain import Filter, VectorPoint
from ordo.errors import Conflict, InvalidInput, Reason
from ordo.ports.vector_index import PAYLOAD_INDEXES

# Keyword fields whose index also serves prefix matches (``Filter.source_uri_prefix``).
PREFIX_MATCH_FIELDS: frozenset[str] = frozenset({"source_uri"})

C = TypeVar("C")  # one condition of a model family
F = TypeVar("F")  # a filter of a model family
F_co = TypeVar("F_co", covariant=True)  # the same, in the protocol (only ever returned by it)
T = TypeVar("T")


class QdrantModels(Protocol[C, F_co]):
    """Constructors for one family of Qdrant model classes (Edge or qdrant-client).

    Deliberately dumb: each method builds one object from already-decided arguments, so the logic that
    decides *what* to build stays in :func:`build_filter` and :func:`payload_index_schemas`.
    """

    def match_value(self, key: str, value: str) -> C:
        """``key`` equals ``value``."""
        ...

    def match_any(self, key: str, values: list[str]) -> C:
        """``key`` equals one of ``values`` (non-empty)."""
        ...

    def match_prefix(self, key: str, prefix: str) -> C:
        """``key`` (a keyword) starts with ``prefix``."""
        ...

    def match_text_any(self, key: str, words: str) -> C:
        """``key`` (a full-text indexed string) holds any of the space-separated ``words``."""
        ...

    def has_id(self, ids: list[str]) -> C:
        """The point's id is one of ``ids``."""
        ...

    def int_at_least(self, key: str, minimum: int) -> C:
        """``key`` (a number) ``>= minimum``."""
        ...

    def datetime_range(self, key: str, gte: str | None, lt: str | None) -> C:
        """``gte <= key < lt`` on a datetime field; bounds are RFC 3339 strings, None = open."""
        ...

    def filter(self, must: list[C], must_not: list[C]) -> F_co:
        """All of ``must`` and none of ``must_not`` (either list may be empty)."""
        ...

    def index_schema(self, index_type: str, *, prefix: bool = False, mapped: bool = False) -> Any:
        """The payload index definition for a ``PAYLOAD_INDEXES`` type name (``prefix`` for keywords; ``mapped``:
        kept in its files, not rebuilt in RAM at load, where the engine lets the caller choose)."""
        ...

    def search_params(self, hnsw_ef: int, acorn: bool) -> Any:
        """Search parameters: HNSW beam width and whether ACORN may be used for filtered search."""
        ...


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z`` (the format ``ordo.core.payload`` stores).

    Naive values are taken as UTC, matching how payloads are written, so a filter built from a naive
    datetime means the same instant as the payload built from it.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time_window(models: QdrantModels[C, F], key: str, after: datetime | None, before: datetime | None) -> C | None:
    if after is None and before is None:
        return None
    return models.datetime_range(
        key,
        gte=format_datetime(after) if after is not None else None,
        lt=format_datetime(before) if before is not None else None,
    )


def build_filter(flt: Filter | None, models: QdrantModels[C, F]) -> F | None:
    """Turn an ordo ``Filter`` into one model family's filter; None when nothing restricts.

    Returning None (rather than an empty filter) lets the adapters send no filter at all, which keeps
    unfiltered searches on the engine's plain fast path.
    """
    if flt is None:
        return None
    must: list[C] = []
    must_not: list[C] = []
    if flt.kinds:
        must.append(models.match_any("kind", [enum_value(k) for k in flt.kinds]))
    if flt.asset_ids:
        must.append(models.match_any("asset_id", list(flt.asset_ids)))
    if flt.mime_types:
        must.append(models.match_any("mime_type", list(flt.mime_types)))
    if flt.source_uri_prefix:
        must.append(models.match_prefix("source_uri", flt.source_uri_prefix))
    for key, after, before in (
        ("captured_at", flt.captured_after, flt.captured_before),
        ("ingested_at", flt.ingested_after, flt.ingested_before),
    ):
        window = _time_window(models, key, after, before)
        if window is not None:
            must.append(window)
    if flt.min_width > 0:
        must.append(models.int_at_least("width", flt.min_width))
    if flt.min_height > 0:
        must.append(models.int_at_least("height", flt.min_height))
    if flt.model_id:
        must.append(models.match_value("model_id", flt.model_id))
    if flt.exclude_asset_ids:
        must_not.append(models.match_any("asset_id", list(flt.exclude_asset_ids)))
    if flt.text_any.strip():
        must.append(models.match_text_any("text", flt.text_any.strip()))
    if flt.cluster_ids:
        must.append(models.match_any("cluster_id", list(flt.cluster_ids)))
    if flt.libraries:
        must.append(models.match_any("library", list(flt.libraries)))
    if not must and not must_not:
        return None
    return models.filter(must, must_not)


def search_params(models: QdrantModels[C, F], hnsw_ef: int, limit: int, offset: int, filtered: bool) -> Any:
    """HNSW parameters for one search, the same on both engines.

    * ``ef`` is raised to ``limit + offset``: a beam narrower than the page being read cannot hold it,
      so deep pages would silently lose results.
    * ACORN is enabled for filtered searches. Plain filtered HNSW only walks points that pass the
      filter, so a broad filter (too many points for the exact payload-index path) breaks the graph
      into islands: on 20k clustered 512-d vectors with ``kinds=(OBJECT,)`` (a third of the points)
      we measured top-10 recall 0.61 without ACORN and 0.98 with it, at about the same latency.
      The engine only uses ACORN when the filter keeps under 40% of the points, so unfiltered and
      loosely filtered searches are unaffected.
    """
    return models.search_params(max(hnsw_ef, limit + offset), acorn=filtered)


def asset_filter(asset_id: str, models: QdrantModels[C, F]) -> F:
    """Every point of one asset (used by ``delete_by_asset``)."""
    return models.filter([models.match_value("asset_id", asset_id)], [])


def ids_filter(ids: Sequence[str], models: QdrantModels[C, F]) -> F:
    """The points among ``ids`` (used by ``set_payload``, so ids that are not stored are simply skipped)."""
    return models.filter([models.has_id([str(i) for i in ids])], [])


def payload_index_schemas(models: QdrantModels[C, F], mapped: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Field name → index definition for every field in ``PAYLOAD_INDEXES``, in one model family; the fields in
    ``mapped`` are asked to stay in their files rather than in RAM (see ``edge_engine.MAPPED_INDEXES``)."""
    return {
        name: models.index_schema(index_type, prefix=name in PREFIX_MATCH_FIELDS, mapped=name in mapped)
        for name, index_type in PAYLOAD_INDEXES.items()
    }


def enum_value(value: Any) -> Any:
    """An enum's value, anything else unchanged (``SampleKind.IMAGE`` → ``"image"``)."""
    return value.value if isinstance(value, enum.Enum) else value


def _payload_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _payload_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_payload_value(v) for v in value]
    return value


def prepare_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-plain copy of ``payload``: datetimes → RFC 3339 UTC strings, enums → values, tuples → lists.

    Both engines index datetimes only when they arrive as strings, and the Edge binding rejects Python
    objects it cannot map to JSON; normalising here makes the two adapters store identical payloads.
    """
    return {str(k): _payload_value(v) for k, v in payload.items()}


def check_point_ids(ids: Sequence[str]) -> None:
    """``InvalidInput`` unless every id is a UUID string (Qdrant accepts only UUIDs and integers).

    Checked here so both engines fail the same way instead of with their own low-level parse errors.
    """
    for point_id in ids:
        try:
            uuid.UUID(str(point_id))
        except ValueError:
            raise InvalidInput(f"vector point id {point_id!r} is not a UUID", reason=Reason.BAD_POINT_ID) from None


def in_request_order(ids: Sequence[str], found: Mapping[str, T]) -> list[T]:
    """``found`` (keyed by the engine's canonical UUID strings) in the order ``ids`` asked, once each.

    Engines return records in their own order; callers zip results with their requests, so both
    adapters answer in request order and leave missing ids out.
    """
    out: list[T] = []
    seen: set[str] = set()
    for point_id in ids:
        key = str(uuid.UUID(str(point_id)))
        if key in found and key not in seen:
            seen.add(key)
            out.append(found[key])
    return out


def check_vector_size(vector: Sequence[float], dim: int) -> None:
    """``Conflict`` when a vector does not fit the collection (checked before the engine sees it)."""
    if len(vector) != dim:
        raise Conflict(
            f"vector of size {len(vector)} does not fit the collection's size {dim} "
            "(was the collection made for another model?)",
            reason=Reason.VECTOR_SIZE_MISMATCH,
        )


def record_to_point(record: Any, with_vectors: bool) -> VectorPoint:
    """An engine record (Edge's or qdrant-client's: both have ``id``, ``vector``, ``payload``) as an Ordo point.

    Both engines hand each vector over as a fresh list of Python floats, used as is: a float() per element
    cost as much as the engine's own conversion (~1.3 s per 20k x 512 when scrolling a collection)."""
    vector = record.vector if with_vectors and isinstance(record.vector, list) else []
    return VectorPoint(id=str(record.id), vector=vector, payload=dict(record.payload or {}))


def records_to_points(ids: Sequence[str], records: Iterable[Any], with_vectors: bool) -> list[VectorPoint]:
    """Engine records as Ordo points, in request order."""
    found = {str(r.id): record_to_point(r, with_vectors) for r in records}
    return in_request_order(ids, found)
