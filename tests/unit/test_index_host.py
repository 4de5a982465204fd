"""The index host (``ordo ops index-host``): one qdrant-client local-mode index lent to other processes.
A real host process on loopback; the client adapter must behave like the server adapter, errors included."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordo.adapters.index_host import HostedVectorIndex, parse_url
from ordo.domain import Filter, VectorPoint
from ordo.errors import Conflict, InvalidInput, Unavailable
from ordo.worker.cluster import free_port, start_index_host, stop_all


@pytest.fixture(scope="module")
def host_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("index-host")
    port = free_port()
    process: subprocess.Popen[bytes] = start_index_host(tmp / "qdrant", port, tmp / "host.log")
    yield f"ordo-index://127.0.0.1:{port}"
    stop_all([process], timeout=10)


def _point(i: int, asset: str) -> VectorPoint:
    vector = [0.0] * 4
    vector[i % 4] = 1.0
    return VectorPoint(f"00000000-0000-4000-8000-{i:012x}", vector, {"asset_id": asset, "kind": "image"})


def test_two_clients_share_one_index(host_url: str) -> None:
    writer, reader = HostedVectorIndex(host_url, "shared"), HostedVectorIndex(host_url, "shared")
    assert reader.dim is None
    writer.ensure_collection(4)
    writer.upsert([_point(i, f"{i // 2:064x}") for i in range(6)])
    writer.upsert([_point(0, f"{0:064x}")])  # same id again: overwritten, not duplicated
    assert (reader.dim, reader.count()) == (4, 6)
    hits = reader.search([1.0, 0.0, 0.0, 0.0], limit=2)
    assert [round(h.score, 3) for h in hits] == [1.0, 1.0]
    assert reader.count(Filter(asset_ids=(f"{0:064x}",))) == 2
    assert {p.id for p in reader.scroll()} == {_point(i, "").id for i in range(6)}  # generators come back as lists
    writer.delete_by_asset(f"{0:064x}")
    assert reader.count() == 4
    assert HostedVectorIndex(host_url, "other").count() == 0  # collections are separate


def test_errors_keep_their_class_and_reason(host_url: str) -> None:
    index = HostedVectorIndex(host_url, "strict")
    index.ensure_collection(4)
    with pytest.raises(Conflict) as err:
        index.ensure_collection(8)
    assert err.value.reason == "VECTOR_SIZE_MISMATCH"
    with pytest.raises(Conflict):
        index.upsert([VectorPoint("00000000-0000-4000-8000-000000000001", [1.0, 0.0], {})])
    assert getattr(index, "optimize", None) is None  # what the adapter lacks is absent, not a failing stub


def test_host_down_is_unavailable_and_urls_are_loopback_only() -> None:
    with pytest.raises(Unavailable, match="unreachable"):
        HostedVectorIndex(f"ordo-index://127.0.0.1:{free_port()}", "x").count()
    with pytest.raises(InvalidInput, match="loopback"):
        parse_url("ordo-index://10.0.0.5:6399")
    with pytest.raises(InvalidInput):
        parse_url("http://127.0.0.1:6333")
    assert parse_url("ordo-index://localhost") == ("localhost", 6399)


def test_settings_select_the_index_host(host_url: str, tmp_path: Path) -> None:
    from ordo.app import create_vector_index
    from ordo.config import Settings

    index = create_vector_index(Settings(data_dir=tmp_path, vector_backend="qdrant", qdrant_url=host_url))
    assert isinstance(index, HostedVectorIndex)
