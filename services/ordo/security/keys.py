"""API keys: ``ordo_<id>_<secret>``, shown once, stored only as a SHA-256 hash.

Why this shape (GitHub's and Immich's tokens): the visible ``ordo_`` prefix lets secret scanners and people
recognise a leaked key; the public id lets the server find the one record to compare without scanning;
the secret is 32 random bytes, so a plain SHA-256 is enough (a slow hash protects guessable passwords,
not 256-bit randomness) and the comparison is constant-time.

Where keys live: in the object store, under ``security/keys/<id>.json``. Both modes already have one
(a folder under the data directory, or the S3 bucket) and every process that serves requests can reach
it, so embedded and distributed share this code path and a key made by ``ordo keys create`` against the
data directory works at once. Records are cached per process for ``ORDO_AUTH_CACHE_SECONDS``, which
bounds how long a revoked key keeps working (and keeps a request from costing an S3 read).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ordo.errors import InvalidInput, NotFound, PermissionDenied, Reason, Unauthenticated
from ordo.ports.object_store import ObjectStore
from ordo.security.principal import Principal, Role, check_library

PREFIX = "ordo_"
KEYS_PREFIX = "security/keys/"
MAX_NAME_CHARS = 100
MAX_LIBRARIES = 100
MAX_TOKEN_CHARS = 200
LAST_USED_WRITE_SECONDS = 60.0  # last-used is written at most this often per key and process
_TOKEN = re.compile(r"^ordo_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: how long a new key lives."""
    match = _DURATION.match(text.strip())
    if not match:
        raise InvalidInput(f"'{text[:40]}' is not a duration like 30d, 12h or 90m", reason=Reason.BAD_EXPIRY)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class ApiKey:
    """The stored record (never the key itself)."""

    key_id: str
    name: str
    role: str
    key_hash: str
    created_at: str
    libraries: dict[str, str] = field(default_factory=dict)
    expires_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None
    created_by: str = ""

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= datetime.now(UTC)

    def principal(self) -> Principal:
        grants = {lib: Role.parse(access) for lib, access in self.libraries.items()}
        return Principal(key_id=self.key_id, name=self.name, role=Role.parse(self.role), libraries=grants)

    def public(self) -> dict[str, object]:
        """What listing shows: everything but the hash."""
        data = asdict(self)
        data.pop("key_hash")
        data["status"] = "revoked" if self.revoked_at else "expired" if self.expired else "active"
        return data


@dataclass(frozen=True)
class NewKey:
    record: ApiKey
    token: str  # shown once


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_token() -> tuple[str, str]:
    key_id = secrets.token_hex(8)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


