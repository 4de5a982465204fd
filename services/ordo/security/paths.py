"""Server-side inputs: which local paths, buckets and model folders a caller may make the server read.

Called before any read. The order matters: a path is first checked *lexically* against the roots, so
a refused path costs no filesystem access and its answer cannot tell whether it exists; only then is
it resolved (symlinks followed) and checked again, so a link inside a root cannot lead out of it.
Bounded reading (FIFOs, devices, loops, size caps) is the walker's job (core.ingestion); this module only
says yes or no.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from ordo.config import Settings
from ordo.errors import InvalidInput, PermissionDenied, Reason
from ordo.security.principal import Role, current_principal

MAX_URI_CHARS = 4096
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")
_BUILTIN = re.compile(r"^(ordo-lite|random-clip:[\w-]{1,40})$")


def ingest_roots(settings: Settings) -> list[Path]:
    return [Path(os.path.realpath(p)) for p in settings.ingest_roots.split(":") if p.strip()]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def check_local_uri(uri: str, settings: Settings) -> Path:
    """A local path (or file:// URI) the caller may have the server read; refused otherwise."""
    if current_principal().role < Role.ADMIN:
        raise PermissionDenied(
            "server-side paths need an admin key; upload the files instead", reason=Reason.PATHS_NEED_ADMIN
        )
    roots = ingest_roots(settings)
    if not roots:
        raise PermissionDenied(
            "server-side paths are off: set ORDO_INGEST_ROOTS to the folders the server may read, or upload",
            reason=Reason.PATH_OUTSIDE_ROOTS,
        )
    raw = uri.removeprefix("file://")
    if len(raw) > MAX_URI_CHARS or "\0" in raw:
        raise InvalidInput("path too long or contains NUL", reason=Reason.BAD_URI)
    lexical = Path(os.path.abspath(raw))
    if not _inside(lexical, roots):
        raise PermissionDenied(f"{lexical} is outside ORDO_INGEST_ROOTS", reason=Reason.PATH_OUTSIDE_ROOTS)
    resolved = Path(os.path.realpath(lexical))
    if not _inside(resolved, roots):
        raise PermissionDenied(f"{lexical} leads outside ORDO_INGEST_ROOTS (symlink)", reason=Reason.PATH_OUTSIDE_ROOTS)
    return resolved


def guard_file(settings: Settings) -> Callable[[Path], Path]:
    """The per-file check the walker calls for every file it found under an accepted root."""
    roots = ingest_roots(settings)

    def guard(path: Path) -> Path:
        resolved = Path(os.path.realpath(path))
        if not _inside(resolved, roots):
            raise PermissionDenied(
                f"{path} leads outside ORDO_INGEST_ROOTS (symlink)", reason=Reason.PATH_OUTSIDE_ROOTS
            )
        try:
            mode = os.stat(resolved).st_mode
        except OSError as exc:
            raise PermissionDenied(f"cannot read {path}: {exc.strerror}", reason=Reason.UNREADABLE) from exc
        if not stat.S_ISREG(mode):
            raise PermissionDenied(f"{path} is not a regular file", reason=Reason.NOT_A_FILE)
        return resolved

    return guard


def check_bucket_uri(uri: str, settings: Settings) -> str:
    bucket = uri.removeprefix("s3://").partition("/")[0]
    allowed = [b.strip() for b in settings.ingest_buckets.split(",") if b.strip()]
    if not any(fnmatch.fnmatchcase(bucket, pattern) for pattern in allowed):
        raise PermissionDenied(
            f"bucket '{bucket[:63]}' is not in ORDO_INGEST_BUCKETS; only configured buckets can be ingested",
            reason=Reason.BUCKET_NOT_ALLOWED,
        )
    return bucket


def check_model(model: str, settings: Settings, registered: set[str]) -> str:
    """``ActivateModel`` takes a registered model id, a built-in, a hub id, or a folder under
    ``<data_dir>/models`` (where `ordo finetune` writes); never another server path."""
    name = model.strip()
    if not name or name in registered or _BUILTIN.match(name):
        return name
    looks_like_path = name.startswith(("/", ".", "~")) or "\\" in name or os.path.isdir(name)
    if not looks_like_path and _HUB_ID.match(name):
        return name
    models_dir = Path(os.path.realpath(settings.data_dir / "models"))
    resolved = Path(os.path.realpath(os.path.expanduser(name)))
    if models_dir in resolved.parents:
        return str(resolved)
    raise PermissionDenied(
        f"'{name[:200]}' is neither a registered model nor a folder under {models_dir}",
        reason=Reason.MODEL_PATH_NOT_ALLOWED,
    )
