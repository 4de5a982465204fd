"""Search: a query (text, image bytes or an asset in the collection) → ranked images.

Pagination uses opaque tokens that carry the offset and a fingerprint of the query, so a token
can only continue the search that issued it (a token from another query is an error, not a silent
mix of two result lists).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ordo.core.payload import asset_from_payload, sample_from_payload
from ordo.domain import Filter, SampleKind, SearchHit
from ordo.embedding.base import Embedder
from ordo.errors import InvalidInput, NotFound
from ordo.ids import sample_id_for
from ordo.imaging import ImageLimits, decode
from ordo.ports.vector_index import VectorIndex

DEFAULT_TOP_K = 10
MAX_TOP_K = 1000
MAX_OFFSET = 10_000
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    next_page_token: str


def _fingerprint(query: str, filter: Filter, top_k: int, min_score: float) -> str:
    return hashlib.sha256(repr((query, filter, top_k, min_score)).encode()).hexdigest()[:16]


def encode_page_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "f": fingerprint}).encode()).decode()


def decode_page_token(token: str, fingerprint: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, fp = int(data["o"]), str(data["f"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("page_token is malformed", reason="BAD_PAGE_TOKEN") from exc
    if fp != fingerprint:
        raise InvalidInput("page_token belongs to a different query", reason="BAD_PAGE_TOKEN")
    if offset < 0 or offset > MAX_OFFSET:
        raise InvalidInput(f"page_token offset out of range (max {MAX_OFFSET})", reason="BAD_PAGE_TOKEN")
    return offset


class SearchCore:
    def __init__(self, *, index: VectorIndex, embedder: Embedder, limits: ImageLimits, decode_side: int = 256) -> None:
        self.index = index
        self.embedder = embedder
        self.limits = limits
        self.decode_side = decode_side

    def search_text(
        self,
        query: str,
        *,
        filter: Filter | None = None,
        top_k: int = 0,
        page_token: str = "",
        min_score: float = 0.0,
    ) -> SearchPage:
        query = query.strip()
        if not query:
            raise InvalidInput("query is empty: say what to look for", reason="EMPTY_QUERY")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query is longer than {MAX_QUERY_CHARS} characters", reason="QUERY_TOO_LONG")
        vector = self.embedder.embed_texts([query])[0]
        return self._search(vector, f"text:{query}", filter or Filter(), top_k, page_token, min_score)

    def search_image(
        self,
        data: bytes,
        *,
        filter: Filter | None = None,
        top_k: int = 0,
        page_token: str = "",
        min_score: float = 0.0,
    ) -> SearchPage:
        image, _ = decode(data, self.limits, max_side=self.decode_side)
        vector = self.embedder.embed_images([image])[0]
        digest = hashlib.sha256(data).hexdigest()
        return self._search(vector, f"image:{digest}", filter or Filter(), top_k, page_token, min_score)

    def search_asset(
        self,
        asset_id: str,
        *,
        filter: Filter | None = None,
        top_k: int = 0,
        page_token: str = "",
        min_score: float = 0.0,
        exclude_self: bool = False,
    ) -> SearchPage:
        """More like this: reuses the stored vector of the asset's whole-image sample (no re-embedding)."""
        point_id = sample_id_for(asset_id, SampleKind.IMAGE)
        points = self.index.retrieve([point_id], with_vectors=True) if self.index.dim else []
        if not points:
            raise NotFound(
                f"asset {asset_id} has no embedding in this collection (unknown, failed or still pending)",
                reason="ASSET_NOT_FOUND",
            )
        filter = filter or Filter()
        if exclude_self:
            filter = replace(filter, exclude_asset_ids=(*filter.exclude_asset_ids, asset_id))
        return self._search(
            np.asarray(points[0].vector, dtype=np.float32),
            f"asset:{asset_id}",
            filter,
            top_k,
            page_token,
            min_score,
        )

    def _search(
        self,
        vector: Sequence[float],
        query_key: str,
        filter: Filter,
        top_k: int,
        page_token: str,
        min_score: float,
    ) -> SearchPage:
        if top_k < 0 or top_k > MAX_TOP_K:
            raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}", reason="BAD_TOP_K")
        top_k = top_k or DEFAULT_TOP_K
        fingerprint = _fingerprint(query_key, filter, top_k, min_score)
        offset = decode_page_token(page_token, fingerprint)
        if not self.index.dim:  # nothing ingested yet
            return SearchPage([], "")
        points = self.index.search(list(map(float, vector)), limit=top_k + 1, offset=offset, filter=filter)
        if min_score:  # 0 means unset (proto3 default): cosine scores can be negative
            points = [p for p in points if p.score >= min_score]
        has_more = len(points) > top_k and offset + top_k < MAX_OFFSET
        hits = [
            SearchHit(asset_from_payload(p.payload), sample_from_payload(p.id, p.payload), p.score, offset + i + 1)
            for i, p in enumerate(points[:top_k])
        ]
        return SearchPage(hits, encode_page_token(offset + top_k, fingerprint) if has_more else "")
