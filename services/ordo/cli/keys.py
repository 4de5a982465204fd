"""`ordo keys create|list|revoke|rotate`: API keys, managed against the key store directly.

The store is the object store of the configured data directory / bucket (``ordo.security.keys``), so
whoever can run this with the deployment's settings is already trusted with its data: that is how the
first admin key comes to be (`ordo keys create --role admin` before or while the server runs). Over the
network, keys are managed with an admin key through ``/api/keys``.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from ordo.cli.common import console, out, settings_or_fail
from ordo.errors import OrdoError


def _store():
    from ordo.app import create_object_store
    from ordo.security.keys import KeyStore

    return KeyStore(create_object_store(settings_or_fail()), cache_seconds=0)


def _audit(action: str, **details: object) -> None:
    from ordo.security.audit import audit

    audit(settings_or_fail(), action, "cli", **details)


@click.group()
def keys() -> None:
    """API keys (stored hashed in the object store; a key is shown once)."""


@keys.command()
@click.option("--role", type=click.Choice(["read", "write", "admin"]), required=True)
@click.option("--name", default="", help="What the key is for (shown in `ordo keys list`).")
@click.option("--expires", default="", help="Lifetime, e.g. 30d, 12h (default: never).")
@click.option(
    "--library", "libraries", multiple=True, help="Limit to a library: NAME (read-write) or NAME:read; repeatable."
)
@click.option("--json", "as_json", is_flag=True)
def create(role: str, name: str, expires: str, libraries: tuple[str, ...], as_json: bool) -> None:
    """Create a key and print it once (only its hash is kept)."""
    from ordo.security.keys import parse_duration
    from ordo.security.principal import Role, parse_grants

    try:
        new = _store().create(
            role=Role.parse(role),
            name=name,
            libraries=parse_grants(list(libraries)),
            expires_in=parse_duration(expires) if expires else None,
        )
    except OrdoError as exc:
        raise click.ClickException(exc.message) from exc
    _audit("create_key", new_key=new.record.key_id, role=role)
    if as_json:
        out.print_json(json.dumps({"key": new.token, **new.record.public()}))
        return
    out.print(new.token, soft_wrap=True)
    console.print(f"key {new.record.key_id} ({role}); shown once: store it now, e.g. export ORDO_API_KEY=…")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_keys(as_json: bool) -> None:
    """Keys with role, libraries, creation, last use, expiry and status (never the keys)."""
    records = [r.public() for r in _store().list()]
    if as_json:
        out.print_json(json.dumps(records))
        return
    table = Table("id", "name", "role", "libraries", "created", "last used", "expires", "status")
    for r in records:
        libs = ", ".join(f"{k}:{v}" for k, v in r["libraries"].items()) or "all"  # type: ignore[union-attr]
        table.add_row(
            *(str(r[k] or "-") for k in ("key_id", "name", "role")),
            libs,
            *(str(r[k] or "-") for k in ("created_at", "last_used_at", "expires_at", "status")),
        )
    out.print(table)


@keys.command()
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key (every process stops accepting it within ORDO_AUTH_CACHE_SECONDS)."""
    try:
        record = _store().revoke(key_id)
    except OrdoError as exc:
        raise click.ClickException(exc.message) from exc
    _audit("revoke_key", target=record.key_id)
    console.print(f"key {record.key_id} revoked")


@keys.command()
@click.argument("key_id")
def rotate(key_id: str) -> None:
    """A new secret for a key (same id, role and libraries); prints it once."""
    try:
        new = _store().rotate(key_id)
    except OrdoError as exc:
        raise click.ClickException(exc.message) from exc
    _audit("rotate_key", target=key_id)
    out.print(new.token, soft_wrap=True)


COMMANDS: list[click.Command] = [keys]
