"""A real embedded stack (`ordo up`, tiny CLIP, gateway on) with ORDO_AUTH=required, and keys of every
kind made against its data directory before it starts (how the first admin key comes to be)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from ordo.app import create_object_store
from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.security.keys import KeyStore
from ordo.security.principal import Role
from tests.e2e.conftest import Stack, free_port, start_stack, stop_stack


@dataclass
class SecureStack:
    stack: Stack
    base_url: str
    roots: Path
    keys: dict[str, str]  # kind → token

    def client(self, kind: str | None) -> OrdoClient:
        key = self.keys[kind] if kind else ""
        return OrdoClient(Settings(address=self.stack.address, api_key=key, max_message_bytes=8 * 1024 * 1024))

    def headers(self, kind: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[kind]}"} if kind else {}


def make_keys(data_dir: Path) -> dict[str, str]:
    store = KeyStore(create_object_store(Settings(data_dir=data_dir)), cache_seconds=0)
    made = {
        "admin": store.create(role=Role.ADMIN, name="admin"),
        "write": store.create(role=Role.WRITE, name="writer"),
        "read": store.create(role=Role.READ, name="reader"),
        "revoked": store.create(role=Role.ADMIN, name="revoked"),
        "expired": store.create(role=Role.ADMIN, name="expired", expires_in=timedelta(seconds=1)),
        "team_a": store.create(role=Role.WRITE, name="team a", libraries={"team-a": Role.WRITE}),
        "team_b": store.create(role=Role.ADMIN, name="team b admin", libraries={"team-b": Role.WRITE}),
    }
    store.revoke(made["revoked"].record.key_id)
    return {kind: new.token for kind, new in made.items()}


@pytest.fixture(scope="package")
def secure(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[SecureStack]:
    s = start_secure_stack(tmp_path_factory, tiny_clip_dir)
    yield s
    stop_stack(s.stack)


def start_secure_stack(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> SecureStack:
    """Also used by the browser test of signing in (tests/browser/test_sign_in.py)."""
    data_dir = tmp_path_factory.mktemp("secure-data")
    roots = tmp_path_factory.mktemp("ingest-root")
    keys = make_keys(data_dir)
    http_port = free_port()
    stack = start_stack(
        data_dir,
        tiny_clip_dir,
        {
            "ORDO_AUTH": "required",
            "ORDO_AUTH_CACHE_SECONDS": "0",
            "ORDO_HTTP_PORT": str(http_port),
            "ORDO_INGEST_ROOTS": str(roots),
            "ORDO_INGEST_BUCKETS": "allowed-*",
        },
    )
    base_url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, stack.log.read_text()[-3000:]
        time.sleep(0.1)
    time.sleep(1.1)  # the expired key's second has passed
    return SecureStack(stack, base_url, roots, keys)
