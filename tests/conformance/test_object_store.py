"""One conformance suite for every ``ObjectStore`` adapter: a local directory and a real S3 server
(SeaweedFS, started once per session by ``tests/fixtures/seaweedfs.py``) must be indistinguishable to
the core — same bytes, same errors, and the same listing order, including where a folder-by-folder
walk and byte order disagree (``a-b`` < ``a/x`` < ``a0``), which SeaweedFS does natively.

Backend-specific behaviour (failure modes, atomic writes, keys escaping the root) is tested at the end.
"""

from __future__ import annotations

import io
import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from ordo.adapters import local_store
from ordo.adapters.local_store import TMP_PREFIX, LocalDirectoryStore
from ordo.adapters.s3_store import S3Store
from ordo.errors import Conflict, InvalidInput, NotFound, Unavailable
from ordo.ports.object_store import ObjectInfo, ObjectStore
from tests.fixtures.fsync_log import record_fsyncs
from tests.fixtures.seaweedfs import S3Server, free_ports

ADAPTERS = ["local", "s3"]

#: Siblings that a folder-by-folder walk ranks differently from byte order ('!', ' ', '-', '.' < '/').
TRICKY_KEYS = [
    "a",
    "a!",
    "a b/c",
    "a-b/c",
    "a.jpg",
    "a/1",
    "a/x-1",
    "a/x.y",
    "a/x/2",
    "a/x/3",
    "a/x0",
    "a0",
    "b/c/d/e",
    "b/c-d",
    "b/c.d/e",
]
# "a" is both an object and (on S3) a folder name; a directory cannot be both, so locally it is dropped.
TRICKY_LOCAL = [k for k in TRICKY_KEYS if k != "a"]


def s3_store_for(server: S3Server, bucket: str, **kwargs: Any) -> S3Store:
    return S3Store(server.endpoint, server.access_key, server.secret_key, bucket, **kwargs)


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalDirectoryStore(tmp_path / "objects")
    # Resolved lazily so that `-k local` runs never start SeaweedFS.
    return s3_store_for(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))


@pytest.fixture
def s3_store(s3_server: S3Server, s3_bucket: str) -> S3Store:
    return s3_store_for(s3_server, s3_bucket)


def keys_of(infos: Iterator[ObjectInfo]) -> list[str]:
    return [info.key for info in infos]


