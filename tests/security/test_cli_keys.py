"""`ordo keys` against a data directory: how the first admin key comes to be."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ordo.app import create_object_store
from ordo.cli.main import main
from ordo.config import Settings
from ordo.security.keys import KeyStore
from ordo.security.principal import Role


def test_create_list_revoke_rotate(tmp_path: Path) -> None:
    env = {"ORDO_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--role", "admin", "--name", "me", "--json"], env=env)
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    store = KeyStore(create_object_store(Settings(data_dir=tmp_path)), cache_seconds=0)
    assert store.verify(created["key"]).role is Role.ADMIN
    limited = runner.invoke(
        main, ["keys", "create", "--role", "read", "--library", "photos:read", "--expires", "2h", "--json"], env=env
    )
    assert json.loads(limited.output)["libraries"] == {"photos": "read"}
    listed = json.loads(runner.invoke(main, ["keys", "list", "--json"], env=env).output)
    assert {k["name"] for k in listed} >= {"me"} and all("key_hash" not in k for k in listed)
    rotated = runner.invoke(main, ["keys", "rotate", created["key_id"]], env=env).output.strip().splitlines()[0]
    assert rotated.startswith("ordo_") and store.verify(rotated).key_id == created["key_id"]
    assert runner.invoke(main, ["keys", "revoke", created["key_id"]], env=env).exit_code == 0
    statuses = {
        k["key_id"]: k["status"] for k in json.loads(runner.invoke(main, ["keys", "list", "--json"], env=env).output)
    }
    assert statuses[created["key_id"]] == "revoked"
    bad = runner.invoke(main, ["keys", "create", "--role", "read", "--library", "../etc"], env=env)
    assert bad.exit_code != 0 and "not a library name" in bad.output
    assert '"action": "create_key"' in (tmp_path / "audit.log").read_text()


def test_up_distributed_makes_its_operator_an_admin_key(tmp_path: Path) -> None:
    """`make up-distributed` runs with ORDO_AUTH=required: it creates an admin key in the store its
    processes share (here a local one; SeaweedFS there) and prints it once."""
    import os

    from ordo.cli.ops import _first_admin_key

    before = dict(os.environ)
    token = _first_admin_key({"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH": "required"})
    assert dict(os.environ) == before  # the caller's environment is left as it was
    store = KeyStore(create_object_store(Settings(data_dir=tmp_path)), cache_seconds=0)
    assert store.verify(token).role is Role.ADMIN
