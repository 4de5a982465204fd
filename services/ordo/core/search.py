"""Search: a query (text, image bytes or an asset in the collection) → ranked images.

Results are images: hits on object crops and OCR text lines roll up to their asset, the best sample
winning (and returned, so clients can highlight it). Text queries rank by embedding similarity, by
keywords on OCR text, or by both fused (``SearchMode``; see ``ordo.core.ranking``).

Pagination is ``ordo.paging``'s (AIP-158): the token carries the offset and a digest of the query (not
of the page size), so a token can only continue the search that issued it (a token from another query
is an error, not a silent mix of two result lists) while a client may change its page size mid-way.

Totals (``with_total``): similarity ranks *every* image, so "how many results" only means something
against a score cut. The total is the number of images the ranking would page through: those passing
``min_score`` (all of them when it is 0), plus keyword matches in KEYWORD/HYBRID mode, counted no deeper
than ``MAX_OFFSET`` (the paging depth; ``Total.capped`` says when more exist). It is computed once, for
the first page that asks, and then rides in the page token, so later pages cost nothing extra; a query
that does not ask pays nothing at all (the benchmarked lone-query path is unchanged).
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
class Total:
    """How many results the ranking holds (see the module docstring for what counts)."""

    size: int  # at most MAX_OFFSET
    capped: bool  # more results exist than ``size`` says (the paging depth, or the candidate budget, ran out)


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    next_page_token: str
    request: SearchRequest | None = None  # so a caller that sends fewer hits can make the token for the rest
    total: Total | None = None  # only when asked for (``with_total``)

    def token_after(self, rank: int) -> str:
        """The page token that continues after the hit of this ``rank`` (1-based, as in SearchHit)."""
        return _token(rank, self.total, self.request or ())


def _token(offset: int, total: Total | None, request: Sequence[object]) -> str:
    """A page token at ``offset``; a known total rides along so the next page need not count again."""
    position: paging.Position = offset if total is None else [offset, total.size, int(total.capped)]
    return paging.encode_token(position, *request)


def _position(page_token: str, request: SearchRequest) -> tuple[int, Total | None]:
    """The offset a token continues from, and the total it carries (None: not counted yet)."""
    position = paging.decode_token(page_token, *request)
    total = None
    if isinstance(position, list):  # [offset, total size, capped] from ``_token``
        numbers = [x for x in position if type(x) is int and 0 <= x <= MAX_OFFSET]
        if len(numbers) != 3 or len(position) != 3:
            raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
        position, total = numbers[0], Total(numbers[1], bool(numbers[2]))
    if position is None:
        return 0, None
    if type(position) is not int or position < 0:
        raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
    if position > MAX_OFFSET:
        raise InvalidInput(f"page_token offset out of range (max {MAX_OFFSET})", reason=Reason.BAD_PAGE_TOKEN)
    return position, total


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
        with_total: bool = False,
    ) -> SearchPage:
        """``min_score`` applies to cosine similarity (the semantic half); ``mode`` picks the ranking."""
        query = query.strip()
        if not query:
            raise InvalidInput("query is empty: say what to look for", reason=Reason.EMPTY_QUERY)
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query is longer than {MAX_QUERY_CHARS} characters", reason=Reason.QUERY_TOO_LONG)
        vector = self.query_vectors.vector(query)
        page = Paging(page_size, page_token, min_score, with_total)
        if mode is SearchMode.SEMANTIC:
            return self._search(vector, f"text:{query}", filter or Filter(), page)
        return self._search_words(query, vector, mode, filter or Filter(), page)

    def search_image(
        self,
        data: bytes,
        *,
        filter: Filter | None = None,
        page_size: int = 0,
        page_token: str = "",
        min_score: float = 0.0,
        with_total: bool = False,
    ) -> SearchPage:
        image, _ = decode(data, self.limits, max_side=self.decode_side)
        vector = self.embedder.embed_images([image])[0]
        digest = hashlib.sha256(data).hexdigest()
        page = Paging(page_size, page_token, min_score, with_total)
        return self._search(vector, f"image:{digest}", filter or Filter(), page)

    def search_asset(
        self,
        asset_id: str,
        *,
        filter: Filter | None = None,
        page_size: int = 0,
        page_token: str = "",
        min_score: float = 0.0,
        exclude_self: bool = False,
        with_total: bool = False,
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
        vector = np.asarray(points[0].vector, dtype=np.float32)
        return self._search(vector, f"asset:{asset_id}", filter, Paging(page_size, page_token, min_score, with_total))

    def _search(self, vector: Vector, query_key: str, filter: Filter, page: Paging) -> SearchPage:
        size = paging.page_size(page.page_size, maximum=MAX_PAGE_SIZE)
        request: SearchRequest = (query_key, filter, page.min_score)
        offset, total = _position(page.page_token, request)
        if not self.index.dim:  # nothing ingested yet
            return SearchPage([], "", total=Total(0, False) if page.with_total else None)
        assets, complete = self._semantic_scan(vector, filter, offset + size + 1, page.min_score)
        if page.with_total and total is None:
            # A first page that already reached the end of the results has counted them.
            known = complete and offset == 0
            total = Total(len(assets), False) if known else self._total(vector, filter, page.min_score)
        ranked = [(p, p.score, p.score, 0.0) for p in assets]
        return _page(ranked, offset, size, request, total)

    def _semantic_assets(self, vector: Vector, filter: Filter, needed: int, min_score: float) -> list[ScoredPoint]:
        """Each asset's best sample, best first: at least ``needed`` assets when the index has them."""
        return self._semantic_scan(vector, filter, needed, min_score)[0]

    def _semantic_scan(
        self, vector: Vector, filter: Filter, needed: int, min_score: float
    ) -> tuple[list[ScoredPoint], bool]:
        """``_semantic_assets``, and whether the list is complete (nothing past it passes ``min_score``).

        With one sample per image this is one search of ``needed`` points; crops and text lines of the
        same image share its slot, so the search widens until enough distinct images are found."""
        limit = needed
        # One C-level conversion (ndarray.tolist) instead of a float() per element: ~2 % of the GIL's
        # time at 50 concurrent searches went to converting query vectors element by element.
        floats = np.asarray(vector, dtype=np.float64).tolist()
        while True:
            points = self.index.search(floats, limit=limit, filter=filter)
            exhausted = len(points) < limit
            if min_score:  # 0 means unset (proto3 default): cosine scores can be negative
                kept = [p for p in points if p.score >= min_score]
                exhausted = exhausted or len(kept) < len(points)
                points = kept
            assets = roll_up(points)
            if len(assets) >= needed or exhausted or limit >= MAX_CANDIDATES:
                return assets, exhausted
            limit = min(limit * 4, MAX_CANDIDATES)

    def _total(self, vector: Vector, filter: Filter, min_score: float, also: Sequence[str] = ()) -> Total:
        """How many images pass ``min_score`` (and ``also``: keyword matches), up to ``MAX_OFFSET``.

        Without a score cut every image the filter admits is a result; each has exactly one whole-image
        sample, so one exact count answers it (no ranking). With a cut, the ranking is read down to the
        cut (or the paging depth): the cost grows with the number of results, never with the library."""
        if not min_score and (not filter.kinds or SampleKind.IMAGE in filter.kinds):
            # Keyword matches are images the filter admits, so they are already in this count.
            found = self.index.count(replace(filter, kinds=(SampleKind.IMAGE,)))
            return Total(min(found, MAX_OFFSET), found > MAX_OFFSET)
        assets, complete = self._semantic_scan(vector, filter, MAX_OFFSET + 1, min_score)
        ids = {p.payload["asset_id"] for p in assets}.union(also)
        return Total(min(len(ids), MAX_OFFSET), len(ids) > MAX_OFFSET or not complete)

    def _search_words(self, query: str, vector: Vector, mode: SearchMode, filter: Filter, page: Paging) -> SearchPage:
        """KEYWORD and HYBRID text search. Hybrid without any keyword match is exactly semantic search."""
        size = paging.page_size(page.page_size, maximum=MAX_PAGE_SIZE)
        min_score = page.min_score
        request: SearchRequest = (f"{mode.value}:{query}", filter, min_score)
        offset, total = _position(page.page_token, request)
        if not self.index.dim:
            return SearchPage([], "", total=Total(0, False) if page.with_total else None)
        needed = offset + size + 1
        matches = self._keyword_matches(query, vector, filter)
        count = page.with_total and total is None
        if mode is SearchMode.KEYWORD:
            if count:  # the ranking is exactly the matches (at most KEYWORD_CANDIDATES, far below MAX_OFFSET)
                total = Total(min(len(matches), MAX_OFFSET), len(matches) > MAX_OFFSET)
            return _page([(m.point, m.score, 0.0, m.score) for m in matches], offset, size, request, total)
        if count:
            total = self._total(vector, filter, min_score, also=[m.asset_id for m in matches])
        if not matches:  # nothing to fuse: exactly the semantic ranking, at the semantic cost
            semantic = self._semantic_assets(vector, filter, needed, min_score)
            return _page([(p, p.score, p.score, 0.0) for p in semantic], offset, size, request, total)
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
        return _page(ranked, offset, size, request, total)

    def _keyword_matches(self, query: str, vector: Vector, filter: Filter) -> list[KeywordMatch]:
        """Assets whose OCR text holds the query's words, best first (empty if the filter excludes text)."""
        words = query_words(query)
        if not words or (filter.kinds and SampleKind.TEXT not in filter.kinds):
            return []
        text_filter = replace(filter, kinds=(SampleKind.TEXT,), text_any=" ".join(words))
        lines = self.index.search(list(map(float, vector)), limit=KEYWORD_CANDIDATES, filter=text_filter)
        return keyword_ranking(words, lines)


@dataclass(frozen=True)
class Paging:
    """What a search request says about the pages it wants (the rest is the query and the filter)."""

    page_size: int
    page_token: str
    min_score: float
    with_total: bool


def _page(
    ranked: Sequence[tuple[ScoredPoint, float, float, float]],
    offset: int,
    size: int,
    request: SearchRequest,
    total: Total | None = None,
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
    next_token = _token(offset + size, total, request) if has_more else ""
    return SearchPage(hits, next_token, request, total)
