"""Deterministic identifiers. Asset ids are content hashes and sample ids are derived from them, so
ingesting or embedding the same thing twice always lands on the same ids (idempotent upserts)."""

from __future__ import annotations

import hashlib
import uuid

from ordo.domain import SampleKind

_SAMPLE_NAMESPACE = uuid.UUID("6f0f7a52-9d43-4c1e-9a57-0f2c3d0a7e11")


def asset_id_for(data: bytes, library: str = "default") -> str:
    """SHA-256 of the bytes in the default library. In another library the name is hashed in first, so
    the same bytes in two libraries are two assets: dedup never tells one tenant what another holds, and
    deleting in one library never removes the other's copy."""
    if library == "default":
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256(f"ordo-library/{library}\0".encode())
    digest.update(data)
    return digest.hexdigest()


def sample_id_for(asset_id: str, kind: SampleKind, index: int = 0) -> str:
    """A UUID (Qdrant point ids must be UUIDs or integers) stable across runs, workers and retries."""
    return str(uuid.uuid5(_SAMPLE_NAMESPACE, f"{asset_id}/{kind.value}/{index}"))


def batch_id_for(job_id: str, seq: int) -> str:
    return f"{job_id}-{seq:06d}"


def is_asset_id(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)