class KeyStore:
    """Creates, lists, revokes, rotates and verifies keys kept in an object store."""

    def __init__(self, store: ObjectStore, cache_seconds: float = 5.0) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._last_written: dict[str, float] = {}
        self._lock = threading.Lock()

    # --- records ---------------------------------------------------------------------------------
    @staticmethod
    def _key(key_id: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{16}", key_id):
            raise NotFound(f"no key '{key_id[:40]}'", reason=Reason.KEY_NOT_FOUND)
        return f"{KEYS_PREFIX}{key_id}.json"

    def _write(self, record: ApiKey) -> None:
        self.store.put(
            self._key(record.key_id), json.dumps(asdict(record), sort_keys=True).encode(), "application/json"
        )
        with self._lock:
            self._cache[record.key_id] = (time.monotonic(), record)

    def get(self, key_id: str) -> ApiKey:
        try:
            raw = self.store.get(self._key(key_id))
        except NotFound:
            raise NotFound(f"no key '{key_id[:40]}'", reason=Reason.KEY_NOT_FOUND) from None
        return ApiKey(**json.loads(raw))

    def list(self) -> list[ApiKey]:
        records = [ApiKey(**json.loads(self.store.get(info.key))) for info in self.store.list(KEYS_PREFIX)]
        return sorted(records, key=lambda r: r.created_at)

    def is_empty(self) -> bool:
        return next(iter(self.store.list(KEYS_PREFIX)), None) is None

    # --- lifecycle -------------------------------------------------------------------------------
    def create(
        self,
        *,
        role: Role,
        name: str = "",
        libraries: dict[str, Role] | None = None,
        expires_in: timedelta | None = None,
        by: Principal | None = None,
    ) -> NewKey:
        """A new key. ``by`` (the caller, when created over the API) must hold every right it grants,
        and a key made by an expiring key expires no later than its maker."""
        libraries = dict(libraries or {})
        if len(name) > MAX_NAME_CHARS:
            raise InvalidInput(f"a key name may be at most {MAX_NAME_CHARS} characters", reason=Reason.NAME_TOO_LONG)
        if len(libraries) > MAX_LIBRARIES:
            raise InvalidInput(f"at most {MAX_LIBRARIES} libraries per key", reason=Reason.TOO_MANY_LIBRARIES)
        for library in libraries:
            check_library(library)
        expires_at = datetime.now(UTC) + expires_in if expires_in else None
        if by is not None:
            if not by.covers(role, libraries):
                raise PermissionDenied(
                    f"a {by.role.label} key cannot create a key with more rights than its own",
                    reason=Reason.KEY_ESCALATION,
                )
            maker = self._maker_expiry(by)
            if maker is not None and (expires_at is None or expires_at > maker):
                expires_at = maker
        key_id, token = _new_token()
        record = ApiKey(
            key_id=key_id,
            name=name or f"{role.label}-{key_id[:6]}",
            role=role.label,
            key_hash=hash_token(token),
            created_at=_now(),
            libraries={lib: r.label for lib, r in libraries.items()},
            expires_at=expires_at.isoformat(timespec="seconds") if expires_at else None,
            created_by=by.key_id if by else "cli",
        )
        self._write(record)
        return NewKey(record, token)

    def _maker_expiry(self, by: Principal) -> datetime | None:
        try:
            record = self.get(by.key_id)
        except NotFound:
            return None  # the local admin (auth off) or a key made outside the store
        return datetime.fromisoformat(record.expires_at) if record.expires_at else None

    def revoke(self, key_id: str) -> ApiKey:
        record = self.get(key_id)
        if not record.revoked_at:
            record.revoked_at = _now()
            self._write(record)
        return record

    def rotate(self, key_id: str) -> NewKey:
        """Same id, name, role and libraries; a new secret. The old secret stops working at once here and
        within ``cache_seconds`` in every other process."""
        record = self.get(key_id)
        if record.revoked_at:
            raise InvalidInput(f"key {key_id} is revoked; create a new one", reason=Reason.KEY_REVOKED)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        self._write(replace(record, key_hash=hash_token(token)))
        return NewKey(self.get(key_id), token)

    # --- verification ----------------------------------------------------------------------------
    def _cached(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        try:
            record: ApiKey | None = self.get(key_id)
        except NotFound:
            record = None
        with self._lock:
            if len(self._cache) > 10_000:  # unknown ids must not grow the cache without bound
                self._cache.clear()
            self._cache[key_id] = (now, record)
        return record

    def verify(self, token: str) -> Principal:
        """The principal of a presented key, or ``Unauthenticated`` with the reason."""
        match = _TOKEN.match(token[:MAX_TOKEN_CHARS]) if token else None
        if match is None:
            raise Unauthenticated("not an Ordo API key (expected ordo_…)", reason=Reason.MALFORMED_KEY)
        record = self._cached(match.group(1))
        # Compare even when the id is unknown, so timing does not tell ids apart from secrets.
        expected = record.key_hash if record else "0" * 64
        if not hmac.compare_digest(hash_token(token), expected) or record is None:
            raise Unauthenticated("unknown API key", reason=Reason.UNKNOWN_KEY)
        if record.revoked_at:
            raise Unauthenticated(f"API key {record.key_id} was revoked", reason=Reason.KEY_REVOKED)
        if record.expired:
            raise Unauthenticated(f"API key {record.key_id} expired at {record.expires_at}", reason=Reason.KEY_EXPIRED)
        self._touch(record)
        return record.principal()

    def _touch(self, record: ApiKey) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_written.get(record.key_id, -LAST_USED_WRITE_SECONDS) < LAST_USED_WRITE_SECONDS:
                return
            self._last_written[record.key_id] = now
        try:
            fresh = self.get(record.key_id)  # never overwrite a revocation made by another process
            fresh.last_used_at = _now()
            self.store.put(self._key(fresh.key_id), json.dumps(asdict(fresh), sort_keys=True).encode())
        except Exception:  # last-used is informative; a failed write must not fail the request
            pass
