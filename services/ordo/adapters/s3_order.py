"""Byte order out of S3 servers that list folder by folder (``S3Store.list`` and ``list_children``).

The port promises keys in byte order; servers built on a file tree (SeaweedFS) list a folder ``a``
before its siblings ``a!``, ``a-b``, ``a.jpg``, which byte order puts first (``-`` and ``.`` sort before
``/``). These are the small pieces ``S3Store`` reorders the stream with: which siblings are displaced
(:func:`sorts_before_folder`), a ``start_after`` that neither order can skip a key with
(:func:`server_start_after`), and a look-ahead over the stream (:class:`Peekable`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ordo.ports.object_store import ObjectInfo

Kind = Literal["file", "block", "refetch"]
#: A pending element of one folder level: (rank, tie-break, kind, payload). ``rank`` is the name for a
#: file and ``name + "/"`` for a folder, which is the byte-order rank of everything it contains.
Pending = tuple[str, int, Kind, object]


def sorts_before_folder(name: str, folder: str) -> bool:
    """Whether sibling ``name`` ranks after folder ``folder`` by name but before ``folder + "/"`` in byte
    order: it extends ``folder`` with a character below '/' (space ! " # $ % & ' ( ) * + , - .).
    These siblings are the only place where folder-by-folder order and byte order disagree."""
    return len(name) > len(folder) and name.startswith(folder) and name[len(folder)] < "/"


def server_start_after(bound: str) -> str | None:
    """A ``start_after`` for the server that cannot skip any key greater than ``bound``.

    A byte-ordered server would accept ``bound`` itself, but SeaweedFS skips keys ranked before it
    folder by folder, and the whole folder ``bound/`` too. A prefix ``s = bound[:j]`` is safe on both
    when it holds no character below '/' and ``bound[j] > '/'``; the longest such prefix skips most.
    """
    below = next((i for i, ch in enumerate(bound) if ch < "/"), len(bound))
    for j in range(min(below, len(bound) - 1), 0, -1):
        if bound[j] > "/":
            return bound[:j]
    return None


class Peekable:
    """An iterator of ``ObjectInfo`` with one-item lookahead and push-back."""

    def __init__(self, items: Iterable[ObjectInfo]) -> None:
        self._it = iter(items)
        self._stack: list[ObjectInfo] = []

    def peek(self) -> ObjectInfo | None:
        if not self._stack:
            try:
                self._stack.append(next(self._it))
            except StopIteration:
                return None
        return self._stack[-1]

    def take(self) -> ObjectInfo:
        item = self.peek()
        assert item is not None
        return self._stack.pop()

    def push_back(self, items: list[ObjectInfo]) -> None:
        self._stack.extend(reversed(items))

    def skip_prefix(self, prefix: str) -> None:
        while (item := self.peek()) is not None and item.key.startswith(prefix):
            self.take()