def put_all(store: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        store.put(key, key.encode())


def paginate(store: ObjectStore, prefix: str, page: int) -> list[str]:
    """Reads a listing ``page`` keys at a time, resuming from the last key as a persisted cursor would."""
    out: list[str] = []
    cursor = ""
    while True:
        batch = keys_of(itertools.islice(store.list(prefix, start_after=cursor), page))
        out += batch
        if len(batch) < page:
            return out
        cursor = batch[-1]


# --- contract ------------------------------------------------------------------------------------
def test_implements_the_port(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    assert isinstance(store, ObjectStore)
    assert store.backend == request.node.callspec.params["store"]
    store.check()


def test_binary_roundtrip_keeps_every_byte(store: ObjectStore) -> None:
    data = b"\x00\x00" + bytes(range(256)) * 3 + b"\x00"
    store.put("blobs/binary.bin", data, "application/octet-stream")
    assert store.get("blobs/binary.bin") == data
    assert store.stat("blobs/binary.bin") == ObjectInfo("blobs/binary.bin", len(data))


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.exists("empty")
    assert store.stat("empty").size == 0
    assert list(store.list()) == [ObjectInfo("empty", 0)]


def test_large_object(store: ObjectStore) -> None:
    data = random.Random(7).randbytes(6 * 1024 * 1024 + 123)
    store.put("big/object.raw", data, "image/jpeg")
    assert store.stat("big/object.raw").size == len(data)
    assert store.get("big/object.raw") == data


def test_overwrite_replaces_content_and_size(store: ObjectStore) -> None:
    store.put("k", b"the first, longer version")
    store.put("k", b"v2")
    assert store.get("k") == b"v2"
    assert store.stat("k").size == 2
    assert list(store.list()) == [ObjectInfo("k", 2)]


def test_missing_object(store: ObjectStore) -> None:
    store.put("folder/present", b"x")
    assert not store.exists("folder/absent")
    assert not store.exists("folder")  # a folder is not an object
    with pytest.raises(NotFound):
        store.get("folder/absent")
    with pytest.raises(NotFound):
        store.get("folder")
    with pytest.raises(NotFound):
        store.stat("nowhere/at/all")


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put("d/k", b"x")
    store.delete("d/k")
    store.delete("d/k")
    store.delete("never/existed")
    assert not store.exists("d/k")
    with pytest.raises(NotFound):
        store.get("d/k")
    assert list(store.list()) == []


def test_list_order_prefix_and_start_after(store: ObjectStore) -> None:
    keys = [f"photos/2024/{i:02d}.jpg" for i in range(12)]
    keys += [f"photos/2023/{c}.png" for c in "cab"]
    keys += ["photos/readme.txt", "thumbs/01.jpg", "thumbs/02.jpg", "z", "Z", "0"]
    keys += [f"records/{i}/asset.json" for i in (3, 10, 7, 1)]
    random.Random(1).shuffle(keys)
    put_all(store, keys)
    expected = sorted(keys)
    listed = list(store.list())
    assert keys_of(iter(listed)) == expected
    assert all(info.size == len(info.key.encode()) for info in listed)
    assert keys_of(store.list("photos/")) == [k for k in expected if k.startswith("photos/")]
    assert keys_of(store.list("photos/202")) == [k for k in expected if k.startswith("photos/202")]
    assert keys_of(store.list("nothing/")) == []
    for cursor in ["photos/2024/05.jpg", "photos/2024/05", "photos/2024/", "photos/2024", "q", "zz", ""]:
        assert keys_of(store.list(start_after=cursor)) == [k for k in expected if k > cursor], cursor
    assert paginate(store, "", 7) == expected
    assert paginate(store, "photos/", 4) == [k for k in expected if k.startswith("photos/")]


def test_list_is_byte_order_where_folder_order_differs(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    """SeaweedFS walks folder by folder (``a/1`` before ``a!``); the port promises byte order. On S3 a
    tiny listing buffer also forces the paths taken for folders too big to hold (re-listing, streaming)."""
    keys = TRICKY_KEYS if store.backend == "s3" else TRICKY_LOCAL
    put_all(store, keys)
    views = [store]
    if store.backend == "s3":
        assert isinstance(store, S3Store)
        views.append(s3_store_for(request.getfixturevalue("s3_server"), store.bucket, list_buffer=1))
    expected = sorted(keys)
    cursors = ["", *expected, "a/", "a/x", "a/x/", "a ", "a-", "b/c", "b/c/", "0", "zz"]
    for view in views:
        for prefix in ["", "a", "a/", "a/x", "a/x/", "b/", "b/c", "b/c/"]:
            for cursor in cursors:
                want = [k for k in expected if k.startswith(prefix) and k > cursor]
                assert keys_of(view.list(prefix, cursor)) == want, (prefix, cursor)
        assert paginate(view, "", 2) == expected


def test_list_pagination_over_many_keys(store: ObjectStore) -> None:
    keys = [f"many/{i:05d}" for i in range(1100)]
    put_all(store, keys)
    assert paginate(store, "many/", 250) == keys
    assert keys_of(itertools.islice(store.list("many/", start_after="many/01000"), 3)) == [
        "many/01001",
        "many/01002",
        "many/01003",
    ]


def test_list_children(store: ObjectStore) -> None:
    ids = [f"{i:02x}" * 4 for i in (9, 3, 200, 17, 64, 1)]
    for asset_id in ids:
        for name in ("original", "thumb.jpg", "asset.json"):
            store.put(f"assets/{asset_id}/{name}", b"x")
    store.put("assets/loose-file.txt", b"not a folder")
    store.put("assets/deep/er/still/one-child", b"x")
    store.put("top.txt", b"x")
    expected = sorted([*ids, "deep"])
    assert store.list_children("assets/") == expected
    assert store.list_children("assets") == expected  # the prefix is taken as a folder
    assert store.list_children("") == ["assets"]
    assert store.list_children("assets/deep/") == ["er"]
    assert store.list_children("assets/missing/") == []
    assert store.list_children("assets/", start_after=expected[2]) == expected[3:]
    assert store.list_children("assets/", start_after="0") == expected  # need not be a child
    assert store.list_children("assets/", limit=0) == []
    pages, cursor = [], ""
    while page := store.list_children("assets/", start_after=cursor, limit=3):
        pages.append(page)
        cursor = page[-1]
    assert pages == [expected[0:3], expected[3:6], expected[6:]]


def test_list_children_rank_folders_in_byte_order(store: ObjectStore) -> None:
    """Folder ``x`` ranks as ``x/``: after ``x-y`` and ``x.y``, as its objects do in ``list``."""
    for name in ["x0", "x", "x.y", "x-y", "x y", "w"]:
        store.put(f"f/{name}/obj", b"x")
    store.put("f/x-file", b"x")
    expected = ["w", "x y", "x-y", "x.y", "x", "x0"]
    assert store.list_children("f/") == expected
    assert [k.split("/")[1] for k in keys_of(store.list("f/")) if k.count("/") == 2] == expected
    for i, cursor in enumerate(expected):
        assert store.list_children("f/", start_after=cursor) == expected[i + 1 :], cursor
        assert store.list_children("f/", start_after=cursor, limit=1) == expected[i + 1 : i + 2], cursor


def test_emptied_folders_are_not_children(store: ObjectStore) -> None:
    store.put("assets/x/1", b"x")
    store.put("assets/y/deeper/1", b"x")
    store.delete("assets/x/1")
    assert store.list_children("assets/") == ["y"]
    store.delete("assets/y/deeper/1")
    assert store.list_children("assets/") == []
    assert store.list_children("") == []
    assert list(store.list()) == []


def test_unicode_and_space_keys(store: ObjectStore) -> None:
    keys = [
        "photos/Été 2024/plage à Nice.jpg",
        "photos/Ete 2024/x.jpg",
        "日本/東京 タワー.png",
        "emoji/🙂 smile.txt",
        "spaces/ leading and trailing ",
        "symbols/a+b=c&d;e,f(g)[h]{i}'j'#k%l@m~n$o!p",
    ]
    put_all(store, keys)
    for key in keys:
        assert store.get(key) == key.encode()
        assert store.stat(key).size == len(key.encode())
    assert keys_of(store.list()) == sorted(keys)  # code-point order == UTF-8 byte order
    assert store.list_children("photos/") == ["Ete 2024", "Été 2024"]
    assert keys_of(store.list("photos/É")) == ["photos/Été 2024/plage à Nice.jpg"]


INVALID_KEYS = [
    "",
    "   ",
    "/absolute",
    "trailing/",
    "double//slash",
    "../escape",
    "a/../../escape",
    "./dot",
    "back\\slash",
    "nul\x00byte",
    "new\nline",
    f"tmp/{TMP_PREFIX}x",
    "k" * 1025,
    "c" * 256 + "/x",
]


@pytest.mark.parametrize("key", INVALID_KEYS, ids=lambda k: repr(k)[:24])
def test_unportable_keys_cannot_be_written(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(key, b"x")


def test_empty_key_is_rejected_everywhere(store: ObjectStore) -> None:
    for operation in (store.get, store.exists, store.stat, store.delete):
        with pytest.raises(InvalidInput):
            operation("")


# --- S3 only -------------------------------------------------------------------------------------
def test_s3_server_down_fails_fast_and_names_the_endpoint() -> None:
    endpoint = f"127.0.0.1:{free_ports(1)[0]}"
    store = S3Store(endpoint, "key", "secret", "ordo")  # no I/O yet: a service can start while S3 is down
    operations: list[Callable[[], object]] = [
        lambda: store.get("k"),
        lambda: store.put("k", b"x"),
        lambda: list(store.list()),
        lambda: store.list_children(""),
        store.check,
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            operation()
        assert time.monotonic() - started < 10
        assert endpoint in info.value.message
        assert info.value.reason == "S3_UNREACHABLE"


def test_s3_wrong_secret_is_reported_as_auth(s3_server: S3Server, s3_bucket: str) -> None:
    store = S3Store(s3_server.endpoint, s3_server.access_key, "not-the-secret", s3_bucket)
    for operation in (lambda: store.put("k", b"x"), lambda: store.get("k"), store.check):
        with pytest.raises(Unavailable) as info:
            operation()
        assert info.value.reason == "S3_AUTH"
        assert info.value.message.startswith(f"S3 credentials rejected by {s3_server.endpoint}")


def test_s3_missing_bucket_is_not_created_when_only_reading(s3_server: S3Server, s3_bucket: str) -> None:
    store = s3_store_for(s3_server, s3_bucket, create_bucket=False)
    for operation in (store.check, lambda: store.get("k"), lambda: list(store.list())):
        with pytest.raises(Unavailable) as info:
            operation()
        assert info.value.reason == "S3_NO_BUCKET"
        assert s3_bucket in info.value.message


def test_s3_from_url(s3_server: S3Server, s3_bucket: str) -> None:
    store = S3Store.from_url(f"http://{s3_server.endpoint}/{s3_bucket}", s3_server.access_key, s3_server.secret_key)
    assert (store.endpoint, store.bucket, store.secure) == (s3_server.endpoint, s3_bucket, False)
    store.put("k", b"v")
    assert store.get("k") == b"v"
    for bad in ["ftp://h:1/b", "http://h:1/", "http://h:1/a/b", "h:1/b"]:
        with pytest.raises(InvalidInput):
            S3Store.from_url(bad, "k", "s")


def test_s3_reads_keys_written_by_other_tools(s3_store: S3Store, s3_server: S3Server) -> None:
    """Ingestion reads foreign buckets: a key we would refuse to write must still list and read,
    and folder markers ('folder/') are not objects."""
    s3_store.check()  # creates the bucket
    client = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    odd = f"x/{TMP_PREFIX}reserved-here.jpg"  # (SeaweedFS would turn a backslash into '/')
    for name in [odd, "folder/", "folder/inside.jpg"]:
        client.put_object(s3_store.bucket, name, io.BytesIO(b"data"), 4)
    assert keys_of(s3_store.list()) == ["folder/inside.jpg", odd]
    assert s3_store.get(odd) == b"data"
    assert s3_store.list_children("") == ["folder", "x"]


# --- local only ----------------------------------------------------------------------------------
def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_local_failed_write_keeps_the_old_object_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("a/k", b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Unavailable):
        store.put("a/k", b"new bytes")
    monkeypatch.undo()
    assert store.get("a/k") == b"old"
    assert files_under(store.root) == ["a/k"]


def test_local_leftover_temp_files_are_invisible(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("a/k", b"x")
    (store.root / "a" / f"{TMP_PREFIX}crashed").write_bytes(b"half")
    (store.root / "only-temp").mkdir()
    (store.root / "only-temp" / f"{TMP_PREFIX}crashed").write_bytes(b"half")
    assert keys_of(store.list()) == ["a/k"]
    assert store.list_children("") == ["a"]


def test_local_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    for key in ["../outside", "a/../../outside", "/tmp/outside", "..\\outside"]:
        with pytest.raises(InvalidInput):
            store.put(key, b"x")
        with pytest.raises(InvalidInput):
            store.get(key)
    for prefix in ["../", "a/../../", "/etc/"]:
        with pytest.raises(InvalidInput):
            list(store.list(prefix))
        with pytest.raises(InvalidInput):
            store.list_children(prefix)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects"]


def test_local_object_and_folder_cannot_share_a_name(tmp_path: Path) -> None:
    """S3 allows ``x`` and ``x/y`` side by side; a directory cannot, so the local store says so."""
    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("x", b"object")
    with pytest.raises(Conflict):
        store.put("x/y", b"x")
    store.put("p/q", b"x")
    with pytest.raises(Conflict):
        store.put("p", b"x")
    assert keys_of(store.list()) == ["p/q", "x"]


def test_local_delete_removes_emptied_folders(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("a/b/c", b"x")
    store.put("a/d", b"x")
    store.delete("a/b/c")
    assert sorted(p.name for p in (store.root / "a").iterdir()) == ["d"]
    store.delete("a/d")
    assert list(store.root.iterdir()) == []


def test_local_check_fails_without_a_usable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    store = LocalDirectoryStore(blocker / "objects")  # cannot be created: must not raise here
    with pytest.raises(Unavailable):
        store.check()
    with pytest.raises(Unavailable):
        store.put("k", b"x")
    with pytest.raises(Unavailable):
        LocalDirectoryStore(blocker).check()


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from ordo.adapters import local_store

    return record_fsyncs(monkeypatch, local_store)


def test_local_write_fsyncs_the_file_then_its_folder_and_new_folders_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power-loss safety of an acknowledged upload: the file's bytes, then the rename (its folder's entry),
    then every folder the write created (an entry in its parent) reach the disk before ``put`` returns."""
    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("first", b"x")  # the root exists now
    synced = _record_fsyncs(monkeypatch)
    store.put("originals/ab/cd", b"bytes")
    root = str((tmp_path / "objects").resolve())
    assert synced[0].startswith(f"{root}/originals/ab/{TMP_PREFIX}")  # the data, before the rename
    assert synced[1:] == [f"{root}/originals/ab", f"{root}/originals", root]
    synced.clear()
    store.put("originals/ab/ef", b"more")  # an existing folder: only it
    assert synced[1:] == [f"{root}/originals/ab"]
    assert LocalDirectoryStore(tmp_path / "objects").get("originals/ab/cd") == b"bytes"
    synced.clear()
    store.put("index/a/b/marker", b"")  # empty: nothing to flush but the folders it changed
    assert synced == [f"{root}/index/a/b", f"{root}/index/a", f"{root}/index", root]
    assert store.get("index/a/b/marker") == b""


def test_local_synced_together_flushes_the_group_once_and_shows_it_when_the_block_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group: every temp file's bytes are flushed before any rename, then each changed folder once (not
    per object), and only then are the objects visible, so a power loss before the block returns loses the
    whole (unacknowledged) group but never leaves an empty or half object. An empty object (a date-order
    marker) has no bytes to flush: only its folder is fsynced."""
    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("first", b"x")  # the root exists now
    synced = _record_fsyncs(monkeypatch)
    root = str((tmp_path / "objects").resolve())
    with store.synced_together():
        for i in range(4):
            store.put(f"thumbs/ab/{i}", b"jpeg %d" % i)
        store.put("index/x/m", b"")
        assert not store.exists("thumbs/ab/0") and keys_of(store.list()) == ["first"]  # not yet
        assert synced == []  # nothing flushed inside the block
    assert [store.get(f"thumbs/ab/{i}") for i in range(4)] == [b"jpeg %d" % i for i in range(4)]
    files, folders = synced[:4], synced[4:]
    assert all(TMP_PREFIX in f and "/thumbs/ab/" in f for f in files)  # the data, before the renames
    # each folder once: the two holding objects and the parents of the folders the block created, flushed
    # together (in any order among them: the block returns only when all are done)
    assert sorted(folders) == sorted([f"{root}/thumbs/ab", f"{root}/thumbs", root, f"{root}/index/x", f"{root}/index"])
    assert store.get("index/x/m") == b""
    assert files_under(store.root) == sorted(["first", "index/x/m", *(f"thumbs/ab/{i}" for i in range(4))])


def test_local_group_flushes_are_in_flight_together_and_all_settle_before_an_error(tmp_path: Path) -> None:
    """The group's fsyncs run at once (ext4 writes fsyncs in flight together in one journal commit): each
    flush here waits for all four to have started, which one-by-one flushing never reaches. A failing flush
    is raised only once every other has returned, so the caller's clean-up never races one."""
    paths = [tmp_path / f"f{i}" for i in range(4)]
    started = threading.Barrier(len(paths), timeout=10)
    flushed: list[Path] = []

    def flush(path: Path) -> None:
        started.wait()
        flushed.append(path)

    local_store._all_at_once(flush, paths)
    assert sorted(flushed) == paths

    def failing(path: Path) -> None:
        if path == paths[0]:
            raise OSError(5, "Input/output error")
        time.sleep(0.2)
        flushed.append(path)

    flushed.clear()
    with pytest.raises(OSError, match="Input/output"):
        local_store._all_at_once(failing, paths)
    assert sorted(flushed) == paths[1:]


def test_local_synced_together_that_raises_leaves_nothing(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("a/old", b"old")
    with pytest.raises(RuntimeError), store.synced_together():
        store.put("a/old", b"new")
        store.put("a/new", b"x")
        raise RuntimeError("the caller failed mid-group")
    assert store.get("a/old") == b"old"
    assert files_under(store.root) == ["a/old"]  # no object of the group, no temp file


def test_local_synced_together_is_per_thread_and_nests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread's put during a group is its own (flushed and visible when it returns); a nested block
    joins the outer group."""
    import threading

    store = LocalDirectoryStore(tmp_path / "objects")
    store.put("first", b"x")
    with store.synced_together():
        with store.synced_together():
            store.put("g/inner", b"1")
        assert not store.exists("g/inner")  # the inner block did not end the group
        other = threading.Thread(target=store.put, args=("h/other", b"2"))
        other.start()
        other.join()
        assert store.get("h/other") == b"2"
    assert store.get("g/inner") == b"1"


def test_local_synced_together_without_fsync_is_a_plain_block(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects", fsync=False)
    with store.synced_together():
        store.put("k", b"x")
        assert store.get("k") == b"x"  # written at once, as every put of a store without fsync


def test_local_group_flushes_work_in_a_forked_child(tmp_path: Path) -> None:
    """A child forked after the parent flushed a group has none of the parent's flushing threads; its own
    group must still complete (a pool copied across fork would wait forever for threads that do not exist)."""
    store = LocalDirectoryStore(tmp_path / "objects")
    with store.synced_together():
        store.put("a/1", b"1")
        store.put("b/2", b"2")
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only when its group is stored
        code = 1
        try:
            with store.synced_together():
                store.put("c/3", b"3")
                store.put("d/4", b"4")
            code = 0 if store.get("d/4") == b"4" else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child's group never completed")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(waited[1]) == 0
    assert store.get("c/3") == b"3"
