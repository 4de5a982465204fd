"""The ingest service's security hooks, one call each from the servicer (kept here so the servicer
stays a thin translation and the rules sit next to the policy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ordo.config import Settings
from ordo.domain import Asset
from ordo.errors import OrdoError
from ordo.security import paths
from ordo.security.audit import audit
from ordo.security.libraries import target_library, visible, writable
from ordo.security.principal import current_principal
from ordo.security.provenance import upload_source as _upload_source

if TYPE_CHECKING:
    from ordo.app import AppContext
    from ordo.v1 import ingest_pb2

__all__ = ["activation_target", "before_delete", "check_uris", "readable", "target_library", "upload_source"]


def upload_source(header: ingest_pb2.UploadFileHeader) -> tuple[str, dict[str, str]]:
    return _upload_source(header.file_name, header.source_uri, dict(header.metadata))


def check_uris(uris: Sequence[str], settings: Settings) -> Callable[[Path], Path]:
    """Refuse the whole request unless every input is allowed; returns the per-file guard for the walk."""
    for uri in uris:
        if uri.startswith("s3://"):
            paths.check_bucket_uri(uri, settings)
        else:
            paths.check_local_uri(uri, settings)
    if any(not u.startswith("s3://") for u in uris):
        audit(settings, "ingest_uris", current_principal().key_id, uris=list(uris)[:20])
    return paths.guard_file(settings)


def readable(assets: list[Asset]) -> list[Asset]:
    principal = current_principal()
    return [a for a in assets if principal.can_read(a.library)]


def before_delete(ctx: AppContext, asset_id: str) -> None:
    writable(visible(ctx.catalog.get(asset_id)))
    audit(ctx.settings, "delete_asset", current_principal().key_id, asset_id=asset_id)


def activation_target(ctx: AppContext, model: str) -> str:
    registered = {v.model for v in ctx.model_versions.list()} | {v.model_id for v in ctx.model_versions.list()}
    s = ctx.settings
    registered |= {s.model, s.auto_model, s.auto_fallback_model}
    try:
        chosen = paths.check_model(model, s, registered)
    except OrdoError as exc:
        audit(s, "activate_model", current_principal().key_id, model=model[:300], refused=exc.reason)
        raise
    audit(s, "activate_model", current_principal().key_id, model=chosen[:300])
    return chosen
