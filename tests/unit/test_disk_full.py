"""Disk full while writing: the ingest core on a data directory that runs out of space mid-upload.

Provoked for real on a small tmpfs mounted for the test (``mount -t tmpfs -o size=…``, then a remount
with more room, as an operator would free space). Where mounting is not permitted (not root), the same
fault is injected at the object store's write — a fake, used only because the fault cannot be provoked
there; the assertions are the same."""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordo.adapters import local_store
from ordo.core.ingestion import Outcome
from ordo.errors import OrdoError, Unavailable
from tests.unit.test_recovery import _Stack


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """(data dir, whether it is a real 1.5 MB tmpfs)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    real = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mount, real
    finally:
        if real:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


def test_a_full_disk_fails_the_upload_cleanly_and_loses_nothing_acknowledged(
    small_disk: tuple[Path, bool], coco_images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, real = small_disk
    stack = _Stack(root, batch=4)
    if not real:  # ENOSPC where the store flushes a written object, as a full disk reports it
        real_fsync, written = os.fsync, {"n": 0}

        def fsync(fd: int) -> None:
            written["n"] += os.fstat(fd).st_size
            if written["n"] > 1_200_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_fsync(fd)

        monkeypatch.setattr(local_store.os, "fsync", fsync)
        stack.store._fsync = True  # the test stack skips fsync for speed; this path needs it
    job = stack.core.start_job()
    acknowledged, refused = [], 0
    for path in coco_images[:20]:
        try:
            result = stack.core.ingest_bytes(job.job_id, path.read_bytes(), file_name=path.name)
        except OrdoError as exc:  # the service answers UNAVAILABLE with the reason; the process lives on
            assert isinstance(exc, Unavailable) and ("full" in exc.message or "space" in exc.message), exc
            refused += 1
            continue
        if result.outcome is Outcome.NEW:
            acknowledged.append(result.asset_id)
    assert acknowledged and refused  # the disk filled up mid-way
    # Space comes back (or the process restarts): the reconciler queues what the full disk stranded.
    if real:
        _grow(root)
    else:
        monkeypatch.undo()
    after = _Stack(root, batch=4)
    after.reconciler().run(full_scan=True)
    queued = [r.asset_id for t in after.drain() for r in t.samples]
    assert set(acknowledged) <= set(queued)
    assert len(queued) == len(set(queued))  # and each once
    assets, _ = after.catalog.list(page_size=100)  # every record readable: nothing half-written
    assert {a.asset_id for a in assets} >= set(acknowledged)
