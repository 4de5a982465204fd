"""ORDO_AUTH=off only on loopback: an exposed listener without auth refuses to start, saying what to do;
the ops listener binds loopback by default and sends no CORS header."""

from __future__ import annotations

import urllib.request

import pytest
from click.testing import CliRunner

from ordo.cli.main import main
from ordo.config import Settings
from ordo.errors import InvalidInput
from ordo.metrics import start_metrics_server
from ordo.processes import free_port
from ordo.security.binding import check_binds, is_loopback


@pytest.mark.parametrize("command", [["up"], ["serve", "all"], ["gateway"]])
def test_an_exposed_bind_without_auth_refuses_to_start(command: list[str], tmp_path) -> None:
    result = CliRunner().invoke(main, command, env={"ORDO_HOST": "0.0.0.0", "ORDO_DATA_DIR": str(tmp_path)})
    assert result.exit_code != 0
    assert "ORDO_AUTH=required" in result.output and "ordo keys create" in result.output
    assert not (tmp_path / "objects").exists()  # refused before anything was opened


def test_loopback_rules() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.8.0.1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "ordo.example"))
    check_binds(Settings(), "127.0.0.1")
    check_binds(Settings(auth="required"), "0.0.0.0")
    with pytest.raises(InvalidInput):
        check_binds(Settings(), "127.0.0.1", "0.0.0.0")


def test_ops_listener_is_loopback_and_sends_no_cors() -> None:
    server = start_metrics_server(Settings(), "test", port=free_port())
    assert server is not None
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.headers.get("Access-Control-Allow-Origin") is None
    finally:
        server.shutdown()
        server.server_close()


def test_ops_off_loopback_needs_an_admin_key(tmp_path) -> None:
    """Checked on the request handler's decision (binding a non-loopback address is not allowed in tests)."""
    from ordo.app import create_object_store
    from ordo.security.keys import KeyStore
    from ordo.security.ops_auth import refuse_ops_request
    from ordo.security.principal import Role

    settings = Settings(auth="required", data_dir=tmp_path)
    store = KeyStore(create_object_store(settings))
    admin, reader = store.create(role=Role.ADMIN).token, store.create(role=Role.READ).token
    exposed = "10.1.2.3"
    assert refuse_ops_request(settings, exposed, "/metrics", {})[0] == 401
    assert refuse_ops_request(settings, exposed, "/ops", {"authorization": f"Bearer {reader}"})[0] == 403
    assert refuse_ops_request(settings, exposed, "/ops", {"authorization": f"Bearer {admin}"}) is None
    assert refuse_ops_request(settings, exposed, "/healthz", {}) is None
    assert refuse_ops_request(settings, "127.0.0.1", "/metrics", {}) is None
