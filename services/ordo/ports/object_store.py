"""Object store port: where originals, thumbnails and records live (local directory or S3)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True)
class StoreCapabilities:
    """What a store does beyond the port's operations, declared by each adapter (a class attribute)."""

    # ``get_bounded()`` (:class:`BoundedReader`): reads stop past a size as the bytes stream in, so an
    # object larger than its listing claimed is never held whole (S3). Local objects are written by Ordo
    # under the same limit, so a plain read is enough there.
    bounded_reads: bool = False


@runtime_checkable
class ObjectStore(Protocol):
    """Flat key → bytes store with '/'-separated keys.

    Errors: a missing key raises ``ordo.errors.NotFound``; an unreachable backend raises
    ``ordo.errors.Unavailable``. Keys are listed in lexicographic (byte) order on every adapter,
    which is what makes ``start_after`` pagination portable.
    """

    backend: str
    capabilities: StoreCapabilities

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def delete(self, key: str) -> None:
        """Deleting a missing key is not an error (idempotent)."""
        ...

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (recursive), in key order, strictly after ``start_after``."""
        ...

    def list_children(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[str]:
        """Immediate 'sub-folders' under ``prefix`` (names without the prefix or trailing '/'), in order."""
        ...

    def check(self) -> None:
        """Raise ``Unavailable`` unless the store answers (used by health checks)."""
        ...


class BoundedReader(ObjectStore, Protocol):
    """A store that can stop reading past a size (``StoreCapabilities.bounded_reads``)."""

    def get_bounded(self, key: str, max_bytes: int) -> bytes:
        """At most ``max_bytes + 1`` bytes of the object."""
        ...


def bounded_reader(store: ObjectStore) -> BoundedReader | None:
    """``store`` as a :class:`BoundedReader` when it declares that capability, else None."""
    return cast(BoundedReader, store) if store.capabilities.bounded_reads else None


def synced_together(store: ObjectStore) -> AbstractContextManager[object]:
    """A block whose puts become durable as one group when it ends, where the store can group them
    (the local directory: one journal commit instead of two fsyncs per object); elsewhere (S3, whose puts
    are durable when they return) a plain block. Only for objects whose order on disk does not matter
    among them."""
    group = getattr(store, "synced_together", None)
    if callable(group):
        return cast(AbstractContextManager[object], group())
    return contextlib.nullcontext()
