"""Bounded reads and walks of local files named by a client (the CLI) or by a server-side ingest request.

Why this exists: a folder is hostile input too. A FIFO named ``pipe.jpg`` blocks ``open()`` forever, a
link to ``/dev/zero`` never ends, a symlink loop raises from deep inside ``os.walk``, and an extension
says nothing about what a file holds. So every read here:

* opens with ``O_NONBLOCK`` (a FIFO opens at once instead of waiting for a writer) and then checks with
  ``fstat`` on the open descriptor (no race with a rename) that it is a regular file;
* reads at most ``max_bytes + 1`` bytes, so a file that grows while read, or lies in ``stat``, is still
  cut off (``FILE_TOO_LARGE``);
* turns every failure into an :class:`~ordo.errors.OrdoError` with a stable reason, so callers record a
  per-file failure and go on with the batch.

Walks yield *every* entry they meet, each either a candidate file or a :class:`Skipped` with its reason
(hidden, not a regular file, a link to a folder, not an image by its first bytes), so nothing is dropped
silently: callers count the skips in the job. Whether a file is an image is decided by its magic bytes
(:func:`ordo.imaging.sniff_mime`), never by its name: a JPEG without an extension is ingested, a PDF named
``x.jpg`` is reported.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ordo.errors import InvalidInput, NotFound, OrdoError, Reason, TooLarge

UNREADABLE: Final = Reason.UNREADABLE
NOT_A_FILE: Final = Reason.NOT_A_FILE
NOT_FOUND: Final = Reason.NOT_FOUND
FILE_TOO_LARGE: Final = Reason.FILE_TOO_LARGE
HIDDEN: Final = Reason.HIDDEN
NOT_AN_IMAGE: Final = Reason.NOT_AN_IMAGE
UNSUPPORTED_FORMAT: Final = Reason.UNSUPPORTED_FORMAT

# Enough for every magic number sniff_mime knows (ISO-BMFF brands need a few hundred bytes).
SNIFF_BYTES: Final = 4096
READ_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True)
class Skipped:
    """A walk entry that will not be read, and why (counted as a failure of the job that met it)."""

    path: Path
    reason: str
    message: str


def _os_error(path: Path, exc: OSError) -> OrdoError:
    try:  # a socket (ENXIO) or another special file that cannot even be opened
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            return InvalidInput(f"{path.name}: not a regular file ({_kind(mode)})", reason=NOT_A_FILE)
    except OSError:
        pass
    if exc.errno == errno.ENOENT:
        return NotFound(f"{path.name}: no such file (or a link to nothing)", reason=NOT_FOUND)
    if exc.errno == errno.ELOOP:
        return InvalidInput(f"{path.name}: a symbolic link loop", reason=UNREADABLE)
    return InvalidInput(f"{path.name}: cannot read it ({exc.strerror or type(exc).__name__})", reason=UNREADABLE)


class BoundedFile:
    """An open regular file that refuses to yield more than ``max_bytes`` (use as a context manager)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise _os_error(path, exc) from None
        try:
            info = os.fstat(self._fd)
            if not stat.S_ISREG(info.st_mode):
                kind = _kind(info.st_mode)
                raise InvalidInput(f"{path.name}: not a regular file ({kind})", reason=NOT_A_FILE)
            self.size = info.st_size
            if self.size > max_bytes:
                raise TooLarge(
                    f"{path.name}: {self.size} bytes is over the limit of {max_bytes}", reason=FILE_TOO_LARGE
                )
            os.set_blocking(self._fd, True)
        except BaseException:
            os.close(self._fd)
            raise
        self._read = 0

    def __enter__(self) -> BoundedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def read(self, n: int = READ_CHUNK) -> bytes:
        """Up to ``n`` bytes ('' at the end); raises FILE_TOO_LARGE once the file passes ``max_bytes``."""
        try:
            data = os.read(self._fd, min(n, self.max_bytes + 1 - self._read) or 1)
        except OSError as exc:
            raise _os_error(self.path, exc) from None
        self._read += len(data)
        if self._read > self.max_bytes:
            raise TooLarge(
                f"{self.path.name}: grew past the limit of {self.max_bytes} bytes while being read",
                reason=FILE_TOO_LARGE,
            )
        return data

    def chunks(self, size: int = READ_CHUNK) -> Iterator[bytes]:
        while data := self.read(size):
            yield data


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The whole of a regular file of at most ``max_bytes``; an OrdoError with a reason otherwise."""
    with BoundedFile(path, max_bytes) as handle:
        return b"".join(handle.chunks())


def sniff(path: Path) -> Skipped | None:
    """``None`` when the first bytes look like an image Ordo can take; else why not (without reading more)."""
    from ordo.imaging import accepted_mime_types, sniff_mime

    try:
        with BoundedFile(path, 1 << 62) as handle:
            head = handle.read(SNIFF_BYTES)
    except OrdoError as exc:
        return Skipped(path, exc.reason, exc.message)
    if not head:
        return None  # empty: let the ingest report EMPTY_FILE like any other empty upload
    mime = sniff_mime(head)
    if mime is None:
        return Skipped(path, NOT_AN_IMAGE, f"{path.name}: not an image (by its content)")
    if mime not in accepted_mime_types():
        return Skipped(path, UNSUPPORTED_FORMAT, f"{path.name}: {mime} files are not supported")
    return None


def walk(root: Path, recursive: bool = True) -> Iterator[Path | Skipped]:
    """Every entry under ``root`` in a stable order: image files as paths, everything else as Skipped.

    Links to files are followed (reading resolves them); links to folders are not descended (that is how
    loops and ``/`` links would make a walk endless), and are reported. Hidden entries (``.name``) are
    reported, not read; a hidden folder counts as one entry."""
    if not root.is_dir():
        yield _classify(root)
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Skipped(folder, UNREADABLE, f"{folder.name}: cannot list this folder ({exc.strerror})")
            continue
        subfolders: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                yield Skipped(path, HIDDEN, f"{entry.name}: hidden {'folder' if _is_dir(entry) else 'file'}")
            elif entry.is_symlink() and _is_dir(entry):
                yield Skipped(path, NOT_A_FILE, f"{entry.name}: a link to a folder (not followed)")
            elif _is_dir(entry):
                if recursive:
                    subfolders.append(path)
                else:
                    yield Skipped(path, NOT_A_FILE, f"{entry.name}: a sub-folder (not recursive)")
            else:
                yield _classify(path)
        stack.extend(reversed(subfolders))


def _classify(path: Path) -> Path | Skipped:
    skipped = sniff(path)
    return path if skipped is None else skipped


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop, for one
        return False


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"
