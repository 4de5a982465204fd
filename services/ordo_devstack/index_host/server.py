"""The index host's server: ``ordo.v1.IndexHostService`` over one qdrant-client local-mode index.

Why it exists: no Qdrant server binary can be installed here (only the client and the in-process Edge
engine), and both in-process engines let one process open a folder. ``make up-distributed`` and the
fault tests still need *several* processes (services + workers) writing to one index, so this process
opens the folder once and serves the ``VectorIndex`` calls to everyone. In compose, ``ORDO_QDRANT_URL``
names a real Qdrant and this is never used.

It replaces a ``multiprocessing.managers`` host that unpickled whatever arrived on its socket and
accepted a built-in default key. Now: protobuf only; loopback unless ``--host`` says otherwise; every
call must carry ``authorization: Bearer <token>`` — a token of at least 32 characters given by the
operator (``ORDO_INDEX_HOST_TOKEN`` or a file), never a default — compared in constant time before
anything in the request is looked at; sizes capped (``convert``). Local mode is not safe for concurrent
calls, so one lock serialises them (search is local mode's exact scan: a stand-in, not a server).
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

from ordo.errors import InvalidInput, Reason
from ordo.grpc_api.status import abort, handle_errors, handle_stream_errors
from ordo.v1 import index_host_pb2 as pb
from ordo.v1 import index_host_pb2_grpc as pb_grpc
from ordo_devstack.index_host import convert

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 32
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class _BearerToken(grpc.ServerInterceptor):
    """Refuses (UNAUTHENTICATED) any call without the host's token, before its handler runs."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            abort(context, grpc.StatusCode.UNAUTHENTICATED, "a valid index-host token is required", "UNAUTHENTICATED")

        self._refuse_unary = grpc.unary_unary_rpc_method_handler(refuse)
        self._refuse_stream = grpc.unary_stream_rpc_method_handler(refuse)

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        given = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(given.encode() if isinstance(given, str) else given, self._expected):
            return continuation(details)
        return self._refuse_stream if details.method.endswith("/ScrollPoints") else self._refuse_unary


class IndexHostServicer(pb_grpc.IndexHostServiceServicer):
    def __init__(self, path: str) -> None:
        from qdrant_client import QdrantClient

        self._client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
        self._indexes: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _index(self, collection: str) -> Any:
        from ordo.adapters.qdrant_index import QdrantServerIndex

        convert.check_collection(collection)
        if collection not in self._indexes:
            self._indexes[collection] = QdrantServerIndex(self._client, collection, location="the index host")
        return self._indexes[collection]

    @handle_errors
    def EnsureCollection(self, request: pb.EnsureCollectionRequest, context: Any) -> pb.EnsureCollectionResponse:
        if not 0 < request.dim <= convert.MAX_VECTOR:
            raise InvalidInput(f"dim must be 1-{convert.MAX_VECTOR}", reason=Reason.BAD_DIM)
        with self._lock:
            self._index(request.collection).ensure_collection(request.dim)
        return pb.EnsureCollectionResponse()

    @handle_errors
    def GetCollectionInfo(self, request: pb.GetCollectionInfoRequest, context: Any) -> pb.GetCollectionInfoResponse:
        with self._lock:
            return pb.GetCollectionInfoResponse(dim=self._index(request.collection).dim or 0)

    @handle_errors
    def UpsertPoints(self, request: pb.UpsertPointsRequest, context: Any) -> pb.UpsertPointsResponse:
        convert.check_count("points", len(request.points), convert.MAX_IDS)
        points = [convert.point_from(p) for p in request.points]
        with self._lock:
            self._index(request.collection).upsert(points)
        return pb.UpsertPointsResponse()

    @handle_errors
    def SearchPoints(self, request: pb.SearchPointsRequest, context: Any) -> pb.SearchPointsResponse:
        convert.check_count("vector values", len(request.vector), convert.MAX_VECTOR)
        if not 0 <= request.limit <= convert.MAX_LIMIT or not 0 <= request.offset <= convert.MAX_LIMIT:
            raise InvalidInput(f"limit and offset must be 0-{convert.MAX_LIMIT}", reason=Reason.BAD_LIMIT)
        flt = convert.filter_from(request.filter, request.HasField("filter"))
        with self._lock:
            hits = self._index(request.collection).search(list(request.vector), request.limit, request.offset, flt)
        return pb.SearchPointsResponse(hits=[convert.hit_pb(h) for h in hits])

    @handle_errors
    def RetrievePoints(self, request: pb.RetrievePointsRequest, context: Any) -> pb.RetrievePointsResponse:
        ids = convert.ids(request.ids)
        with self._lock:
            points = self._index(request.collection).retrieve(ids, request.with_vectors)
        return pb.RetrievePointsResponse(points=[convert.point_pb(p) for p in points])

    @handle_errors
    def DeletePointsByAsset(
        self, request: pb.DeletePointsByAssetRequest, context: Any
    ) -> pb.DeletePointsByAssetResponse:
        if len(request.asset_id) > convert.MAX_TEXT:
            raise InvalidInput("asset id too long", reason=Reason.BAD_ASSET_ID)
        with self._lock:
            self._index(request.collection).delete_by_asset(request.asset_id)
        return pb.DeletePointsByAssetResponse()

    @handle_errors
    def CountPoints(self, request: pb.CountPointsRequest, context: Any) -> pb.CountPointsResponse:
        flt = convert.filter_from(request.filter, request.HasField("filter"))
        with self._lock:
            return pb.CountPointsResponse(count=self._index(request.collection).count(flt))

    @handle_stream_errors
    def ScrollPoints(self, request: pb.ScrollPointsRequest, context: Any) -> Iterator[pb.ScrollPointsResponse]:
        flt = convert.filter_from(request.filter, request.HasField("filter"))
        size = min(max(request.page_size, 1), 4096)
        with self._lock:  # the whole scroll under the lock: local mode's generator is not re-entrant
            points = list(self._index(request.collection).scroll(flt, with_vectors=request.with_vectors))
        for first in range(0, len(points), size):
            yield pb.ScrollPointsResponse(points=[convert.point_pb(p) for p in points[first : first + size]])

    @handle_errors
    def SetPayload(self, request: pb.SetPayloadRequest, context: Any) -> pb.SetPayloadResponse:
        ids = convert.ids(request.ids)
        payload = convert.payload_from(request.payload_json)
        with self._lock:
            self._index(request.collection).set_payload(ids, payload)
        return pb.SetPayloadResponse()

    def close(self) -> None:
        self._client.close()


def check_token(token: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise InvalidInput(
            f"the index host needs a token of at least {MIN_TOKEN_CHARS} characters (ORDO_INDEX_HOST_TOKEN or "
            "--token-file); there is no default",
            reason=Reason.INDEX_HOST_TOKEN_REQUIRED,
        )
    return token


def start(path: str, token: str, host: str = "127.0.0.1", port: int = 0) -> tuple[grpc.Server, int, IndexHostServicer]:
    """Start serving; returns (server, bound port, servicer). Non-loopback hosts must be asked for."""
    servicer = IndexHostServicer(path)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="ordo-index-host"),
        interceptors=[_BearerToken(check_token(token))],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_IndexHostServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise InvalidInput(f"the index host cannot listen on {host}:{port}", reason=Reason.PORT_IN_USE)
    server.start()
    log.info("index host on %s:%d serving %s", host, bound, path)
    return server, bound, servicer
