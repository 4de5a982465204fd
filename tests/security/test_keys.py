"""API keys against a real (local-directory) object store: shown once, stored hashed, revoked, rotated,
expired, never escalated."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from ordo.adapters.local_store import LocalDirectoryStore
from ordo.errors import InvalidInput, PermissionDenied, Unauthenticated
from ordo.security.keys import KeyStore, parse_duration
from ordo.security.principal import Principal, Role, parse_grants


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(LocalDirectoryStore(tmp_path / "objects"), cache_seconds=0)


def test_key_is_shown_once_and_stored_only_as_a_hash(keys: KeyStore, tmp_path: Path) -> None:
    new = keys.create(role=Role.READ, name="ci")
    assert new.token.startswith("ordo_") and len(new.token) > 60
    stored = b"".join(p.read_bytes() for p in (tmp_path / "objects").rglob("*") if p.is_file())
    # the secret is everything after "ordo_<key id>_": base64url, so it may itself hold "_"
    secret = new.token.split("_", 2)[2]
    assert len(secret) >= 40
    assert new.token.encode() not in stored and secret.encode() not in stored
    principal = keys.verify(new.token)
    assert (principal.role, principal.name, principal.key_id) == (Role.READ, "ci", new.record.key_id)


@pytest.mark.parametrize(
    "token, reason",
    [("", "MALFORMED_KEY"), ("Bearer x", "MALFORMED_KEY"), ("ordo_0123456789abcdef_" + "A" * 43, "UNKNOWN_KEY")],
)
def test_bad_tokens(keys: KeyStore, token: str, reason: str) -> None:
    with pytest.raises(Unauthenticated) as err:
        keys.verify(token)
    assert err.value.reason == reason


def test_a_tampered_secret_is_refused(keys: KeyStore) -> None:
    token = keys.create(role=Role.ADMIN).token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(Unauthenticated) as err:
        keys.verify(tampered)
    assert err.value.reason == "UNKNOWN_KEY"


def test_revoke_rotate_expire_and_last_used(keys: KeyStore) -> None:
    new = keys.create(role=Role.WRITE)
    keys.verify(new.token)
    assert keys.get(new.record.key_id).last_used_at is not None
    rotated = keys.rotate(new.record.key_id)
    assert rotated.record.key_id == new.record.key_id
    with pytest.raises(Unauthenticated):
        keys.verify(new.token)  # the old secret stops working
    assert keys.verify(rotated.token).role is Role.WRITE
    keys.revoke(new.record.key_id)
    with pytest.raises(Unauthenticated) as err:
        keys.verify(rotated.token)
    assert err.value.reason == "KEY_REVOKED"
    short = keys.create(role=Role.READ, expires_in=timedelta(seconds=1))
    time.sleep(1.1)
    with pytest.raises(Unauthenticated) as err:
        keys.verify(short.token)
    assert err.value.reason == "KEY_EXPIRED"
    statuses = {k.key_id: k.public()["status"] for k in keys.list()}
    assert statuses == {new.record.key_id: "revoked", short.record.key_id: "expired"}


def test_a_key_never_creates_more_rights_than_its_own(keys: KeyStore) -> None:
    writer = keys.verify(keys.create(role=Role.WRITE, libraries=parse_grants(["a", "b:read"])).token)
    for role, libs in [
        (Role.ADMIN, {"a": Role.WRITE}),  # higher role
        (Role.READ, {}),  # every library is more than two
        (Role.WRITE, {"b": Role.WRITE}),  # write where it may only read
        (Role.READ, {"c": Role.READ}),  # a library it cannot see
    ]:
        with pytest.raises(PermissionDenied):
            keys.create(role=role, libraries=libs, by=writer)
    made = keys.create(role=Role.READ, libraries={"a": Role.READ, "b": Role.READ}, by=writer)
    assert keys.verify(made.token).libraries == {"a": Role.READ, "b": Role.READ}


def test_a_key_made_by_an_expiring_key_expires_no_later(keys: KeyStore) -> None:
    maker = keys.create(role=Role.ADMIN, expires_in=timedelta(hours=1))
    child = keys.create(role=Role.READ, by=keys.verify(maker.token))
    assert child.record.expires_at == maker.record.expires_at


def test_principal_library_rights() -> None:
    p = Principal("k", "n", Role.WRITE, {"a": Role.WRITE, "b": Role.READ})
    assert (p.can_write("a"), p.can_write("b"), p.can_read("b"), p.can_read("c")) == (True, False, True, False)
    reader = Principal("k", "n", Role.READ)
    assert reader.can_read("anything") and not reader.can_write("anything")


def test_durations() -> None:
    assert parse_duration("30d") == timedelta(days=30) and parse_duration("12h") == timedelta(hours=12)
    with pytest.raises(InvalidInput):
        parse_duration("forever")


@pytest.mark.parametrize("name", ["", "../x", "A", "a" * 64, "a b", "x\x00", "ümlaut", "-lead"])
def test_hostile_library_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        parse_grants([name])


def test_hostile_credentials(keys: KeyStore) -> None:
    from ordo.security.authenticator import bearer

    assert bearer("Bearer " + "x" * 100_000) == "x" * (512 - len("Bearer "))
    for token in ("ordo_" + "0" * 16 + "_" + "A" * 43 + "\n", "ordo_../../etc_" + "A" * 43, "x" * 100_000):
        with pytest.raises(Unauthenticated):
            keys.verify(token)
    with pytest.raises(InvalidInput):
        keys.create(role=Role.READ, name="n" * 101)
