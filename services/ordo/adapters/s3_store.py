"""Object store on any S3 server (SeaweedFS, MinIO, AWS...) through the ``minio`` client.

Why it is built this way:

* **Fail fast, say why**: the HTTP pool has short timeouts and few retries, so a server that is down
  costs seconds, not minutes, and every failure becomes an ``ordo.errors`` error naming the endpoint
  (``ordo.adapters.s3_errors``): ``NotFound`` for a missing key, ``Unavailable`` for an unreachable
  server (``S3_UNREACHABLE``), rejected credentials (``S3_AUTH``) or a missing bucket (``S3_NO_BUCKET``).
* **Lazy bucket**: constructing a store does no I/O, so a service starts (and reports itself unhealthy)
  even while its S3 server is down; the bucket is created on first use when ``create_bucket``.
* **Byte order on every server**: the port promises keys in byte order, but servers built on a file
  tree (SeaweedFS) list folder by folder, ranking a folder ``a`` before its siblings ``a!``, ``a-b``,
  ``a.jpg`` — which byte order puts first, since ``-`` and ``.`` sort before ``/``. ``list`` therefore
  reorders the server's stream (see ``_emit_level`` and ``ordo.adapters.s3_order``): cheaply, holding at
  most one small folder at a time and asking the server one extra question only for folders bigger than
  ``list_buffer`` keys. Servers that already list in byte order (AWS, MinIO) pass through unchanged. The
  ``start_after`` sent to the server is shortened so that neither order can skip a key; exactness is
  enforced client side.
* **No empty folders**: SeaweedFS keeps a folder after its last object is deleted and reports it as a
  common prefix; ``delete`` removes folders it empties so ``list_children`` matches every other backend.
* **Lenient reads, portable writes**: ``put`` accepts only keys every adapter can store
  (:func:`~ordo.adapters.local_store.validate_key`); reads, listings and deletes accept any S3 key, since
  ingestion reads buckets that Ordo did not write.
"""

from __future__ import annotations

import heapq
import io
import itertools
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import check_bucket_name

from ordo.adapters.local_store import folder_prefix, validate_key
from ordo.adapters.s3_errors import s3_errors
from ordo.adapters.s3_order import Peekable, Pending, server_start_after, sorts_before_folder
from ordo.errors import InvalidInput, NotFound, Reason, Unavailable
from ordo.ports.object_store import ObjectInfo, StoreCapabilities

log = logging.getLogger(__name__)

#: Objects up to this size go up in one PUT (fewer round trips); larger ones in parts of this size.
_PART_SIZE = 64 * 1024 * 1024


