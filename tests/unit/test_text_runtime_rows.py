"""GraphTextTower runs a batch of concurrent queries in length groups (short texts are not padded to the
longest one) and must not change which row is whose: rows come back in the caller's order.

The session is a stand-in that echoes each row's first token and its unpadded length, so the bookkeeping
is visible; the real graph's numbers are checked in ``test_ordo_lite`` (agreement with eager PyTorch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ordo.embedding.text_runtime import GraphTextTower


class _Tokenizer:
    """Word count + 2 tokens, each token the text's first character code: lengths differ, rows are traceable."""

    def __call__(self, texts: list[str], truncation: bool, max_length: int) -> dict[str, Any]:
        return {"input_ids": [[ord(t[0])] * min(max_length, len(t.split()) + 2) for t in texts]}


class _Session:
    def __init__(self) -> None:
        self.widths: list[int] = []

    def run(self, _outputs: Any, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        self.widths.append(ids.shape[1])
        first = ids[:, 0].astype(np.float32)
        return [np.stack([first, mask.sum(1).astype(np.float32)], axis=1)]


def _texts() -> list[str]:
    return [chr(ord("a") + i) + " word" * (i % 7 * 3) for i in range(23)]


def test_a_batch_in_length_groups_keeps_every_row_in_place() -> None:
    session = _Session()
    tower = GraphTextTower(session, _Tokenizer(), 128, 1)
    texts = _texts()
    out = tower.features(texts)
    assert out[:, 0].tolist() == [float(ord(t[0])) for t in texts]
    assert out[:, 1].tolist() == [float(len(t.split()) + 2) for t in texts]
    assert len(session.widths) > 1  # lengths 3..21 tokens: several passes, not one padded to 21
    assert min(session.widths) < max(session.widths)


def test_a_lone_query_is_one_unpadded_pass() -> None:
    session = _Session()
    tower = GraphTextTower(session, _Tokenizer(), 128, 2)
    assert tower.features(["zebra crossing"])[0].tolist() == [float(ord("z")), 4.0]
    assert session.widths == [4]


def test_truncates_at_max_tokens() -> None:
    session = _Session()
    tower = GraphTextTower(session, _Tokenizer(), 5, 1)
    assert tower.features(["x " * 50])[0].tolist() == [float(ord("x")), 5.0]


def test_a_runtime_with_a_costly_pass_pads_instead_of_splitting() -> None:
    """The split weighs a pass's fixed cost against padding: the traced bfloat16 graph (a pass ~150 padded token
    rows) runs these 23 texts of 3..21 tokens as one pass, with every row still in place."""
    session = _Session()
    tower = GraphTextTower(session, _Tokenizer(), 128, 1, pass_rows=150)
    texts = _texts()
    out = tower.features(texts)
    assert session.widths == [21]
    assert out[:, 1].tolist() == [float(len(t.split()) + 2) for t in texts]  # unpadded lengths, caller's order


def test_the_split_is_the_cheapest() -> None:
    """Against brute force over every split of sorted lengths into consecutive groups."""
    import itertools
    import random

    from ordo.embedding.text_runtime import _length_groups

    rng = random.Random(7)
    for _ in range(30):
        lengths = [rng.randint(1, 60) for _ in range(rng.randint(1, 8))]
        rows = rng.choice([1, 8, 40, 150])

        def cost(groups: list[list[int]], rows: int = rows, lengths: list[int] = lengths) -> int:
            return sum(rows + len(g) * max(lengths[i] for i in g) for g in groups)

        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        best = min(
            cost([order[a:b] for a, b in itertools.pairwise((0, *cuts, len(order)))])
            for k in range(len(order))
            for cuts in itertools.combinations(range(1, len(order)), k)
        )
        groups = _length_groups(lengths, rows)
        assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
        assert cost(groups) == best


def test_the_split_of_a_large_call_stays_cheap() -> None:
    """EmbedTexts may bring 512 texts (naming, 256): the split works over distinct lengths (<= 128 for MiniLM),
    not over texts squared, so it stays ~1 ms (measured) on the lane, where it holds the GIL."""
    import random
    import time

    from ordo.embedding.text_runtime import _length_groups

    rng = random.Random(3)
    lengths = [rng.randint(3, 128) for _ in range(512)]
    started = time.perf_counter()
    groups = _length_groups(lengths, 8)
    assert time.perf_counter() - started < 0.05
    assert sorted(i for g in groups for i in g) == list(range(512))
    widths = [max(lengths[i] for i in g) for g in groups]
    assert widths == sorted(widths) and len(set(widths)) == len(widths)  # one length never spans two passes
