"""Fair use at the gRPC boundary, on a real in-process gRPC server and channel: the rate limit answers
RESOURCE_EXHAUSTED with a RetryInfo hint, health checks are never limited, request fields are bounded."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from ordo import limits
from ordo.errors import InvalidInput
from ordo.fair_use import RateLimiter, StreamSlots, Throttled, client_identity
from ordo.grpc_api.guards import GuardInterceptor
from ordo.grpc_api.status import error_reason
from ordo.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc, search_pb2


class _Ingest(ingest_pb2_grpc.IngestServiceServicer):
    """Answers GetJob with the id asked for: the guards, not this servicer, are under test."""

    def GetJob(self, request: ingest_pb2.GetJobRequest, context: grpc.ServicerContext) -> ingest_pb2.GetJobResponse:
        return ingest_pb2.GetJobResponse(job=common_pb2.Job(job_id=request.job_id))


@pytest.fixture
def channel() -> Iterator[grpc.Channel]:
    from concurrent.futures import ThreadPoolExecutor

    interceptor = GuardInterceptor(RateLimiter("5/minute"), StreamSlots(total=4, per_client=2), 60)
    server = grpc.server(ThreadPoolExecutor(4), interceptors=[interceptor])
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(_Ingest(), server)
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    server.stop(0).wait()


def test_rate_limit_answers_resource_exhausted_with_a_retry_hint(channel: grpc.Channel) -> None:
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    for i in range(5):
        assert stub.GetJob(ingest_pb2.GetJobRequest(job_id=f"j{i}")).job.job_id == f"j{i}"
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetJob(ingest_pb2.GetJobRequest(job_id="one-too-many"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(caught.value) == "RATE_LIMITED"
    status = rpc_status.from_call(caught.value)
    hints = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    retry = error_details_pb2.RetryInfo()
    hints[0].Unpack(retry)
    assert 1 <= retry.retry_delay.seconds <= 60
    # Health checks always answer, whatever the caller's budget.
    for _ in range(20):
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_request_fields_are_checked_at_the_boundary(channel: grpc.Channel) -> None:
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetJob(ingest_pb2.GetJobRequest(job_id="x" * 10_000))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "FIELD_TOO_LONG"
    assert "xxxx" not in caught.value.details()


def test_client_identity_drops_the_port() -> None:
    assert client_identity("ipv4:10.1.2.3:55555") == "addr:10.1.2.3"
    assert client_identity("ipv6:[::1]:55555") == "addr:::1"
    assert client_identity("127.0.0.1") == "addr:127.0.0.1"
    assert client_identity("unix:/tmp/sock") == "unix"


def test_stream_slots_cap_per_client_and_in_total() -> None:
    slots = StreamSlots(total=3, per_client=2)
    slots.acquire("a")
    slots.acquire("a")
    with pytest.raises(Throttled):
        slots.acquire("a")
    slots.acquire("b")
    with pytest.raises(Throttled) as caught:
        slots.acquire("c")
    assert caught.value.reason == "TOO_MANY_STREAMS"
    slots.release("a")
    slots.acquire("c")
    assert slots.in_use == 3


def test_limits_name_the_field_and_reason_never_the_value() -> None:
    bad = [
        (search_pb2.SearchTextRequest(query="cat", min_score=float("nan")), "NOT_FINITE"),
        (search_pb2.SearchTextRequest(query="cat", filter=common_pb2.Filter(kinds=[9])), "BAD_ENUM"),
        (ingest_pb2.UploadFileHeader(file_name="f", metadata={str(i): "v" for i in range(65)}), "TOO_MANY_ITEMS"),
        (ingest_pb2.UploadFileHeader(file_name="f", metadata={"k": "v" * 1025}), "FIELD_TOO_LONG"),
        (ingest_pb2.IngestUrisRequest(uris=["u"] * 1001), "TOO_MANY_ITEMS"),
    ]
    for message, reason in bad:
        with pytest.raises(InvalidInput) as caught:
            limits.check_message(message)
        assert caught.value.reason == reason
        assert "vvvvvvvv" not in caught.value.message
    limits.check_message(search_pb2.SearchTextRequest(query="ü" * 2000, page_size=1000))  # within limits


def test_clipped_assets_keep_responses_bounded() -> None:
    asset = common_pb2.Asset(
        asset_id="a",
        file_name="n" * 100_000,
        source_uri="s" * 100_000,
        metadata={f"k{i}": "v" * 1000 for i in range(500)},
    )
    limits.clip_asset(asset)
    assert asset.ByteSize() < 8 * 1024
    assert asset.file_name.endswith("…")
    items = [common_pb2.Asset(asset_id=str(i), file_name="x" * 1000) for i in range(10_000)]
    fits = limits.within_budget(items, budget=100_000)
    assert 90 <= fits < 100
