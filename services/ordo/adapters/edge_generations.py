"""Where an embedded index's shard lives across out-of-process rebuilds (``ordo.adapters.edge_rebuild``).

The logical index ``path`` names a family of folders: ``path`` itself (the layout before rebuilds),
generations ``path.g1``, ``path.g2``… written by rebuilds, ``path.build`` (a rebuild's dump) and the
pointer file ``path.live`` naming the generation that is live. The pointer is written then renamed,
both fsynced, so a crash leaves either the old or the new generation live, never neither; whatever
else is left is deleted at the next open (:func:`clean_leftovers`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def live_pointer(path: Path) -> Path:
    return path.with_name(path.name + ".live")


def live_dir(path: Path) -> Path:
    """Where the shard of logical index ``path`` lives now."""
    pointer = live_pointer(path)
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return path
    return path.with_name(name) if name else path


def generations(path: Path) -> Iterator[Path]:
    yield from path.parent.glob(f"{path.name}.g*")


def clean_leftovers(path: Path) -> None:
    """Delete what a crash mid-rebuild or mid-swap left: builds, and shards that are no longer live."""
    live = live_dir(path)
    build = path.with_name(path.name + ".build")
    if build.exists():
        shutil.rmtree(build, ignore_errors=True)
    for gen in generations(path):
        if gen != live and gen.is_dir():
            shutil.rmtree(gen, ignore_errors=True)
    if live != path and path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def next_generation(path: Path) -> Path:
    numbers = [int(g.name.rsplit(".g", 1)[1]) for g in generations(path) if g.name.rsplit(".g", 1)[1].isdigit()]
    return path.with_name(f"{path.name}.g{max(numbers, default=0) + 1}")


def point_live(path: Path, generation: Path) -> None:
    pointer = live_pointer(path)
    tmp = pointer.with_name(pointer.name + ".tmp")
    with tmp.open("w") as out:
        out.write(generation.name + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, pointer)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a power loss
    finally:
        os.close(fd)
