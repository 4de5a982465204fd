"""Search: a query (text, image bytes or an asset in the collection) → ranked images.

Results are images: hits on object crops and OCR text lines roll up to their asset, the best sample
winning (and returned, so clients can highlight it). Text queries rank by embedding similarity, by
keywords on OCR text, or by both fused (``SearchMode``; see ``ordo.core.ranking``).

Pagination is ``ordo.paging``'s (AIP-158): the token carries the offset and a digest of the query (not
of the page size), so a token can only continue the search that issued it (a token from another query
is an error, not a silent mix of two result lists) while a client may change its page size mid-way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ordo import paging
from ordo.core.payload import asset_from_payload, sample_from_payload
from ordo.core.query_vectors import QueryVectors
from ordo.core.ranking import KeywordMatch, keyword_ranking, query_words, reciprocal_rank_fusion, roll_up
from ordo.domain import Filter, SampleKind, ScoredPoint, SearchHit, SearchMode
from ordo.embedding.base import Embedder
from ordo.errors import InvalidInput, NotFound, Reason
from ordo.ids import sample_id_for
from ordo.imaging import ImageLimits, decode
from ordo.ports.vector_index import VectorIndex

MAX_PAGE_SIZE = 1000
MAX_OFFSET = 10_000  # how deep a client may page into one ranking
MAX_QUERY_CHARS = 2000
# Most sample points read to fill one page of images (several samples can roll up into one image).
MAX_CANDIDATES = 20_000
# Text lines read for the keyword half (those nearest the query's embedding among the lines that hold
# any of its words), and how deep the semantic half of a hybrid query looks: RRF fuses these two lists.
KEYWORD_CANDIDATES = 1000
HYBRID_DEPTH = 200


Vector = Sequence[float] | np.ndarray  # a query vector, as the embedder or the index gives it
# What a page token is bound to: the query (its kind and content), the filter and the score floor.
SearchRequest = tuple[str, Filter, float]


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    next_page_token: str
    request: SearchRequest | None = None  # so a caller that sends fewer hits can make the token for the rest

    def token_after(self, rank: int) -> str:
        """The page token that continues after the hit of this ``rank`` (1-based, as in SearchHit)."""
        return paging.encode_token(rank, *(self.request or ()))


def _offset(page_token: str, request: SearchRequest) -> int:
    offset = paging.decode_offset(page_token, *request)
    if offset > MAX_OFFSET:
        raise InvalidInput(f"page_token offset out of range (max {MAX_OFFSET})", reason=Reason.BAD_PAGE_TOKEN)
    return offset


class SearchCore:
    def __init__(self, *, index: VectorIndex, embedder: Embedder, limits: ImageLimits, decode_side: int = 256) -> None:
        self.index = index
        self.embedder = embedder
        self.limits = limits
        self.decode_side = decode_side
        # Concurrent text queries share forward passes; repeated ones are cached (see query_vectors).
        self.query_vectors = QueryVectors(
            lambda texts: self.embedder.embed_texts(texts),
            lambda: str(self.embedder.model_id),
            submit=self._on_model_lane,
        )

    def _on_model_lane(self, work: Callable[[], None]) -> bool:
        """Runs the query batcher's drain on the embedder's inference lane, when it has one."""
        return self.embedder.submit_text_work(work)

    def search_text(
        self,
        query: str,
        *,
        filter: Filter | None = None,
        page_size: int = 0,
        page_token: str = "",
        min_score: float = 0.0,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> SearchPage:
        """``min_score`` applies to cosine similarity (the semantic half); ``mode`` picks the ranking."""
        query = query.strip()
        if not query:
            raise InvalidInput("query is empty: say what to look for", reason=Reason.EMPTY_QUERY)
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query is longer than {MAX_QUERY_CHARS} characters", reason=Reason.QUERY_TOO_LONG)
        vector = self.query_vectors.vector(query)
        if mode is SearchMode.SEMANTIC:
            return self._search(vector, f"text:{query}", filter or Filter(), page_size, page_token, min_score)
        return self._search_words(query, vector, mode, filter or Filter(), page_size, page_token, min_score)

    def search_image(
        self,
        data: bytes,
        *,
        filter: Filter | None = None,
        page_size: int = 0,
        page_token: str = "",
        min_score: float = 0.0,
    ) -> SearchPage:
        image, _ = decode(data, self.limits, max_side=self.decode_side)
        vector = self.embedder.embed_images([image])[0]
        digest = hashlib.sha256(data).hexdigest()
        return self._search(vector, f"image:{digest}", filter or Filter(), page_size, page_token, min_score)

    def search_asset(
        self,
        asset_id: str,
        *,
        filter: Filter | None = None,
        page_size: int = 0,
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
                reason=Reason.ASSET_NOT_FOUND,
            )
        filter = filter or Filter()
        if exclude_self:
            filter = replace(filter, exclude_asset_ids=(*filter.exclude_asset_ids, asset_id))
        return self._search(
            np.asarray(points[0].vector, dtype=np.float32),
            f"asset:{asset_id}",
            filter,
            page_size,
            page_token,
            min_score,
        )

    def _search(
        self,
        vector: Vector,
        query_key: str,
        filter: Filter,
        page_size: int,
        page_token: str,
        min_score: float,
    ) -> SearchPage:
        size = paging.page_size(page_size, maximum=MAX_PAGE_SIZE)
        request: SearchRequest = (query_key, filter, min_score)
        offset = _offset(page_token, request)
        if not self.index.dim:  # nothing ingested yet
            return SearchPage([], "")
        assets = self._semantic_assets(vector, filter, offset + size + 1, min_score)
        ranked = [(p, p.score, p.score, 0.0) for p in assets]
        return _page(ranked, offset, size, request)

    def _semantic_assets(self, vector: Vector, filter: Filter, needed: int, min_score: float) -> list[ScoredPoint]:
        """Each asset's best sample, best first: at least ``needed`` assets when the index has them.

        With one sample per image this is one search of ``needed`` points; crops and text lines of the
        same image share its slot, so the search widens until enough distinct images are found."""
        limit = needed
        while True:
            points = self.index.search(list(map(float, vector)), limit=limit, filter=filter)
            exhausted = len(points) < limit
            if min_score:  # 0 means unset (proto3 default): cosine scores can be negative
                kept = [p for p in points if p.score >= min_score]
                exhausted = exhausted or len(kept) < len(points)
                points = kept
            assets = roll_up(points)
            if len(assets) >= needed or exhausted or limit >= MAX_CANDIDATES:
                return assets
            limit = min(limit * 4, MAX_CANDIDATES)

    def _search_words(
        self,
        query: str,
        vector: Vector,
        mode: SearchMode,
        filter: Filter,
        page_size: int,
        page_token: str,
        min_score: float,
    ) -> SearchPage:
        """KEYWORD and HYBRID text search. Hybrid without any keyword match is exactly semantic search."""
        size = paging.page_size(page_size, maximum=MAX_PAGE_SIZE)
        request: SearchRequest = (f"{mode.value}:{query}", filter, min_score)
        offset = _offset(page_token, request)
        if not self.index.dim:
            return SearchPage([], "")
        needed = offset + size + 1
        matches = self._keyword_matches(query, vector, filter)
        if mode is SearchMode.KEYWORD:
            return _page([(m.point, m.score, 0.0, m.score) for m in matches], offset, size, request)
        if not matches:  # nothing to fuse: exactly the semantic ranking, at the semantic cost
            semantic = self._semantic_assets(vector, filter, needed, min_score)
            return _page([(p, p.score, p.score, 0.0) for p in semantic], offset, size, request)
        semantic = self._semantic_assets(vector, filter, max(needed, HYBRID_DEPTH), min_score)
        by_semantic = {p.payload["asset_id"]: p for p in semantic}
        by_keyword = {m.asset_id: m for m in matches}
        fused = reciprocal_rank_fusion([list(by_semantic), list(by_keyword)])
        ranked = []
        for asset_id, score in fused:
            best = by_semantic.get(asset_id)
            match = by_keyword.get(asset_id)
            # The text line that matched is what a client should highlight; else the best sample.
            point = match.point if match else best
            ranked.append((point, score, best.score if best else 0.0, match.score if match else 0.0))
        return _page(ranked, offset, size, request)

    def _keyword_matches(self, query: str, vector: Vector, filter: Filter) -> list[KeywordMatch]:
        """Assets whose OCR text holds the query's words, best first (empty if the filter excludes text)."""
        words = query_words(query)
        if not words or (filter.kinds and SampleKind.TEXT not in filter.kinds):
            return []
        text_filter = replace(filter, kinds=(SampleKind.TEXT,), text_any=" ".join(words))
        lines = self.index.search(list(map(float, vector)), limit=KEYWORD_CANDIDATES, filter=text_filter)
        return keyword_ranking(words, lines)


def _page(
    ranked: Sequence[tuple[ScoredPoint, float, float, float]], offset: int, size: int, request: SearchRequest
) -> SearchPage:
    """One page of (point, score, semantic score, keyword score) rows, ranked best first."""
    has_more = len(ranked) > offset + size and offset + size < MAX_OFFSET
    hits = [
        SearchHit(
            asset_from_payload(point.payload),
            sample_from_payload(point.id, point.payload),
            score,
            offset + i + 1,
            semantic_score=semantic,
            keyword_score=keyword,
        )
        for i, (point, score, semantic, keyword) in enumerate(ranked[offset : offset + size])
    ]
    next_token = paging.encode_token(offset + size, *request) if has_more else ""
    return SearchPage(hits, next_token, request)
