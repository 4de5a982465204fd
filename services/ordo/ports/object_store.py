"""Object store port: where originals, thumbnails and records live (local directory or S3)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


@runtime_checkable
class ObjectStore(Protocol):
    """Flat key → bytes store with '/'-separated keys.

    Errors: a missing key raises ``ordo.errors.NotFound``; an unreachable backend raises
    ``ordo.errors.Unavailable``. Keys are listed in lexicographic (byte) order on every adapter,
    which is what makes ``start_after`` pagination portable.
    """

    backend: str

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
