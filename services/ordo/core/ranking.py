"""Ranking helpers for search over several samples per image: roll-up, keyword scoring and fusion.

* **Roll-up.** An image has one whole-image sample plus any object crops and OCR text lines; search
  answers with images, so hits on samples collapse to their asset and the best-scoring sample wins (it is
  returned with the hit, so a client can highlight the crop or the text).
* **Keyword score.** The share of the query's words found in an asset's OCR text (all its matching text
  lines together, since a name is often split over two lines). The vector index only *filters* by words
  (a full-text index, Qdrant ``MatchTextAny``); scoring here keeps Qdrant Edge and a Qdrant server
  ranking identically. Tokens are lower-cased runs of letters and digits, like Qdrant's word tokenizer.
* **Reciprocal rank fusion** (Cormack et al., 2009): ``score = Σ 1 / (k + rank)`` over the rankings an
  asset appears in. It needs no score calibration between cosine similarities and keyword shares, which
  live on unrelated scales; ``k = 60`` is the paper's value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ordo.domain import ScoredPoint

RRF_K = 60
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased words (letters and digits), in order, duplicates kept."""
    return _TOKEN.findall(text.lower())


def query_words(query: str) -> list[str]:
    """The distinct words of a query, in order."""
    return list(dict.fromkeys(tokenize(query)))


def roll_up(points: Iterable[ScoredPoint]) -> list[ScoredPoint]:
    """The first (best) point of each asset, in the given (best-first) order."""
    seen: set[str] = set()
    out = []
    for point in points:
        asset_id = point.payload.get("asset_id", point.id)
        if asset_id not in seen:
            seen.add(asset_id)
            out.append(point)
    return out


@dataclass(frozen=True)
class KeywordMatch:
    asset_id: str
    score: float  # share of the query's words found in the asset's text, 0..1
    point: ScoredPoint  # the text line matching most of the query's words


def keyword_ranking(words: Sequence[str], points: Iterable[ScoredPoint]) -> list[KeywordMatch]:
    """Assets whose text lines hold any of ``words``, best first.

    Order: share of the query's words in the asset's text, then share in its best single line (a name
    read as one line beats the same words scattered over a receipt), then the best line's cosine
    similarity, then asset id (so equal scores keep a stable order across pages).
    """
    wanted = set(words)
    if not wanted:
        return []
    found: dict[str, set[str]] = {}
    best: dict[str, tuple[int, float, ScoredPoint]] = {}
    for point in points:
        asset_id = point.payload.get("asset_id", point.id)
        hits = wanted.intersection(tokenize(str(point.payload.get("text", ""))))
        if not hits:
            continue
        found.setdefault(asset_id, set()).update(hits)
        key = (len(hits), point.score)
        if asset_id not in best or key > best[asset_id][:2]:
            best[asset_id] = (len(hits), point.score, point)
    matches = [KeywordMatch(a, len(found[a]) / len(wanted), best[a][2]) for a in found]
    matches.sort(key=lambda m: (-m.score, -best[m.asset_id][0], -best[m.asset_id][1], m.asset_id))
    return matches


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Ids by fused score, best first (ties: first seen first). Each ranking lists ids best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(i for r in rankings for i in r))}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))
