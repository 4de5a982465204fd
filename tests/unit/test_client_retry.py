"""The client's channels retry idempotent reads on UNAVAILABLE (gRPC's retryPolicy), and only reads, and
reconnect within seconds of a server restart."""

from __future__ import annotations

import threading
import time
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


class _Ingest(ingest_pb2_grpc.IngestServiceServicer):
    def IngestUris(self, request: ingest_pb2.IngestUrisRequest, context: grpc.ServicerContext) -> object:
        return ingest_pb2.IngestUrisResponse()


def _serve_ingest(port: int) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(_Ingest(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound, f"port {port} could not be bound"
    server.start()
    return server, bound


def _refused(client: OrdoClient) -> bool:
    try:
        client.ingest.IngestUris(ingest_pb2.IngestUrisRequest(uris=["/x"]), timeout=5)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        return True
    return False


def test_a_new_client_is_not_refused_for_an_old_servers_port() -> None:
    """A stopped server's port, reused by a new server: a new client's first write must reach it at once.

    The CI flake this pins: connections shared process-wide kept the old server's refusal in reconnect
    backoff, and a non-retried write from a brand-new client failed with "Connection refused"."""
    first, port = _serve_ingest(0)
    old = OrdoClient(Settings(address=f"127.0.0.1:{port}"))
    assert not _refused(old)
    first.stop(None)
    assert _refused(old) and _refused(old)  # the old server is gone: its connection is in backoff now
    second, _ = _serve_ingest(port)
    try:
        new = OrdoClient(Settings(address=f"127.0.0.1:{port}"))
        assert not _refused(new)
        new.close()
    finally:
        old.close()
        second.stop(None)


def test_a_long_lived_client_reconnects_within_seconds_of_a_restart() -> None:
    """gRPC's default reconnect backoff grows to 120 s; the client caps it so a restart costs seconds."""
    first, port = _serve_ingest(0)
    client = OrdoClient(Settings(address=f"127.0.0.1:{port}"))
    assert not _refused(client)
    first.stop(None)
    deadline = time.monotonic() + 5  # refused again and again: uncapped, the backoff would reach ~7 s by now
    while time.monotonic() < deadline:
        assert _refused(client)
        time.sleep(0.05)
    second, _ = _serve_ingest(port)
    try:
        started = time.monotonic()
        while _refused(client):
            assert time.monotonic() - started < 4.0, "the client stayed in reconnect backoff"
            time.sleep(0.05)
    finally:
        client.close()
        second.stop(None)
