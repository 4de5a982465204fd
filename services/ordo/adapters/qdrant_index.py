"""Server vector index: a Qdrant server through qdrant-client (gRPC preferred), or its local mode in tests.

The distributed deployment points every service at one Qdrant server (``ORDO_QDRANT_URL``), which
lets many processes share the index — the one thing the embedded Edge shard cannot do. The client's
*local mode* (``ORDO_QDRANT_PATH``: ``:memory:`` or a folder) speaks the same client API against an
in-process exact (numpy) search; the conformance suite uses it to exercise this adapter's calls
without a server binary. Local mode ignores payload indexes (it warns; we silence that warning) and
allows one client per folder.

Failure mapping, so callers see ordo errors rather than transport ones:

* connection refused / timeouts (gRPC ``UNAVAILABLE``/``DEADLINE_EXCEEDED``, REST transport errors)
  and a rejected API key → ``Unavailable`` naming the URL;
* a vector of the wrong size, or an existing collection of another size/distance → ``Conflict``
  (sizes are checked here before sending, the server's own refusal is mapped as a backstop);
* a collection that does not exist yet: reads answer empty (``search``/``retrieve`` → ``[]``,
  ``count`` → 0, ``delete_by_asset`` does nothing) and ``upsert`` raises ``Conflict`` — exactly
  like the Edge adapter before ``ensure_collection``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ordo.adapters.qdrant_filters import (
    asset_filter,
    build_filter,
    check_point_ids,
    check_vector_size,
    ids_filter,
    payload_index_schemas,
    prepare_payload,
    record_to_point,
    records_to_points,
    search_params,
)
from ordo.domain import Filter, ScoredPoint, VectorPoint
from ordo.errors import Conflict, OrdoError, Reason, Unavailable
from ordo.ports.vector_index import IndexCapabilities

if TYPE_CHECKING:
    from ordo.config import Settings

UPSERT_CHUNK = 256  # points per request: well under the server's default 32 MiB request limit
DEFAULT_TIMEOUT_S = 10


class ClientModels:
    """``QdrantModels`` for ``qdrant_client.models`` (see ``ordo.adapters.qdrant_filters``).

    Conditions are typed as the client's ``Condition`` union (what its ``Filter`` takes), so one list
    can hold field and id conditions alike."""

    def match_value(self, key: str, value: str) -> qm.Condition:
        return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))

    def match_any(self, key: str, values: list[str]) -> qm.Condition:
        return qm.FieldCondition(key=key, match=qm.MatchAny(any=values))

    def match_prefix(self, key: str, prefix: str) -> qm.Condition:
        return qm.FieldCondition(key=key, match=qm.MatchPrefix(prefix=prefix))

    def has_id(self, ids: list[str]) -> qm.Condition:
        return qm.HasIdCondition(has_id=list(ids))

    def match_text_any(self, key: str, words: str) -> qm.Condition:
        return qm.FieldCondition(key=key, match=qm.MatchTextAny(text_any=words))

    def int_at_least(self, key: str, minimum: int) -> qm.Condition:
        return qm.FieldCondition(key=key, range=qm.Range(gte=minimum))

    def datetime_range(self, key: str, gte: str | None, lt: str | None) -> qm.Condition:
        # Validated from the RFC 3339 strings, as pydantic always did (the model's fields are typed datetime).
        return qm.FieldCondition(key=key, range=qm.DatetimeRange.model_validate({"gte": gte, "lt": lt}))

    def filter(self, must: list[qm.Condition], must_not: list[qm.Condition]) -> qm.Filter:
        return qm.Filter(must=list(must) or None, must_not=list(must_not) or None)

    def index_schema(self, index_type: str, *, prefix: bool = False, mapped: bool = False) -> Any:
        # ``mapped`` is ignored: a Qdrant server loads its collections once at its own start, never in a
        # process that serves Ordo's other calls, so where it keeps an index is its operator's choice.
        if index_type == "keyword" and prefix:
            return qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, prefix=True)
        if index_type == "text":
            return qm.TextIndexParams(type=qm.TextIndexType.TEXT, tokenizer=qm.TokenizerType.WORD, lowercase=True)
        return qm.PayloadSchemaType(index_type)

    def search_params(self, hnsw_ef: int, acorn: bool) -> qm.SearchParams:
        return qm.SearchParams(hnsw_ef=hnsw_ef, acorn=qm.AcornSearchParams(enable=True) if acorn else None)


MODELS = ClientModels()


class QdrantServerIndex:
    """``VectorIndex`` on one collection of a Qdrant server (or qdrant-client local mode).

    ``location`` only labels error messages (the URL or path); :meth:`connect` and
    :meth:`from_settings` fill it in. A remote client is thread-safe, so no lock is needed here
    (local mode is for tests and single-threaded use).
    """

    backend = "qdrant"
    # The server indexes by itself; aliases follow the active model; one client serves every collection.
    capabilities = IndexCapabilities(aliases=True, shared_client=True)

    def __init__(self, client: QdrantClient, collection: str, *, hnsw_ef: int = 128, location: str = "") -> None:
        self.client = client
        self.collection = collection
        self.hnsw_ef = hnsw_ef
        self.location = location or "the Qdrant server"
        options = client.init_options
        self._local = options.get("location") == ":memory:" or options.get("path") is not None
        self._dim: int | None = None

    # --- construction -----------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        collection: str,
        *,
        url: str = "",
        api_key: str = "",
        path: str = "",
        hnsw_ef: int = 128,
        timeout: int = DEFAULT_TIMEOUT_S,
    ) -> QdrantServerIndex:
        """A server at ``url`` over gRPC (port 6334 beside the REST URL), or local mode at ``path``.

        Nothing is sent until the first call, so a server that is down is reported (``Unavailable``)
        by the operation that needs it rather than at start-up. A local folder in use by another
        client raises ``Unavailable`` here.
        """
        if bool(url) == bool(path):
            raise ValueError("give exactly one of url (a Qdrant server) or path (local mode)")
        if url:
            client = QdrantClient(
                url=url, api_key=api_key or None, prefer_grpc=True, timeout=timeout, check_compatibility=False
            )
            return cls(client, collection, hnsw_ef=hnsw_ef, location=f"Qdrant server at {url}")
        try:
            client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
        except RuntimeError as exc:  # "Storage folder … is already accessed by another instance"
            raise Unavailable(
                f"Qdrant local storage at {path} is in use by another process: {exc}",
                reason=Reason.VECTOR_INDEX_IN_USE,
            ) from exc
        return cls(client, collection, hnsw_ef=hnsw_ef, location=f"Qdrant local mode at {path}")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, collection: str | None = None, hnsw_ef: int = 128
    ) -> QdrantServerIndex:
        """Built from ``ORDO_QDRANT_URL``/``ORDO_QDRANT_API_KEY`` or ``ORDO_QDRANT_PATH``."""
        return cls.connect(
            collection or settings.collection_name,
            url=settings.qdrant_url,
            api_key=settings.qdrant_api_key,
            path=settings.qdrant_path,
            hnsw_ef=hnsw_ef,
        )

    def for_collection(self, collection: str) -> QdrantServerIndex:
        """Another collection over the same client (one connection; local mode allows one client per
        folder, so per-model collections must share it)."""
        return type(self)(self.client, collection, hnsw_ef=self.hnsw_ef, location=self.location)

    def set_alias(self, alias: str, collection: str | None = None) -> None:
        """Point the Qdrant alias ``alias`` at this (or the named) collection in one atomic operation, so
        tools reading Qdrant directly follow Ordo's active model."""
        target = collection or self.collection
        with self._errors("point the collection alias"):
            existing = {a.alias_name for a in self.client.get_aliases().aliases}
            operations: list[Any] = []
            if alias in existing:
                operations.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias)))
            operations.append(
                qm.CreateAliasOperation(create_alias=qm.CreateAlias(collection_name=target, alias_name=alias))
            )
            self.client.update_collection_aliases(change_aliases_operations=operations)

    def alias_target(self, alias: str) -> str | None:
        with self._errors("read the collection aliases"):
            return next((a.collection_name for a in self.client.get_aliases().aliases if a.alias_name == alias), None)

    # --- collection -------------------------------------------------------------------------------

    def _collection_params(self) -> qm.VectorParams | None:
        """The collection's (unnamed) vector params, or None when it does not exist."""
        with self._errors("read the collection"):
            if not self.client.collection_exists(self.collection):
                return None
            vectors = self.client.get_collection(self.collection).config.params.vectors
        if not isinstance(vectors, qm.VectorParams):
            raise Conflict(
                f"collection {self.collection!r} at {self.location} uses named vectors; "
                "Ordo needs one unnamed cosine vector",
                reason=Reason.VECTOR_SIZE_MISMATCH,
            )
        return vectors

    def ensure_collection(self, dim: int) -> None:
        params = self._collection_params()
        if params is None:
            try:
                with self._errors("create the collection"):
                    self.client.create_collection(
                        self.collection, vectors_config=qm.VectorParams(size=dim, distance=qm.Distance.COSINE)
                    )
            except Conflict:
                pass  # created concurrently by another process: check what it made below
            params = self._collection_params()
            if params is None:  # pragma: no cover - the server lost a collection it just acknowledged
                raise Unavailable(f"{self.location} did not create collection {self.collection!r}")
        if params.size != dim or params.distance != qm.Distance.COSINE:
            raise Conflict(
                f"collection {self.collection!r} at {self.location} holds {params.distance.value} vectors "
                f"of size {params.size}, not cosine of size {dim}; use another collection for another model",
                reason=Reason.VECTOR_SIZE_MISMATCH,
            )
        self._dim = dim
        self._ensure_payload_indexes()

    def _ensure_payload_indexes(self) -> None:
        with self._errors("read payload indexes"):
            existing = set(self.client.get_collection(self.collection).payload_schema)
        with warnings.catch_warnings(), self._errors("create payload indexes"):
            warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local Qdrant")
            for name, schema in payload_index_schemas(MODELS).items():
                if name not in existing:
                    self.client.create_payload_index(self.collection, name, field_schema=schema, wait=True)

    @property
    def dim(self) -> int | None:
        if self._dim is None:
            params = self._collection_params()
            self._dim = params.size if params is not None else None
        return self._dim

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> QdrantServerIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- VectorIndex ------------------------------------------------------------------------------

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        check_point_ids([p.id for p in points])
        dim = self.dim
        if dim is None:
            raise Conflict(
                f"collection {self.collection!r} does not exist at {self.location}; call ensure_collection first",
                reason=Reason.NO_COLLECTION,
            )
        for p in points:
            check_vector_size(p.vector, dim)
        with self._errors("upsert"):
            for start in range(0, len(points), UPSERT_CHUNK):
                batch = [
                    qm.PointStruct(id=p.id, vector=[float(x) for x in p.vector], payload=prepare_payload(p.payload))
                    for p in points[start : start + UPSERT_CHUNK]
                ]
                self.client.upsert(self.collection, points=batch, wait=True)

    def search(
        self, vector: Sequence[float], limit: int, offset: int = 0, filter: Filter | None = None
    ) -> list[ScoredPoint]:
        if limit <= 0:
            return []
        dim = self.dim
        if dim is None:
            return []
        check_vector_size(vector, dim)
        condition = build_filter(filter, MODELS)
        # local mode searches exactly and warns about search params: send them to servers only
        params = None if self._local else search_params(MODELS, self.hnsw_ef, limit, offset, condition is not None)
        with self._errors("search"):
            response = self.client.query_points(
                self.collection,
                query=[float(x) for x in vector],
                limit=limit,
                offset=offset,
                query_filter=condition,
                with_payload=True,
                with_vectors=False,
                search_params=params,
            )
        return [ScoredPoint(id=str(h.id), score=float(h.score), payload=dict(h.payload or {})) for h in response.points]

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[VectorPoint]:
        if not ids:
            return []
        check_point_ids(ids)
        if self.dim is None:
            return []
        with self._errors("retrieve"):
            records = self.client.retrieve(self.collection, list(ids), with_payload=True, with_vectors=with_vectors)
        return records_to_points(ids, records, with_vectors)

    def delete_by_asset(self, asset_id: str) -> None:
        if self.dim is None:
            return
        with self._errors("delete"):
            self.client.delete(
                self.collection,
                points_selector=qm.FilterSelector(filter=asset_filter(asset_id, MODELS)),
                wait=True,
            )

    def count(self, filter: Filter | None = None) -> int:
        if self.dim is None:
            return 0
        with self._errors("count"):
            return self.client.count(self.collection, count_filter=build_filter(filter, MODELS), exact=True).count

    def scroll(
        self, filter: Filter | None = None, *, with_vectors: bool = True, batch_size: int = 1024
    ) -> Iterator[VectorPoint]:
        if self.dim is None:
            return
        condition = build_filter(filter, MODELS)
        offset: Any = None
        while True:
            with self._errors("scroll"):
                records, offset = self.client.scroll(
                    self.collection,
                    scroll_filter=condition,
                    limit=batch_size,
                    offset=offset,
                    with_payload=True,
                    with_vectors=with_vectors,
                )
            for r in records:
                yield record_to_point(r, with_vectors)
            if offset is None or not records:
                return

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        if not ids or self.dim is None:
            return
        check_point_ids(ids)
        with self._errors("set payload"):
            for start in range(0, len(ids), UPSERT_CHUNK * 8):
                selector = qm.FilterSelector(filter=ids_filter(ids[start : start + UPSERT_CHUNK * 8], MODELS))
                self.client.set_payload(self.collection, payload=prepare_payload(payload), points=selector, wait=True)

    # --- errors -----------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate transport and server errors into ordo errors naming the location."""
        try:
            yield
        except OrdoError:
            raise
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise self._classify(action, str(details), code) from exc
        except ResponseHandlingException as exc:  # REST transport: refused, reset, timed out
            raise Unavailable(f"{self.location} is unreachable ({action}): {exc}") from exc
        except UnexpectedResponse as exc:
            raise self._classify(action, str(exc), None, http_status=exc.status_code) from exc
        except (ValueError, RuntimeError) as exc:  # local mode raises these for bad input / closed client
            message = str(exc)
            if "dimension" in message.lower():
                raise Conflict(f"{self.location}: {message}", reason=Reason.VECTOR_SIZE_MISMATCH) from exc
            if "closed" in message.lower():
                raise Unavailable(f"{self.location} is closed ({action})") from exc
            if "already exists" in message.lower():
                raise Conflict(f"{self.location}: {message}") from exc
            raise

    def _classify(
        self, action: str, message: str, code: grpc.StatusCode | None, http_status: int | None = None
    ) -> OrdoError:
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or http_status in (
            502,
            503,
            504,
        ):
            return Unavailable(f"{self.location} is unreachable ({action}): {message}")
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) or http_status in (
            401,
            403,
        ):
            return Unavailable(
                f"{self.location} refused the request ({action}): check ORDO_QDRANT_API_KEY: {message}",
                reason=Reason.VECTOR_INDEX_AUTH,
            )
        if "dimension" in message.lower():
            return Conflict(f"{self.location}: {message}", reason=Reason.VECTOR_SIZE_MISMATCH)
        if code == grpc.StatusCode.ALREADY_EXISTS or http_status == 409 or "already exists" in message.lower():
            return Conflict(f"{self.location}: {message}")
        return OrdoError(f"{self.location} failed to {action}: {message}")