class S3Store:
    """``ObjectStore`` on one bucket of an S3 server."""

    backend = "s3"
    capabilities = StoreCapabilities(bounded_reads=True)  # get_bounded streams and stops past a size

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        create_bucket: bool = True,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        retries: int = 2,
        list_buffer: int = 1000,
    ) -> None:
        """``endpoint`` is ``host:port`` (an ``http://`` or ``https://`` URL is accepted and sets ``secure``).

        ``list_buffer`` is how many keys of one folder ``list`` may hold while it works out their order;
        bigger folders cost one extra listing request each.
        """
        if "://" in endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
                raise InvalidInput(
                    f"S3 endpoint {endpoint!r} must be host:port or http(s)://host:port", reason=Reason.BAD_S3_ENDPOINT
                )
            endpoint, secure = parts.netloc, parts.scheme == "https"
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError as e:
            raise InvalidInput(f"bad S3 bucket name {bucket!r}: {e}", reason=Reason.BAD_S3_BUCKET) from None
        if list_buffer < 1:
            raise InvalidInput("list_buffer must be at least 1", reason=Reason.BAD_ARGUMENT)
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self.region = region
        self._create_bucket = create_bucket
        self._list_buffer = list_buffer
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=retries,
                connect=min(retries, 1),  # a refused or black-holed connection will not heal in a second
                read=retries,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
            ),
            maxsize=16,
        )
        try:
            self._client = Minio(
                endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
            )
        except ValueError as e:
            raise InvalidInput(f"bad S3 endpoint {endpoint!r}: {e}", reason=Reason.BAD_S3_ENDPOINT) from None

    @classmethod
    def from_url(cls, url: str, access_key: str, secret_key: str, **kwargs: Any) -> S3Store:
        """``http://host:port/bucket`` (or ``https://``) → a store on that bucket."""
        parts = urlsplit(url)
        bucket = parts.path.strip("/")
        if parts.scheme not in ("http", "https") or not parts.netloc or not bucket or "/" in bucket:
            raise InvalidInput(f"S3 URL {url!r} must look like http://host:port/bucket", reason=Reason.BAD_S3_URL)
        return cls(
            parts.netloc,
            access_key,
            secret_key,
            bucket,
            secure=parts.scheme == "https",
            **kwargs,
        )

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3Store({scheme}://{self.endpoint}/{self.bucket})"

    # --- errors ----------------------------------------------------------------------------------
    def _errors(self, action: str, key: str | None = None) -> AbstractContextManager[None]:
        """Whatever minio/urllib3 raise, as ``ordo.errors`` (see ``ordo.adapters.s3_errors``)."""
        return s3_errors(self.endpoint, self.bucket, action, key, on_missing_bucket=self._forget_bucket)

    def _forget_bucket(self) -> None:
        """The bucket is gone (deleted behind our back): create it again on next use, when we may."""
        self._bucket_ready = False

    @staticmethod
    def _readable_key(key: str) -> str:
        """Reads accept any S3 key, except those no S3 request can carry."""
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("object key must be a non-blank string", reason=Reason.BAD_OBJECT_KEY)
        if any(part in (".", "..") for part in key.split("/")):
            raise InvalidInput(f"object key {key!r} has a '.' or '..' path component", reason=Reason.BAD_OBJECT_KEY)
        return key

    # --- bucket ----------------------------------------------------------------------------------
    def _ensure_bucket(self) -> None:
        """Create the bucket once per store when asked to; a bucket we only read is never probed."""
        if self._bucket_ready or not self._create_bucket:
            return
        with self._bucket_lock, self._errors(f"create bucket {self.bucket!r}"):
            if self._bucket_ready:
                return
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket, location=self.region)
                except S3Error as e:
                    if e.code != "BucketAlreadyOwnedByYou":  # another process won the race: fine
                        raise
            self._bucket_ready = True

    def check(self) -> None:
        with self._errors(f"check bucket {self.bucket!r}"):
            if self._client.bucket_exists(self.bucket):
                return
        if not self._create_bucket:
            raise Unavailable(
                f"S3 bucket {self.bucket!r} does not exist on {self.endpoint}", reason=Reason.S3_NO_BUCKET
            )
        self._bucket_ready = False
        self._ensure_bucket()

    # --- single objects --------------------------------------------------------------------------
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        validate_key(key)
        self._ensure_bucket()
        with self._errors(f"write {key!r}", key):
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type, part_size=_PART_SIZE
            )

    def get(self, key: str) -> bytes:
        self._readable_key(key)
        self._ensure_bucket()
        with self._errors(f"read {key!r}", key):
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def get_bounded(self, key: str, max_bytes: int) -> bytes:
        """At most ``max_bytes + 1`` bytes of the object, read as they stream in (a caller seeing more than
        ``max_bytes`` knows the object is over its limit without having held all of it)."""
        self._readable_key(key)
        self._ensure_bucket()
        with self._errors(f"read {key!r}", key):
            response = self._client.get_object(self.bucket, key)
            try:
                parts: list[bytes] = []
                size = 0
                for part in response.stream(256 * 1024):
                    parts.append(part)
                    size += len(part)
                    if size > max_bytes:
                        break
                return b"".join(parts)[: max_bytes + 1]
            finally:
                response.close()
                response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        self._readable_key(key)
        self._ensure_bucket()
        with self._errors(f"stat {key!r}", key):
            info = self._client.stat_object(self.bucket, key)
        return ObjectInfo(key=key, size=info.size or 0)

    def delete(self, key: str) -> None:
        """Idempotent (S3 DELETE of a missing key succeeds); then removes folders left empty."""
        self._readable_key(key)
        self._ensure_bucket()
        with self._errors(f"delete {key!r}", key):
            self._client.remove_object(self.bucket, key)
        self._prune_empty_folders(key)

    def _prune_empty_folders(self, key: str) -> None:
        """Best effort: on SeaweedFS deleting ``folder/`` removes the folder only while it is empty, and on
        other servers it deletes nothing (no key under the folder means no ``folder/`` marker either)."""
        parts = key.split("/")[:-1]
        try:
            while parts:
                folder = "/".join(parts) + "/"
                if self._has_any_key(folder):
                    return
                self._client.remove_object(self.bucket, folder)
                parts.pop()
        except (S3Error, ServerError, InvalidResponseError, urllib3.exceptions.HTTPError, OSError) as e:
            log.debug("could not prune empty folders above %r: %s", key, e)

    def _has_any_key(self, prefix: str) -> bool:
        """One ``max-keys=1`` request (the public ``list_objects`` always asks for a page of 1000, which
        for ``assets/`` is ~150 KB per delete). minio is pinned to 7.2, whose ``_list_objects`` takes it."""
        list_page = getattr(self._client, "_list_objects", None)
        if list_page is not None:
            return next(iter(list_page(self.bucket, prefix=prefix, max_keys=1)), None) is not None
        return next(iter(self._client.list_objects(self.bucket, prefix=prefix, recursive=True)), None) is not None

    # --- listings --------------------------------------------------------------------------------
    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in byte order, strictly after ``start_after``; lazy, page by page.

        Folder markers (keys ending in '/', made by some S3 tools) are not objects and are skipped.
        """
        self._ensure_bucket()
        last = start_after
        with self._errors(f"list {prefix!r}"):
            for info in self._sorted_listing(prefix, start_after):
                if info.key <= start_after or info.key == last:
                    continue
                if info.key < last:
                    # Not expected on any server we know; yield anyway (at least once beats never).
                    log.warning("S3 listing of %s out of order: %r after %r", self, info.key, last)
                yield info
                last = info.key

    def _sorted_listing(self, prefix: str, start_after: str) -> Iterator[ObjectInfo]:
        server_start = server_start_after(start_after) if start_after else None
        raw = (
            ObjectInfo(key=o.object_name, size=o.size or 0)
            for o in self._client.list_objects(
                self.bucket, prefix=prefix or None, recursive=True, start_after=server_start
            )
            if o.object_name and not o.object_name.endswith("/")
        )
        base = prefix[: prefix.rfind("/") + 1]
        yield from self._emit_level(Peekable(raw), base, start_after)

    def _emit_level(self, it: Peekable, base: str, start_after: str) -> Iterator[ObjectInfo]:
        """Consume every key under folder ``base`` from ``it`` and yield them in byte order.

        The server lists either in byte order or folder by folder; the two differ only in where a
        sub-folder ``c`` goes among its siblings (``_sorts_before_folder``). So each level keeps a small
        heap of pending siblings ranked in byte order: files are final at once; a sub-folder is read
        ahead whole (at most ``list_buffer`` keys, sorted in memory) and released once a later sibling
        shows that no displaced sibling can still come. A bigger sub-folder is either streamed in
        place, when one listing request shows no displaced sibling is still to come, or skipped
        and listed again on its own at its place in byte order (rare: it takes a big folder ``c``
        *and* siblings named like ``c-old`` or ``c.txt`` after it).
        """
        heap: list[Pending] = []
        seq = itertools.count()
        latest: str | None = None  # name of the latest sibling read at this level

        def releasable(entry: Pending) -> bool:
            rank, _, kind, _ = entry
            if kind == "file":
                return True  # no sibling still to come can rank before a file already read
            name = rank[:-1]
            return latest is not None and latest != name and not sorts_before_folder(latest, name)

        def emit(entry: Pending) -> Iterator[ObjectInfo]:
            _, _, kind, payload = entry
            if kind == "file":
                assert isinstance(payload, ObjectInfo)
                yield payload
            elif kind == "block":
                assert isinstance(payload, list)
                yield from payload
            else:
                assert isinstance(payload, str)
                yield from self._sorted_listing(payload, start_after)

        while (head := it.peek()) is not None and head.key.startswith(base):
            name, slash, _ = head.key[len(base) :].partition("/")
            if not slash:
                heapq.heappush(heap, (name, next(seq), "file", it.take()))
            else:
                folder = base + name + "/"
                held: list[ObjectInfo] = []
                while (item := it.peek()) is not None and item.key.startswith(folder) and len(held) < self._list_buffer:
                    held.append(it.take())
                item = it.peek()
                if item is None or not item.key.startswith(folder):
                    held.sort(key=lambda info: info.key)
                    heapq.heappush(heap, (folder[len(base) :], next(seq), "block", held))
                else:
                    it.push_back(held)
                    if self._displaced_siblings_ahead(base, name, latest, start_after):
                        it.skip_prefix(folder)
                        heapq.heappush(heap, (folder[len(base) :], next(seq), "refetch", folder))
                    else:
                        # Everything pending that ranks before this folder is final: a sibling held
                        # back for *this* folder's sake would rank after it.
                        while heap and heap[0][0] < folder[len(base) :]:
                            yield from emit(heapq.heappop(heap))
                        yield from self._emit_level(it, folder, start_after)
            latest = name
            while heap and releasable(heap[0]):
                yield from emit(heapq.heappop(heap))
        while heap:
            yield from emit(heapq.heappop(heap))

    def _displaced_siblings_ahead(self, base: str, folder: str, latest: str | None, start_after: str) -> bool:
        """Whether siblings that rank before ``base/folder/`` in byte order may still come in the stream."""
        if latest is not None and sorts_before_folder(latest, folder):
            return False  # they came first: the server lists in byte order
        for o in self._client.list_objects(self.bucket, prefix=base + folder, recursive=False):
            key = o.object_name or ""  # minio types it optional; a listing always names its entries
            name = key[len(base) :].rstrip("/")
            if not sorts_before_folder(name, folder):
                continue
            if not key.endswith("/"):  # a file
                if key > start_after:
                    return True
            elif not (start_after > key and not start_after.startswith(key)):
                return True
        return False

    def list_children(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[str]:
        """Names of the folders directly under ``prefix`` (taken as a folder), in the byte order of
        ``name + "/"`` — the order their objects have in ``list`` — strictly after ``start_after``."""
        if limit < 0:
            raise InvalidInput("limit must not be negative", reason=Reason.BAD_LIMIT)
        if limit == 0:
            return []
        self._ensure_bucket()
        folder = folder_prefix(prefix)
        bound = folder + start_after + "/" if start_after else ""
        names: list[str] = []
        pending: list[str] = []  # ranks (name + "/") of folders read but maybe not final yet
        latest: str | None = None
        with self._errors(f"list folders under {folder!r}"):
            listing = self._client.list_objects(
                self.bucket,
                prefix=folder or None,
                recursive=False,
                start_after=server_start_after(bound) if bound else None,
            )
            for o in listing:
                key = o.object_name or ""  # see _displaced_siblings_ahead
                if not o.is_dir or key <= bound:
                    continue
                name = key[len(folder) : -1]
                if not name:
                    continue
                heapq.heappush(pending, name + "/")
                latest = name
                # Same rule as _emit_level, with folders only.
                while pending and (top := pending[0][:-1]) != latest and not sorts_before_folder(latest, top):
                    names.append(heapq.heappop(pending)[:-1])
                    if len(names) == limit:
                        return names
        while pending and len(names) < limit:
            names.append(heapq.heappop(pending)[:-1])
        return names
