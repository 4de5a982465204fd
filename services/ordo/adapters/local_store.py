"""Object store on a local directory (the embedded mode): one file per key under ``root``.

Why it is built this way:

* **Atomic writes**: every ``put`` writes a temp file in the destination folder, fsyncs it and
  ``os.replace``-s it over the key, so a reader sees the old bytes or the new bytes and a crash never
  leaves a half-written object. Then it fsyncs the folder (and the parents of folders it created): the
  rename is a change to the folder, and until that is on disk a power loss could lose a whole object
  whose upload was already acknowledged (ext4 commits its journal only every few seconds). Temp files
  carry a reserved name (``.ordo-tmp-*``) that no valid key can have, so a leftover from a crash is never
  listed.
* **Durable together** (:meth:`LocalDirectoryStore.synced_together`): objects whose order on disk does not
  matter (an original and its date-order markers, a chunk's thumbnails, a task's READY records) can be
  written as one group: every temp file is written, then all are fsynced, renamed over their keys, and
  their folders fsynced. On ext4 the first fsync of each step commits the journal with the whole group's
  changes and the others find theirs already committed, so a group costs about two commits instead of two
  per object (an image's upload wrote six objects, ~12 fsyncs: issue 18). Each object is still atomic
  (old or new bytes, the data is on disk before the rename); the group's objects appear when the block
  ends, all durable, and none of them if it raises.
* **Portable keys only** (:func:`validate_key`): a key must be storable on every adapter, so the rules
  are the intersection of what a POSIX file system and an S3 server accept, and they make escaping the
  root impossible (no ``..``, no absolute paths, no backslashes).
* **Byte order without sorting everything**: ``list`` walks one folder at a time, sorting a folder's
  entries with a sub-folder ``x`` ranked as ``"x/"``. That ranking is what makes a depth-first walk
  come out in exact byte order of the full keys (``"x-1"`` < ``"x/a"`` < ``"x0"``), which a plain sorted
  walk gets wrong; memory stays proportional to one folder, not to the store.
* **No empty folders**: ``delete`` removes the folders it empties, so ``list_children`` reports the same
  folders an S3 server would (S3 has no folders, only key prefixes).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat as stat_mod
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from ordo.errors import Conflict, InvalidInput, NotFound, Reason, Unavailable
from ordo.ports.object_store import ObjectInfo, StoreCapabilities

#: Temp files start with this; :func:`validate_key` rejects it as a key component.
TMP_PREFIX = ".ordo-tmp-"
#: S3's limit on a whole key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: The usual file-name limit (ext4, xfs, APFS...), in UTF-8 bytes.
MAX_COMPONENT_BYTES = 255


def _fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename into it, a new sub-folder) survive a power loss."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    """Flush a file written earlier (by any handle) to disk; one replaced or deleted since needs nothing
    from us (whoever did that made their own change durable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Threads that flush a group's files at once (they wait on the disk, not the CPU). The pool starts its
#: threads on first use, so a process that never writes a group has none.
_FLUSHERS = 8
_flush_pool = ThreadPoolExecutor(_FLUSHERS, thread_name_prefix="ordo-fsync")


def _forget_flush_pool() -> None:
    """A forked child has none of the parent's threads: it gets a pool of its own."""
    global _flush_pool
    _flush_pool = ThreadPoolExecutor(_FLUSHERS, thread_name_prefix="ordo-fsync")


os.register_at_fork(after_in_child=_forget_flush_pool)


def _all_at_once(flush: Callable[[Path], None], paths: list[Path]) -> None:
    """``flush`` every path, concurrently when there are several, and return once all are done (the first
    error raised). Why: one fsync after another each wait for the disk, while fsyncs in flight together are
    written out together (ext4 joins them in one journal commit): a group of 32 files and their 16 folders
    took 14 ms one by one and 8 ms at once on this project's VM disk (issue 18: the upload path's thread
    spent most of its time in these waits)."""
    if len(paths) < 2:
        for path in paths:
            flush(path)
        return
    futures = [_flush_pool.submit(flush, path) for path in paths]
    wait(futures)  # all settled before any error is raised: the caller's clean-up never races a flush
    for future in futures:
        future.result()


@dataclass
class _Group:
    """A :meth:`LocalDirectoryStore.synced_together` block's temp files (to fsync and rename over their
    keys) and the folders whose entries change (to fsync after the renames), in order."""

    renames: list[tuple[str, Path]] = field(default_factory=list)
    folders: dict[Path, None] = field(default_factory=dict)  # an ordered set
    #: Temp files with no bytes (date-order markers): nothing of theirs to flush, only the folder entry that
    #: the folders' fsync makes durable, so they skip the file fsync (four per upload: issue 18).
    empty: set[str] = field(default_factory=set)


#: ASCII control characters (and DEL): no portable key has one. A regex, not a per-character loop: every
#: object access validates its key, and the loop was ~0.4 ms of an upload's CPU (issue 18).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _component_problem(part: str) -> str | None:
    """Why one '/'-separated component cannot be a file name everywhere (None when it can)."""
    if part == "":
        return "empty path component ('//', or a leading or trailing '/')"
    if part in (".", ".."):
        return f"'{part}' path component"
    if "\\" in part:
        return "backslash (a path separator on Windows)"
    if _CONTROL.search(part):
        return "control character"
    if part.startswith(TMP_PREFIX):
        return f"component starting with the reserved '{TMP_PREFIX}'"
    if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
        return f"path component longer than {MAX_COMPONENT_BYTES} UTF-8 bytes"
    return None


def validate_key(key: str) -> str:
    """Return ``key`` if every adapter can store it, else raise ``InvalidInput``.

    Shared by the adapters so that a key written on one backend can be written on the other: the
    rules are the intersection of POSIX file names and S3 object names.
    """
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("object key must be a non-blank string", reason=Reason.BAD_OBJECT_KEY)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"object key {key!r} is not valid Unicode", reason=Reason.BAD_OBJECT_KEY) from None
    if size > MAX_KEY_BYTES:
        raise InvalidInput(f"object key is longer than {MAX_KEY_BYTES} UTF-8 bytes", reason=Reason.BAD_OBJECT_KEY)
    for part in key.split("/"):
        problem = _component_problem(part)
        if problem:
            raise InvalidInput(f"object key {key!r} is not allowed: {problem}", reason=Reason.BAD_OBJECT_KEY)
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can only match valid keys' folders (``""`` matches everything).

    Every component before the last '/' must be a valid component; the trailing partial component
    only must not contain characters no key can contain. Mainly this keeps ``..`` out of listings.
    """
    if not isinstance(prefix, str):
        raise InvalidInput("prefix must be a string", reason=Reason.BAD_OBJECT_PREFIX)
    if not prefix:
        return prefix
    *folders, partial = prefix.split("/")
    for part in folders:
        problem = _component_problem(part)
        if problem:
            raise InvalidInput(f"prefix {prefix!r} is not allowed: {problem}", reason=Reason.BAD_OBJECT_PREFIX)
    if "\\" in partial or _CONTROL.search(partial):
        raise InvalidInput(f"prefix {prefix!r} contains characters no key can contain", reason=Reason.BAD_OBJECT_PREFIX)
    return prefix


def folder_prefix(prefix: str) -> str:
    """``list_children`` treats its prefix as a folder: ``"assets"`` means ``"assets/"``."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _is_valid_name(name: str) -> bool:
    """Whether a directory entry can be part of a key (others, e.g. temp files, are not listed)."""
    if _component_problem(name) is not None:
        return False
    try:
        name.encode("utf-8")  # names that are not UTF-8 on disk decode to lone surrogates
    except UnicodeEncodeError:
        return False
    return True


