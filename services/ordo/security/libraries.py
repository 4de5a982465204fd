"""Library (tenant) scoping, applied by the servicers on top of the role check.

A caller who may not read an asset's library gets exactly the answer an unknown id gets (NOT_FOUND,
same message), so ids cannot be probed across libraries. Searches and analysis runs get the caller's
libraries added to their filter; runs remember that filter, which is how a run's clusters and map stay
visible only to keys that may read every library it covered.
"""

from __future__ import annotations

import dataclasses

from ordo.core.catalog import AssetCatalog
from ordo.domain import Asset, Filter
from ordo.errors import NotFound, PermissionDenied, Reason
from ordo.security.principal import DEFAULT_LIBRARY, check_library, current_principal

NO_LIBRARY = "-"  # not a valid library name: a filter on it matches nothing


def scope_filter(flt: Filter) -> Filter:
    """``flt`` narrowed to the libraries the caller may read (their intersection with any asked for)."""
    readable = current_principal().readable_libraries()
    if readable is None:
        return flt
    wanted = set(flt.libraries) & set(readable) if flt.libraries else set(readable)
    return dataclasses.replace(flt, libraries=tuple(sorted(wanted)) or (NO_LIBRARY,))


def visible(asset: Asset) -> Asset:
    """The asset, or the same NotFound an unknown id gets."""
    if not current_principal().can_read(asset.library):
        raise NotFound(f"asset {asset.asset_id} not found", reason=Reason.ASSET_NOT_FOUND)
    return asset


def writable(asset: Asset) -> Asset:
    visible(asset)
    if not current_principal().can_write(asset.library):
        raise PermissionDenied(f"this key may only read library '{asset.library}'", reason=Reason.LIBRARY_READ_ONLY)
    return asset


def target_library(name: str) -> str:
    """The library new files go into; the caller must be able to write there."""
    library = check_library(name.strip() or DEFAULT_LIBRARY)
    principal = current_principal()
    if not principal.can_read(library):
        raise PermissionDenied(f"this key has no access to library '{library}'", reason=Reason.LIBRARY_DENIED)
    if not principal.can_write(library):
        raise PermissionDenied(f"this key may only read library '{library}'", reason=Reason.LIBRARY_READ_ONLY)
    return library


def run_is_visible(run_filter: Filter) -> bool:
    readable = current_principal().readable_libraries()
    return readable is None or (bool(run_filter.libraries) and set(run_filter.libraries) <= set(readable))


def run_visible(run_filter: Filter, run_id: str) -> None:
    """A run is visible when the caller may read every library it was computed over."""
    readable = current_principal().readable_libraries()
    if readable is None:
        return
    if not run_filter.libraries or not set(run_filter.libraries) <= set(readable):
        raise NotFound(f"run {run_id} not found", reason=Reason.RUN_NOT_FOUND)


def readable_ids(catalog: AssetCatalog, asset_ids: list[str]) -> tuple[list[str], list[str]]:
    """(ids the caller may read, ids to answer as missing). Free for unrestricted keys."""
    principal = current_principal()
    if principal.all_libraries:
        return asset_ids, []
    ok, hidden = [], []
    for asset_id in asset_ids:
        asset = catalog.find(asset_id) if catalog.is_id(asset_id) else None
        (ok if asset is not None and principal.can_read(asset.library) else hidden).append(asset_id)
    return ok, hidden


def check_asset_id(catalog: AssetCatalog, asset_id: str) -> None:
    """NotFound unless the caller may read the asset (no catalog read for unrestricted keys)."""
    if not current_principal().all_libraries:
        visible(catalog.get(asset_id))
