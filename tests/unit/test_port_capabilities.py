"""Adapters declare what they can do beyond their port (``capabilities``), and the flags match the methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.adapters.qdrant_index import QdrantServerIndex
from ordo.adapters.s3_store import S3Store
from ordo.ports.object_store import StoreCapabilities, bounded_reader
from ordo.ports.vector_index import IndexCapabilities
from ordo_devstack.index_host.client import HostedVectorIndex


@pytest.mark.parametrize("cls", [EdgeVectorIndex, QdrantServerIndex, HostedVectorIndex])
def test_index_capabilities_match_the_methods(cls: type) -> None:
    caps = cls.capabilities
    assert isinstance(caps, IndexCapabilities)
    assert caps.optimize == (hasattr(cls, "optimize") and hasattr(cls, "maintain"))
    assert caps.aliases == hasattr(cls, "set_alias")
    assert caps.shared_client == hasattr(cls, "for_collection")


def test_only_the_embedded_index_has_a_single_writer() -> None:
    assert EdgeVectorIndex.capabilities.single_writer
    assert not QdrantServerIndex.capabilities.single_writer
    assert not HostedVectorIndex.capabilities.single_writer


@pytest.mark.parametrize("cls", [LocalDirectoryStore, S3Store])
def test_store_capabilities_match_the_methods(cls: type) -> None:
    caps = cls.capabilities
    assert isinstance(caps, StoreCapabilities)
    assert caps.bounded_reads == hasattr(cls, "get_bounded")


def test_a_store_without_bounded_reads_is_read_whole(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    assert bounded_reader(store) is None