class LocalDirectoryStore:
    """``ObjectStore`` on a directory; safe for several processes sharing the same root."""

    backend = "local"
    capabilities = StoreCapabilities()  # objects here are written by Ordo under the size limit

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        """``fsync=False`` skips flushing each object to disk: faster bulk writes for throw-away data,
        at the price of possibly empty objects after a power loss (never half-written ones)."""
        self.root = Path(root)
        self._fsync = fsync
        self._local = threading.local()  # the open synced_together block of each thread, if any
        # Create the root eagerly so a fresh data dir works, but defer failures to check()/operations:
        # a service must be able to start and report itself unhealthy rather than crash at import.
        with contextlib.suppress(OSError):
            self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalDirectoryStore({str(self.root)!r})"

    # --- durability ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def synced_together(self) -> Iterator[None]:
        """Puts made by this thread inside the block form one group (see the module notes): written as temp
        files, then fsynced, renamed over their keys and their folders fsynced when the block ends, about
        two journal commits for the lot instead of two per object. For objects whose order on disk does not
        matter among them; whatever must follow them goes after the block. Readers see the group's objects
        when the block ends (all durable), none if it raises. A nested block joins the outer one."""
        if not self._fsync or getattr(self._local, "group", None) is not None:
            yield
            return
        group = self._local.group = _Group()
        done = 0
        try:
            yield
            _all_at_once(_fsync_file, [Path(tmp) for tmp, _ in group.renames if tmp not in group.empty])
            for tmp, path in group.renames:
                os.replace(tmp, path)
                done += 1
            _all_at_once(_fsync_dir, list(group.folders))
        except OSError as e:
            raise Unavailable(f"cannot write objects under {self.root}: {e}", reason=Reason.STORAGE_IO) from e
        finally:
            self._local.group = None
            for tmp, _ in group.renames[done:]:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    # --- single objects --------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Atomically create or replace ``key``. ``content_type`` is not stored (files have none)."""
        path = self._path(key)
        group: _Group | None = getattr(self._local, "group", None)
        # A concurrent delete() may remove the (empty) parent folder between mkdir and the temp file;
        # retrying covers that race without any cross-process lock.
        for attempt in range(5):
            try:
                created = self._make_folders(path.parent)
                folders = (path.parent, *(c.parent for c in created))
                if group is not None:  # fsynced, renamed and made durable when the group's block ends
                    tmp = self._write_temp(path, data, sync=False)
                    group.renames.append((tmp, path))
                    if not data:
                        group.empty.add(tmp)
                    group.folders.update(dict.fromkeys(folders))
                    return
                self._write_atomically(path, data)
                if self._fsync:
                    for folder in folders:
                        _fsync_dir(folder)
                return
            except FileNotFoundError:
                if attempt == 4:
                    raise Unavailable(f"cannot write {key!r} under {self.root}: folder keeps vanishing") from None
            except (NotADirectoryError, FileExistsError) as e:
                if not self.root.is_dir():
                    raise Unavailable(
                        f"object store root {self.root} is not a directory", reason=Reason.STORAGE_IO
                    ) from e
                raise Conflict(
                    f"cannot write {key!r}: a part of its folder path is already an object",
                    reason=Reason.OBJECT_KEY_CONFLICT,
                ) from None
            except IsADirectoryError:
                raise Conflict(
                    f"cannot write {key!r}: it is a folder holding other objects", reason=Reason.OBJECT_KEY_CONFLICT
                ) from None
            except OSError as e:
                raise Unavailable(f"cannot write {key!r} under {self.root}: {e}", reason=Reason.STORAGE_IO) from e

    @staticmethod
    def _make_folders(folder: Path) -> list[Path]:
        """``mkdir -p``; returns the folders it created, deepest first (their parents need an fsync)."""
        missing = []
        while not folder.is_dir() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for m in reversed(missing):
            with contextlib.suppress(FileExistsError):  # made meanwhile by another writer: fine
                m.mkdir()
        return missing

    def _write_atomically(self, path: Path, data: bytes) -> None:
        tmp = self._write_temp(path, data, sync=self._fsync and bool(data))
        try:
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @staticmethod
    def _write_temp(path: Path, data: bytes, *, sync: bool) -> str:
        """``data`` in a new temp file beside ``path`` (fsynced when ``sync``); returns its name."""
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; objects are meant to be readable like any file
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"object {key!r} not found", reason=Reason.OBJECT_NOT_FOUND) from None
        except OSError as e:
            raise Unavailable(f"cannot read {key!r} under {self.root}: {e}", reason=Reason.STORAGE_IO) from e

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"object {key!r} not found", reason=Reason.OBJECT_NOT_FOUND) from None
        except OSError as e:
            raise Unavailable(f"cannot stat {key!r} under {self.root}: {e}", reason=Reason.STORAGE_IO) from e
        if not stat_mod.S_ISREG(st.st_mode):
            raise NotFound(f"object {key!r} not found (it is a folder)", reason=Reason.OBJECT_NOT_FOUND)
        return ObjectInfo(key=key, size=st.st_size)

    def delete(self, key: str) -> None:
        """Idempotent; also removes the folders the deletion leaves empty (up to, not including, root)."""
        path = self._path(key)
        if path.is_dir():
            return  # a folder is not an object (and unlink() on one fails differently per OS)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # missing, or a folder (which is not an object): nothing to delete
        except OSError as e:
            raise Unavailable(f"cannot delete {key!r} under {self.root}: {e}", reason=Reason.STORAGE_IO) from e
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()  # fails (harmlessly) as soon as a folder still holds anything
            except OSError:
                break
            parent = parent.parent

    # --- listings --------------------------------------------------------------------------------
    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in byte order of their keys, strictly after ``start_after``.

        Lazy: folders are read as the iteration reaches them, so a caller that stops early (a page of
        results) does not pay for the whole tree.
        """
        validate_prefix(prefix)
        folder, _, name_prefix = prefix.rpartition("/")
        base = folder + "/" if folder else ""
        directory = self.root.joinpath(*folder.split("/")) if folder else self.root
        return self._walk(directory, base, name_prefix, start_after)

    def _walk(self, directory: Path, base: str, name_prefix: str, start_after: str) -> Iterator[ObjectInfo]:
        for name, is_dir, size in self._sorted_entries(directory, name_prefix):
            key = base + name
            if is_dir:
                sub = key + "/"
                # Every key below starts with ``sub``: skip the folder when all of them are <= start_after.
                if start_after > sub and not start_after.startswith(sub):
                    continue
                yield from self._walk(directory / name, sub, "", start_after)
            elif key > start_after:
                yield ObjectInfo(key=key, size=size)

    def _sorted_entries(self, directory: Path, name_prefix: str) -> list[tuple[str, bool, int]]:
        """(name, is_folder, size) of a folder's entries, sub-folders ranked as ``name + "/"``."""
        entries: list[tuple[str, bool, int]] = []
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if not entry.name.startswith(name_prefix) or not _is_valid_name(entry.name):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            entries.append((entry.name, True, 0))
                        elif entry.is_file(follow_symlinks=False):
                            entries.append((entry.name, False, entry.stat(follow_symlinks=False).st_size))
                    except FileNotFoundError:
                        continue  # deleted while we were listing
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise Unavailable(f"cannot list {directory}: {e}", reason=Reason.STORAGE_IO) from e
        entries.sort(key=lambda e: e[0] + "/" if e[1] else e[0])
        return entries

    def list_children(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[str]:
        """Names of the folders directly under ``prefix`` that hold at least one object.

        Ordered by the byte order of the folders' key prefixes (``name + "/"``), i.e. the order in which
        their objects appear in ``list``; ``start_after`` is a folder name, strictly excluded.
        """
        if limit < 0:
            raise InvalidInput("limit must not be negative", reason=Reason.BAD_LIMIT)
        folder = folder_prefix(validate_prefix(prefix))
        directory = self.root.joinpath(*folder.rstrip("/").split("/")) if folder else self.root
        bound = start_after + "/" if start_after else ""
        candidates = sorted(
            (name + "/" for name, is_dir, _ in self._sorted_entries(directory, "") if is_dir and name + "/" > bound)
        )
        names: list[str] = []
        for candidate in candidates:
            if len(names) >= limit:
                break
            # Folders emptied by a crash mid-delete (or holding only temp files) are not "children".
            if self._has_objects(directory / candidate[:-1]):
                names.append(candidate[:-1])
        return names

    def _has_objects(self, directory: Path) -> bool:
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if not _is_valid_name(entry.name):
                        continue
                    if entry.is_file(follow_symlinks=False):
                        return True
                    if entry.is_dir(follow_symlinks=False) and self._has_objects(Path(entry.path)):
                        return True
        except OSError:
            return False
        return False

    def check(self) -> None:
        if not self.root.is_dir():
            raise Unavailable(f"object store root {self.root} is not a directory", reason=Reason.STORAGE_IO)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise Unavailable(f"object store root {self.root} is not writable", reason=Reason.STORAGE_IO)
