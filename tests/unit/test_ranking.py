"""Hybrid search's fusion constant is pinned: changing it changes which images a text query shows first.

Reciprocal rank fusion scores an item ``Σ 1 / (k + rank)``; ``k`` decides how much being *first in one* ranking
outweighs being *fairly high in both*. Small ``k`` favours the single top hit, large ``k`` agreement. Ordo uses the
paper's ``k = 60`` (Cormack et al., 2009); a change must be a decision (with an evaluation), not an accident.
"""

from __future__ import annotations

import pytest

from ordo.core.ranking import RRF_K, reciprocal_rank_fusion


def _solo_against_both(semantic_rank: int, keyword_rank: int) -> list[str]:
    """Fused order of ``solo`` (first in the semantic ranking, absent from the keyword one) and ``both`` (at the
    given ranks in both), under the default ``k``, as search calls it."""
    semantic = ["solo", *(f"s{i}" for i in range(2, semantic_rank)), "both"]
    keyword = [*(f"w{i}" for i in range(1, keyword_rank)), "both"]
    fused = [item for item, _ in reciprocal_rank_fusion([semantic, keyword])]
    return [item for item in fused if item in ("solo", "both")]


def test_the_default_rrf_constant_is_the_papers_60() -> None:
    assert RRF_K == 60
    fused = dict(reciprocal_rank_fusion([["a", "b"], ["b"]]))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)


def test_the_default_constant_decides_which_hit_leads() -> None:
    """``both`` leads iff 1/(k + r1) + 1/(k + r2) > 1/(k + 1): at ranks 61 and 62 iff k >= 60, at 62 and 63 iff
    k >= 61. Together they hold for k = 60 only (and neither is a tie, so the order is not first-seen luck)."""
    assert _solo_against_both(61, 62) == ["both", "solo"]  # fails for any k <= 59
    assert _solo_against_both(62, 63) == ["solo", "both"]  # fails for any k >= 61
