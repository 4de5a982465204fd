"""``VectorIndex`` whose calls run in the index host (``ordo_devstack.index_host.server``), over gRPC with the
host's bearer token. Selected with ``ORDO_QDRANT_URL=ordo-index://127.0.0.1:PORT`` plus
``ORDO_INDEX_HOST_TOKEN`` (or ``ORDO_INDEX_HOST_TOKEN_FILE``). The host being down is ``Unavailable``,
as for a real server; its refusals come back as the matching Ordo errors with their reasons."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc

from ordo import errors
from ordo.domain import Filter, ScoredPoint, VectorPoint
from ordo.errors import Reason
from ordo.grpc_api.status import error_reason
from ordo.ports.vector_index import IndexCapabilities
from ordo.retry_policy import RECONNECT_OPTIONS
from ordo.v1 import index_host_pb2 as pb
from ordo.v1 import index_host_pb2_grpc as pb_grpc
from ordo_devstack.index_host import convert

SCHEME = "ordo-index"
DEFAULT_PORT = 6399
TIMEOUT_S = 60.0

_ERRORS: dict[grpc.StatusCode, type[errors.OrdoError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInput,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.TooLarge,
}


def parse_url(url: str) -> tuple[str, int]:
    """``ordo-index://127.0.0.1:6399`` → (host, port)."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname:
        raise errors.InvalidInput(f"not an index-host URL: {url!r} (expected {SCHEME}://127.0.0.1:PORT)")
    return parts.hostname, parts.port or DEFAULT_PORT


def read_token(token: str, token_file: str) -> str:
    """The token from the setting, else from the file; a clear error when neither is there."""
    if not token and token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise errors.InvalidInput(f"cannot read the index-host token file {token_file}: {exc}") from exc
    if not token:
        raise errors.InvalidInput(
            "the index host needs its token: set ORDO_INDEX_HOST_TOKEN or ORDO_INDEX_HOST_TOKEN_FILE",
            reason=Reason.INDEX_HOST_TOKEN_REQUIRED,
        )
    return token


class HostedVectorIndex:
    #: What this index is, as ``GetStats`` reports it: the development index host (its engine is
    #: qdrant-client local mode), not a Qdrant server.
    backend = "ordo-index-host"
    capabilities = IndexCapabilities(shared_client=True)  # one channel serves every collection

    def __init__(self, url: str, collection: str, token: str, *, _channel: grpc.Channel | None = None) -> None:
        self.url = url
        self.collection = convert.check_collection(collection)
        host, port = parse_url(url)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._token = token
        self._channel = _channel or grpc.insecure_channel(
            f"{host}:{port}",
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                *RECONNECT_OPTIONS,  # a restarted host is reachable again within seconds, not minutes
            ],
        )
        self._owns_channel = _channel is None
        self._stub = pb_grpc.IndexHostServiceStub(self._channel)

    def for_collection(self, collection: str) -> HostedVectorIndex:
        """Another collection on the same host and channel."""
        return HostedVectorIndex(self.url, collection, self._token, _channel=self._channel)

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, metadata=self._metadata, timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: grpc.RpcError) -> errors.OrdoError:
        code, details = exc.code(), exc.details() or ""
        cls = _ERRORS.get(code)
        if cls is not None:
            return cls(details, reason=error_reason(exc) or code.name)
        if code is grpc.StatusCode.UNAUTHENTICATED:
            return errors.Unavailable(
                f"the index host at {self.url} refused our token: {details}", reason=Reason.INDEX_HOST_UNAUTHENTICATED
            )
        return errors.Unavailable(
            f"the index host at {self.url} is unreachable: {details}", reason=Reason.VECTOR_INDEX_UNAVAILABLE
        )

    # --- VectorIndex ----------------------------------------------------------------------------
    def ensure_collection(self, dim: int) -> None:
        self._call("EnsureCollection", pb.EnsureCollectionRequest(collection=self.collection, dim=dim))

    @property
    def dim(self) -> int | None:
        reply = self._call("GetCollectionInfo", pb.GetCollectionInfoRequest(collection=self.collection))
        return reply.dim or None

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if points:
            request = pb.UpsertPointsRequest(collection=self.collection, points=[convert.point_pb(p) for p in points])
            self._call("UpsertPoints", request)

    def search(
        self, vector: Sequence[float], limit: int, offset: int = 0, filter: Filter | None = None
    ) -> list[ScoredPoint]:
        if limit <= 0:
            return []
        request = pb.SearchPointsRequest(
            collection=self.collection,
            vector=list(vector),
            limit=limit,
            offset=offset,
            filter=convert.filter_pb(filter),
        )
        return [convert.hit_from(h) for h in self._call("SearchPoints", request).hits]

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[VectorPoint]:
        if not ids:
            return []
        request = pb.RetrievePointsRequest(collection=self.collection, ids=list(ids), with_vectors=with_vectors)
        return [convert.point_from(p) for p in self._call("RetrievePoints", request).points]

    def delete_by_asset(self, asset_id: str) -> None:
        self._call("DeletePointsByAsset", pb.DeletePointsByAssetRequest(collection=self.collection, asset_id=asset_id))

    def count(self, filter: Filter | None = None) -> int:
        request = pb.CountPointsRequest(collection=self.collection, filter=convert.filter_pb(filter))
        return int(self._call("CountPoints", request).count)

    def scroll(
        self, filter: Filter | None = None, *, with_vectors: bool = True, batch_size: int = 1024
    ) -> Iterator[VectorPoint]:
        request = pb.ScrollPointsRequest(
            collection=self.collection,
            filter=convert.filter_pb(filter),
            with_vectors=with_vectors,
            page_size=batch_size,
        )
        try:
            for page in self._stub.ScrollPoints(request, metadata=self._metadata, timeout=TIMEOUT_S * 10):
                yield from (convert.point_from(p) for p in page.points)
        except grpc.RpcError as exc:
            raise self._error(exc) from exc

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        if ids:
            request = pb.SetPayloadRequest(
                collection=self.collection, ids=list(ids), payload_json=convert.payload_json(payload)
            )
            self._call("SetPayload", request)

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()
