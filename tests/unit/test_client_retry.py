"""The client's channels retry idempotent reads on UNAVAILABLE (gRPC's retryPolicy), and only reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from ordo import retry_policy
from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.v1 import ingest_pb2, ingest_pb2_grpc, search_pb2, search_pb2_grpc


class _FlakySearch(search_pb2_grpc.SearchServiceServicer):
    """Answers UNAVAILABLE to the first call, then a result: what a restarting server looks like."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def SearchText(self, request: search_pb2.SearchTextRequest, context: grpc.ServicerContext) -> object:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return search_pb2.SearchTextResponse(model_id="m")


class _FlakyIngest(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self) -> None:
        self.calls = 0

    def IngestUris(self, request: ingest_pb2.IngestUrisRequest, context: grpc.ServicerContext) -> object:
        self.calls += 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")


@pytest.fixture
def served() -> Iterator[tuple[OrdoClient, _FlakySearch, _FlakyIngest]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    search, ingest = _FlakySearch(), _FlakyIngest()
    search_pb2_grpc.add_SearchServiceServicer_to_server(search, server)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(ingest, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield OrdoClient(Settings(address=f"127.0.0.1:{port}")), search, ingest
    finally:
        server.stop(None)


def test_a_read_is_retried_after_unavailable(served: tuple[OrdoClient, _FlakySearch, _FlakyIngest]) -> None:
    client, search, _ = served
    response = client.search.SearchText(search_pb2.SearchTextRequest(query="dogs"), timeout=10)
    assert response.model_id == "m"
    assert search.calls == 2  # the first answer was UNAVAILABLE; the channel tried again by itself


def test_a_write_is_not_retried(served: tuple[OrdoClient, _FlakySearch, _FlakyIngest]) -> None:
    client, _, ingest = served
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest.IngestUris(ingest_pb2.IngestUrisRequest(uris=["/x"]), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert ingest.calls == 1


def test_the_policy_names_reads_only() -> None:
    methods = {m["method"] for m in retry_policy.read_methods()}
    assert {"SearchText", "ListJobs", "GetAsset", "ListRuns", "EmbedTexts"} <= methods
    assert not methods & {"UploadImages", "IngestUris", "DeleteAsset", "StartClustering", "CancelJob"}
