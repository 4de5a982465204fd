"""Which model serves, which are built, which is being built: one small record in the object store.

Each model (and each fine-tuned version) has its own vector collection. The record names the *active*
one — search and new ingests use it — which makes it Ordo's alias: flipping it is atomic (one object
write) and every service instance sees it (the object store is shared in the distributed mode too; a
Qdrant server additionally gets a real collection alias, for tools that read Qdrant directly).
The record lives beside the assets rather than in the vector index because the embedded engine (Qdrant
Edge) has no aliases, and because it must survive a wiped or re-built index.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from ordo.errors import NotFound
from ordo.ports.object_store import ObjectStore

RECORD_KEY = "system/model_versions.json"


class VersionState(StrEnum):
    ACTIVE = "active"  # serving search and new ingests
    BUILDING = "building"  # being (re-)embedded in the background; becomes active when complete
    READY = "ready"  # complete, not serving (e.g. the previous model after a switch)
    FAILED = "failed"  # its build ended with an error; see ``error``


@dataclass(frozen=True)
class ModelVersion:
    model: str  # what the embedder factory loads: a hub id, a directory, `ordo-lite`, ...
    model_id: str  # the embedder's own id, stamped on every vector
    collection: str
    state: VersionState
    job_id: str = ""  # the re-embedding job that builds it
    reason: str = ""  # why this model (e.g. how ORDO_MODEL=auto resolved)
    created_at: str = ""
    activated_at: str = ""
    error: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ModelVersions:
    """Read-modify-write of the record under a process lock. Writers are rare (a switch starts or ends)
    and come from the ingest service or a worker finishing a switch; the flip itself is one object write."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._lock = threading.RLock()

    # --- reading ----------------------------------------------------------------------------------
    def _load(self) -> dict[str, ModelVersion]:
        try:
            raw = json.loads(self.store.get(RECORD_KEY))
        except NotFound:
            return {}
        return {v["model"]: ModelVersion(**{**v, "state": VersionState(v["state"])}) for v in raw.get("versions", [])}

    def _save(self, versions: dict[str, ModelVersion]) -> None:
        body = {"versions": [asdict(v) for v in versions.values()]}
        self.store.put(RECORD_KEY, json.dumps(body, indent=1).encode(), "application/json")

    def list(self) -> list[ModelVersion]:
        """Active first, then building, then the rest by creation time (newest first)."""
        order = {VersionState.ACTIVE: 0, VersionState.BUILDING: 1, VersionState.READY: 2, VersionState.FAILED: 3}
        versions = sorted(self._load().values(), key=lambda v: v.created_at, reverse=True)
        return sorted(versions, key=lambda v: order[v.state])

    def active(self) -> ModelVersion | None:
        return next((v for v in self._load().values() if v.state is VersionState.ACTIVE), None)

    def building(self) -> ModelVersion | None:
        return next((v for v in self._load().values() if v.state is VersionState.BUILDING), None)

    def get(self, model: str) -> ModelVersion | None:
        return self._load().get(model)

    # --- writing ----------------------------------------------------------------------------------
    def ensure_active(self, model: str, model_id: str, collection: str, reason: str) -> ModelVersion:
        """Record the first active model (a new data directory); returns the active one either way."""
        with self._lock:
            versions = self._load()
            current = next((v for v in versions.values() if v.state is VersionState.ACTIVE), None)
            if current is not None:
                return current
            now = _now()
            version = ModelVersion(model, model_id, collection, VersionState.ACTIVE, "", reason, now, now)
            versions[model] = version
            self._save(versions)
            return version

    def begin(self, model: str, model_id: str, collection: str, job_id: str, reason: str) -> ModelVersion:
        with self._lock:
            versions = self._load()
            old = versions.get(model)
            version = ModelVersion(
                model,
                model_id,
                collection,
                VersionState.BUILDING,
                job_id,
                reason,
                old.created_at if old else _now(),
                old.activated_at if old else "",
            )
            versions[model] = version
            self._save(versions)
            return version

    def activate(self, model: str) -> ModelVersion:
        """The flip: ``model`` becomes active, the previously active one READY (kept, so switching back
        only embeds what was added meanwhile)."""
        with self._lock:
            versions = self._load()
            if model not in versions:
                raise NotFound(f"no model version {model!r}")
            for name, v in versions.items():
                if v.state is VersionState.ACTIVE and name != model:
                    versions[name] = replace(v, state=VersionState.READY)
            versions[model] = replace(versions[model], state=VersionState.ACTIVE, activated_at=_now(), error="")
            self._save(versions)
            return versions[model]

    def fail(self, model: str, error: str) -> None:
        with self._lock:
            versions = self._load()
            if model in versions and versions[model].state is VersionState.BUILDING:
                versions[model] = replace(versions[model], state=VersionState.FAILED, error=error)
                self._save(versions)
