"""Vector index port: samples' vectors and payloads, searched by cosine similarity (Qdrant)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class VectorIndex(Protocol):
    """One collection of unit vectors of a fixed size, cosine distance.

    Point ids are UUID strings (deterministic sample ids), so upserting the same point twice keeps one.
    A vector of the wrong size raises ``ordo.errors.Conflict``; an unreachable backend ``Unavailable``.
    """

    backend: str

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
