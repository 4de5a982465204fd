"""Bounded local reads: nothing hangs or streams forever, and every refusal has its reason."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ordo.core import local_files
from ordo.errors import OrdoError
from tests.hostile.corpus import Case, build


def reason_of(path: Path, max_bytes: int = 1024) -> str:
    with pytest.raises(OrdoError) as caught:
        local_files.read_bounded(path, max_bytes)
    return caught.value.reason


def test_fifo_device_loop_and_dangling_link_are_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    (tmp_path / "gone.jpg").symlink_to("nowhere.jpg")
    started = time.monotonic()
    assert reason_of(tmp_path / "pipe.jpg") == "NOT_A_FILE"  # no writer: a blocking open would wait forever
    assert reason_of(tmp_path / "zero.jpg") == "NOT_A_FILE"  # would stream forever
    assert reason_of(tmp_path / "loop.jpg") == "UNREADABLE"
    assert reason_of(tmp_path / "gone.jpg") == "NOT_FOUND"
    assert reason_of(tmp_path) == "NOT_A_FILE"
    assert time.monotonic() - started < 1.0


def test_size_is_checked_before_and_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\0" * 2000)
    assert reason_of(path, max_bytes=1000) == "FILE_TOO_LARGE"
    small = tmp_path / "small.jpg"
    small.write_bytes(b"x" * 100)
    with local_files.BoundedFile(small, 150) as handle:
        with small.open("ab") as grower:  # the file grows past the limit while it is read
            grower.write(b"y" * 100)
        with pytest.raises(OrdoError) as caught:
            b"".join(handle.chunks(64))
    assert caught.value.reason == "FILE_TOO_LARGE"
    assert local_files.read_bounded(small, 1000) == b"x" * 100 + b"y" * 100


def test_the_walk_reports_every_entry_of_the_corpus(tmp_path: Path) -> None:
    cases = build(tmp_path / "c")
    entries = list(local_files.walk(tmp_path / "c"))
    skipped = {str(e.path.relative_to(tmp_path / "c")): e.reason for e in entries if isinstance(e, local_files.Skipped)}
    files = {str(e.relative_to(tmp_path / "c")) for e in entries if not isinstance(e, local_files.Skipped)}
    walk_refused: list[Case] = [c for c in cases if c.stage == "walk" and c.name != "oversized.jpg"]
    assert {c.name: c.reason for c in walk_refused} == skipped
    assert {c.name for c in cases if c.outcome == "ok"} <= files
    assert "no_extension" in files and "jpeg_named.txt" in files  # decided by content, not by name
