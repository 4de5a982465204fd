"""Near-duplicate groups: images whose embeddings lie within a cosine threshold of each other.

Why through the vector index: the all-pairs similarity matrix that other tools build is O(n²) memory (100k
images: 40 GB in float32), which is where they stop. Here every point is read once through
``VectorIndex.scroll`` (one page of vectors in memory at a time) and asked for its ``k`` nearest neighbours
through ``VectorIndex.search`` — the index (HNSW) answers that in about log n — and pairs at or above the
threshold are merged in a union-find over asset ids. Memory is O(points) (the union-find), time O(n · search).

Why union-find and ``k`` neighbours suffice: groups are the connected components of the graph "similarity ≥
threshold". Each point contributes its edges to its ``k`` nearest; a group larger than ``k + 1`` (a burst of
30 near-identical frames) is still found whole, because its members chain to each other transitively. Exact
duplicates (same bytes) were already collapsed to one asset by content hash at ingest, so what is found here is
re-encodes, resizes, crops and bursts.

Points are samples (an asset may have several: the whole image, object crops...); groups are of asset ids,
taken from the payload's ``asset_id`` (the point id when missing), and a sample never pairs with its own asset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ordo import paging
from ordo.domain import Filter
from ordo.errors import InvalidInput, Reason
from ordo.ports.vector_index import VectorIndex


@dataclass(frozen=True)
class DuplicateGroup:
    """Assets (sorted ids) that are near-duplicates; ``min_similarity`` is the weakest link that joined them."""

    asset_ids: list[str]
    min_similarity: float


class _UnionFind:
    """Disjoint sets over string keys with path halving and union by size; tracks each set's weakest edge."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.size: dict[str, int] = {}
        self.weakest: dict[str, float] = {}

    def find(self, key: str) -> str:
        parent = self.parent.setdefault(key, key)
        if parent == key:
            self.size.setdefault(key, 1)
            return key
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]  # path halving
            key = self.parent[key]
        return key

    def union(self, a: str, b: str, similarity: float) -> None:
        root_a, root_b = self.find(a), self.find(b)
        weakest = min(similarity, self.weakest.get(root_a, 1.0), self.weakest.get(root_b, 1.0))
        if root_a != root_b:
            if self.size[root_a] < self.size[root_b]:
                root_a, root_b = root_b, root_a
            self.parent[root_b] = root_a
            self.size[root_a] += self.size.pop(root_b)
            self.weakest.pop(root_b, None)
        self.weakest[root_a] = weakest


def find_duplicate_groups(
    index: VectorIndex,
    filter: Filter | None,
    min_similarity: float,
    *,
    k: int = 16,
    batch: int = 256,
    progress: Callable[[int], None] | None = None,
) -> list[DuplicateGroup]:
    """Groups of two or more assets whose vectors have cosine similarity ≥ ``min_similarity``.

    Only points matching ``filter`` are read and only they are searched, so a group never reaches outside the
    subset. ``k`` is the neighbours asked per point (see module docstring for why a small ``k`` finds large
    groups), ``batch`` the scroll page size. ``progress`` is called with the number of points done after each
    page (for job progress). Result: largest group first, ties by first asset id; ids sorted within a group,
    so the answer is deterministic for a given index.
    """
    if not (0.0 < min_similarity <= 1.0):
        raise InvalidInput(f"min_similarity is a cosine similarity and must be in (0, 1], got {min_similarity}")
    if k < 1:
        raise InvalidInput(f"k must be >= 1, got {k}")
    if batch < 1:
        raise InvalidInput(f"batch must be >= 1, got {batch}")
    # Float32 storage and HNSW rounding put an exact copy at 0.99999..., so a threshold of 1.0 means "identical
    # up to float error" rather than "never".
    threshold = min(min_similarity, 1.0 - 1e-5)
    groups = _UnionFind()
    done = 0
    for point in index.scroll(filter, with_vectors=True, batch_size=batch):
        asset = str(point.payload.get("asset_id") or point.id)
        # +1: the point finds itself first (and maybe its asset's other samples), which are not neighbours.
        for hit in index.search(point.vector, limit=k + 1, filter=filter):
            if hit.score < threshold:
                break  # hits come best first
            other = str(hit.payload.get("asset_id") or hit.id)
            if other != asset:
                groups.union(asset, other, min(float(hit.score), 1.0))
        done += 1
        if progress is not None and done % batch == 0:
            progress(done)
    if progress is not None and done % batch:
        progress(done)
    members: dict[str, list[str]] = {}
    for key in groups.parent:
        members.setdefault(groups.find(key), []).append(key)
    result = [
        DuplicateGroup(asset_ids=sorted(ids), min_similarity=round(groups.weakest[root], 6))
        for root, ids in members.items()
        if len(ids) > 1
    ]
    result.sort(key=lambda g: (-len(g.asset_ids), g.asset_ids[0]))
    return result


class DuplicatePages:
    """Pages of :func:`find_duplicate_groups`, the groups of one (filter, threshold) kept for the next pages.

    Why a cache: finding the groups scrolls and searches the whole filtered collection; paging through them
    must not repeat that per page. It holds the last few questions only, keyed by the filter, the threshold and
    the collection's size (an ingest in between recomputes). Tokens are ``ordo.paging`` offsets bound to the
    filter and threshold (AIP-158): one presented with other parameters is refused.
    """

    MAX_QUESTIONS = 8

    def __init__(self, index: VectorIndex) -> None:
        self.index = index
        self._cache: dict[tuple[str, float, int], list[DuplicateGroup]] = {}

    def page(
        self, flt: Filter, min_similarity: float, page_size: int, page_token: str = ""
    ) -> tuple[list[DuplicateGroup], str]:
        if not math.isfinite(min_similarity) or not (0 < min_similarity <= 1):
            raise InvalidInput(
                f"min_similarity is a cosine similarity in (0, 1], got {min_similarity}",
                reason=Reason.BAD_MIN_SIMILARITY,
            )
        question = (repr(flt), float(min_similarity))
        offset = paging.decode_offset(page_token, *question)
        key = (*question, self.index.count(flt))
        groups = self._cache.get(key) if page_token else None
        if groups is None:
            groups = find_duplicate_groups(self.index, flt, float(min_similarity))
            if len(self._cache) > self.MAX_QUESTIONS:
                self._cache.clear()
            self._cache[key] = groups
        page = groups[offset : offset + page_size]
        return page, paging.next_offset_token(offset, len(page), len(groups), *question)
