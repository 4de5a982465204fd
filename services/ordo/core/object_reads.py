"""Bounded reads of objects named by a bucket listing (the bucket watcher, ``s3://`` server-side ingest).

Why: a listing's size is a claim made before the read. An object replaced between LIST and GET (or a server
that reports sizes wrongly) would otherwise be read whole into memory, however large. Stores that can
stream (S3) read at most ``max_bytes + 1`` bytes; the rest are checked after the read (local objects are
written by Ordo itself, under the same limit)."""

from __future__ import annotations

from ordo.errors import InvalidInput, Reason
from ordo.ports.object_store import ObjectStore, bounded_reader


def read_object_bounded(store: ObjectStore, key: str, max_bytes: int) -> bytes:
    """The object's bytes; ``FILE_TOO_LARGE`` (an :class:`InvalidInput`) past ``max_bytes``, checked while
    reading."""
    reader = bounded_reader(store)
    data = reader.get_bounded(key, max_bytes) if reader is not None else store.get(key)
    if len(data) > max_bytes:
        raise InvalidInput(f"the object is over the limit of {max_bytes} bytes", reason=Reason.FILE_TOO_LARGE)
    return data
