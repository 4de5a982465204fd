"""Vector index port: samples' vectors and payloads, searched by cosine similarity (Qdrant)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from ordo.domain import Filter, ScoredPoint, VectorPoint

# Payload fields with an index, and the index type each gets. Shared by every adapter so filters
# behave the same on the embedded engine and on a server.
PAYLOAD_INDEXES: dict[str, str] = {
    "asset_id": "keyword",
    "kind": "keyword",
    "mime_type": "keyword",
    "source_uri": "keyword",
    "model_id": "keyword",
    "width": "integer",
    "height": "integer",
    "captured_at": "datetime",
    "ingested_at": "datetime",
    # OCR text of ``text`` samples: a full-text index (word tokenizer, lower-cased) for keyword search.
    "text": "text",
    "cluster_id": "keyword",  # written by analysis runs (``set_payload``) so search can stay inside a cluster
    "library": "keyword",  # the tenant: every read is filtered by the libraries the caller may see
}


@dataclass(frozen=True)
class IndexCapabilities:
    """What an index does beyond the port's operations, declared by each adapter (a class attribute) so
    the wiring and the core read a flag instead of probing for methods.

    Each flag names an optional protocol below that the adapter then implements; an adapter without a
    capability lacks the method altogether (no failing stub to call by mistake).
    """

    # Exactly one process opens the collection (Qdrant Edge holds a directory lock): nobody else can be
    # writing to it or computing over it, so work left RUNNING by a stopped process was cut short.
    single_writer: bool = False
    # ``optimize()``/``maintain()`` (:class:`OptimizableIndex`): the engine has no background optimiser,
    # so the caller builds the HNSW graph when a job ends; servers index by themselves.
    optimize: bool = False
    # ``set_alias()`` (:class:`AliasedIndex`): a server alias can follow the active model's collection.
    aliases: bool = False
    # ``for_collection()`` (:class:`SharedClientIndex`): other collections share this index's connection
    # (Qdrant local mode allows one client per folder, so per-model collections must share it).
    shared_client: bool = False


@runtime_checkable
class VectorIndex(Protocol):
    """One collection of unit vectors of a fixed size, cosine distance.

    Point ids are UUID strings (deterministic sample ids), so upserting the same point twice keeps one.
    A vector of the wrong size raises ``ordo.errors.Conflict``; an unreachable backend ``Unavailable``.
    """

    backend: str
    capabilities: IndexCapabilities

    def ensure_collection(self, dim: int) -> None:
        """Create the collection with payload indexes if missing; ``Conflict`` if it exists with another size."""
        ...

    @property
    def dim(self) -> int | None:
        """Vector size of the collection, or None before it exists."""
        ...

    def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    def search(
        self, vector: Sequence[float], limit: int, offset: int = 0, filter: Filter | None = None
    ) -> list[ScoredPoint]:
        """Best ``limit`` points after skipping ``offset``, best first."""
        ...

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[VectorPoint]:
        """Points by id (missing ids are left out); vectors empty unless asked for."""
        ...

    def delete_by_asset(self, asset_id: str) -> None: ...

    def count(self, filter: Filter | None = None) -> int: ...

    def scroll(
        self, filter: Filter | None = None, *, with_vectors: bool = True, batch_size: int = 1024
    ) -> Iterator[VectorPoint]:
        """Every point matching ``filter``, in a stable order (by id), fetched ``batch_size`` at a time.

        Analysis reads whole collections this way; it is a generator so memory holds one batch of the
        engine's records at a time. Empty before the collection exists.
        """
        ...

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merge ``payload``'s keys into the payloads of ``ids`` (other keys kept; ids not stored are skipped).

        How analysis writes cluster assignments without touching vectors; a missing id is not an error
        because a point may be deleted between reading it and labelling it.
        """
        ...

    def close(self) -> None: ...


class OptimizableIndex(VectorIndex, Protocol):
    """An index whose HNSW graph is built on demand (``IndexCapabilities.optimize``)."""

    def optimize(self) -> bool:
        """Index every point now (blocking); True if anything changed."""
        ...

    def maintain(self) -> bool:
        """Start :meth:`optimize` in the background unless one runs; returns whether it started."""
        ...

    def upgrade(self) -> bool:
        """Start :meth:`maintain` if the stored index predates the adapter's current settings; whether it did."""
        ...


class AliasedIndex(VectorIndex, Protocol):
    """An index on a server with collection aliases (``IndexCapabilities.aliases``)."""

    def set_alias(self, alias: str) -> None:
        """Point ``alias`` at this collection atomically."""
        ...


class SharedClientIndex(VectorIndex, Protocol):
    """An index whose connection serves other collections too (``IndexCapabilities.shared_client``)."""

    def for_collection(self, collection: str) -> VectorIndex: ...


def optimizable(index: VectorIndex) -> OptimizableIndex | None:
    """``index`` as an :class:`OptimizableIndex` when it declares that capability, else None."""
    return cast(OptimizableIndex, index) if index.capabilities.optimize else None


def aliased(index: VectorIndex) -> AliasedIndex | None:
    """``index`` as an :class:`AliasedIndex` when it declares that capability, else None."""
    return cast(AliasedIndex, index) if index.capabilities.aliases else None


def shared_client(index: VectorIndex) -> SharedClientIndex | None:
    """``index`` as a :class:`SharedClientIndex` when it declares that capability, else None."""
    return cast(SharedClientIndex, index) if index.capabilities.shared_client else None
