"""The index host (``ordo ops index-host``): one qdrant-client local-mode index lent to other processes
over gRPC. A real host process on loopback; the client adapter must behave like the server adapter,
errors included — and nothing reaches the index without the host's token."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ordo.domain import Filter, VectorPoint
from ordo.errors import Conflict, InvalidInput, Unavailable
from ordo.processes import free_port
from ordo.v1 import index_host_pb2 as pb
from ordo.v1 import index_host_pb2_grpc as pb_grpc
from ordo_devstack.cluster import start_index_host, stop_all
from ordo_devstack.index_host.client import HostedVectorIndex, parse_url, read_token

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def host_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("index-host")
    port = free_port()
    process: subprocess.Popen[bytes] = start_index_host(tmp / "qdrant", port, tmp / "host.log", TOKEN)
    yield f"ordo-index://127.0.0.1:{port}"
    stop_all([process], timeout=10)


def _point(i: int, asset: str) -> VectorPoint:
    vector = [0.0] * 4
    vector[i % 4] = 1.0
    return VectorPoint(f"00000000-0000-4000-8000-{i:012x}", vector, {"asset_id": asset, "kind": "image", "width": 640})


def test_two_clients_share_one_index(host_url: str) -> None:
    writer, reader = HostedVectorIndex(host_url, "shared", TOKEN), HostedVectorIndex(host_url, "shared", TOKEN)
    assert reader.dim is None
    writer.ensure_collection(4)
    writer.upsert([_point(i, f"{i // 2:064x}") for i in range(6)])
    writer.upsert([_point(0, f"{0:064x}")])  # same id again: overwritten, not duplicated
    assert (reader.dim, reader.count()) == (4, 6)
    hits = reader.search([1.0, 0.0, 0.0, 0.0], limit=2)
    assert [round(h.score, 3) for h in hits] == [1.0, 1.0]
    assert hits[0].payload["width"] == 640 and isinstance(hits[0].payload["width"], int)  # JSON keeps ints
    assert reader.count(Filter(asset_ids=(f"{0:064x}",))) == 2
    assert {p.id for p in reader.scroll(batch_size=2)} == {_point(i, "").id for i in range(6)}
    reader.set_payload([_point(1, "").id], {"cluster_id": "c7"})
    assert reader.count(Filter(cluster_ids=("c7",))) == 1
    writer.delete_by_asset(f"{0:064x}")
    assert reader.count() == 4
    assert reader.for_collection("other").count() == 0  # collections are separate


def test_errors_keep_their_class_and_reason(host_url: str) -> None:
    index = HostedVectorIndex(host_url, "strict", TOKEN)
    index.ensure_collection(4)
    with pytest.raises(Conflict) as err:
        index.ensure_collection(8)
    assert err.value.reason == "VECTOR_SIZE_MISMATCH"
    with pytest.raises(Conflict):
        index.upsert([VectorPoint("00000000-0000-4000-8000-000000000001", [1.0, 0.0], {})])
    assert getattr(index, "optimize", None) is None  # what the adapter lacks is absent, not a failing stub


@pytest.mark.parametrize("token", ["", "Bearer wrong", TOKEN[:-1] + "x"])
def test_every_call_needs_the_token(host_url: str, token: str) -> None:
    with pytest.raises(Unavailable) as err:
        HostedVectorIndex(host_url, "shared", token).count()
    assert err.value.reason == "INDEX_HOST_UNAUTHENTICATED"
    host, port = parse_url(host_url)
    with grpc.insecure_channel(f"{host}:{port}") as channel:  # streaming calls too, and no header at all
        stub = pb_grpc.IndexHostServiceStub(channel)
        with pytest.raises(grpc.RpcError) as rpc:
            list(stub.ScrollPoints(pb.ScrollPointsRequest(collection="shared"), timeout=10))
        assert rpc.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_hostile_requests_are_refused_with_a_reason(host_url: str) -> None:
    host, port = parse_url(host_url)
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = pb_grpc.IndexHostServiceStub(channel)
        bad = [
            (stub.CountPoints, pb.CountPointsRequest(collection="x" * 300)),
            (stub.EnsureCollection, pb.EnsureCollectionRequest(collection="c", dim=10**7)),
            (stub.SearchPoints, pb.SearchPointsRequest(collection="shared", vector=[1, 0, 0, 0], limit=10**9)),
            (stub.SetPayload, pb.SetPayloadRequest(collection="shared", ids=["a"], payload_json=b"[1, 2]")),
            (stub.SetPayload, pb.SetPayloadRequest(collection="shared", ids=["a"], payload_json=b"\xff{")),
            (
                stub.UpsertPoints,
                pb.UpsertPointsRequest(collection="shared", points=[pb.IndexPoint(id="p", vector=[0.0] * 70_000)]),
            ),
            (stub.CountPoints, pb.CountPointsRequest(collection="shared", filter=pb.IndexFilter(kinds=["nope"]))),
        ]
        for call, request in bad:
            with pytest.raises(grpc.RpcError) as err:
                call(request, metadata=metadata, timeout=10)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (request, err.value.details())


def test_host_down_is_unavailable_and_tokens_are_required(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="unreachable"):
        HostedVectorIndex(f"ordo-index://127.0.0.1:{free_port()}", "x", TOKEN).count()
    with pytest.raises(InvalidInput):
        parse_url("http://127.0.0.1:6333")
    assert parse_url("ordo-index://localhost") == ("localhost", 6399)
    with pytest.raises(InvalidInput) as err:
        read_token("", "")
    assert err.value.reason == "INDEX_HOST_TOKEN_REQUIRED"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert read_token("", str(token_file)) == TOKEN
    # The host itself refuses to start without a token, or with a short one: there is no default.
    base = {k: v for k, v in os.environ.items() if k != "ORDO_INDEX_HOST_TOKEN"}
    for env in (base, {**base, "ORDO_INDEX_HOST_TOKEN": "short"}):
        proc = subprocess.run(
            [sys.executable, "-m", "ordo.cli.main", "ops", "index-host", "--path", ":memory:", "--port", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0 and "token" in (proc.stderr + proc.stdout)


def test_settings_select_the_index_host(host_url: str, tmp_path: Path) -> None:
    from ordo.app import create_vector_index
    from ordo.config import Settings

    settings = Settings(data_dir=tmp_path, vector_backend="qdrant", qdrant_url=host_url, index_host_token=TOKEN)
    index = create_vector_index(settings)
    assert isinstance(index, HostedVectorIndex)
    assert index.backend == "ordo-index-host"  # what GetStats reports: the dev stand-in, not a Qdrant server
    assert index.count() >= 0


def test_every_filter_field_crosses_the_wire() -> None:
    """A Filter field the index host's protobuf does not carry would be silently dropped: a library-limited
    key's search would then see every library. Every field, set to a non-default value, must round-trip."""
    import dataclasses
    from datetime import UTC, datetime

    from ordo.domain import SampleKind
    from ordo_devstack.index_host.convert import filter_from, filter_pb

    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    values = {
        "kinds": (SampleKind.IMAGE, SampleKind.TEXT),
        "source_uri_prefix": "upload://a",
        "min_width": 7,
        "min_height": 9,
        "model_id": "m",
        "text_any": "receipt",
    }
    for field in dataclasses.fields(Filter):
        if field.name in values:
            continue
        values[field.name] = when if "_after" in field.name or "_before" in field.name else (f"{field.name}-x",)
    original = Filter(**values)
    assert filter_from(filter_pb(original), True) == original
