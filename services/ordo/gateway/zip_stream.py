"""A zip of assets' originals, written while it streams (never held whole in memory).

Members are stored, not deflated (photos do not compress); each original streams from GetAssetContent into the
archive, and what the archive wrote is handed on after each piece.
"""

from __future__ import annotations

import contextvars
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

from ordo.client import OrdoClient
from ordo.v1 import common_pb2, ingest_pb2


def zip_name(file_name: str, asset_id: str, taken: set[str]) -> str:
    """A safe, unique member name: the base name only (no folders, no '..', no drive letters), with the
    asset id's start added when two files share a name."""
    base = PurePosixPath(file_name.replace("\\", "/")).name.strip().lstrip(".") or asset_id[:12]
    base = "".join(c if c.isprintable() and c not in ':*?"<>|' else "_" for c in base)[:120]
    name = base
    if name in taken:
        stem, dot, ext = base.rpartition(".")
        name = f"{stem}-{asset_id[:8]}.{ext}" if dot else f"{base}-{asset_id[:8]}"
    taken.add(name)
    return name


class _Pipe:
    """A write-only file ZipFile streams into; the response takes what was written after each piece."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _chunks(client: OrdoClient, assets: Sequence[common_pb2.Asset]) -> Iterator[bytes]:
    pipe = _Pipe()
    taken: set[str] = set()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[arg-type]
        for asset in assets:
            request = ingest_pb2.GetAssetContentRequest(
                asset_id=asset.asset_id, variant=ingest_pb2.ASSET_CONTENT_VARIANT_ORIGINAL
            )
            with archive.open(zip_name(asset.file_name, asset.asset_id, taken), "w", force_zip64=True) as out:
                for piece in client.ingest.GetAssetContent(request):
                    out.write(piece.chunk)
                    yield pipe.take()
    yield pipe.take()


def zip_originals(client: OrdoClient, assets: Sequence[common_pb2.Asset]) -> Iterator[bytes]:
    """The zip's bytes, piece by piece. Call in the request's context: it is copied now (not when the response
    first pulls), so the gRPC calls made while the response streams, on other threads, carry the caller's key."""
    return _in_context(contextvars.copy_context(), _chunks(client, assets))


def _in_context(context: contextvars.Context, stream: Iterator[bytes]) -> Iterator[bytes]:
    while True:
        data = context.run(next, stream, None)
        if data is None:
            return
        if data:
            yield data
