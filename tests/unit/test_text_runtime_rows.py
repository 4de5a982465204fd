"""OnnxTextTower runs a batch of concurrent queries in length groups (short texts are not padded to the
longest one) and must not change which row is whose: rows come back in the caller's order.

The session is a stand-in that echoes each row's first token and its unpadded length, so the bookkeeping
is visible; the real graph's numbers are checked in ``test_ordo_lite`` (agreement with eager PyTorch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ordo.embedding.text_runtime import OnnxTextTower


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
    tower = OnnxTextTower(session, _Tokenizer(), 128, 1)
    texts = _texts()
    out = tower.features(texts)
    assert out[:, 0].tolist() == [float(ord(t[0])) for t in texts]
    assert out[:, 1].tolist() == [float(len(t.split()) + 2) for t in texts]
    assert len(session.widths) > 1  # lengths 3..21 tokens: several passes, not one padded to 21
    assert min(session.widths) < max(session.widths)


def test_a_lone_query_is_one_unpadded_pass() -> None:
    session = _Session()
    tower = OnnxTextTower(session, _Tokenizer(), 128, 2)
    assert tower.features(["zebra crossing"])[0].tolist() == [float(ord("z")), 4.0]
    assert session.widths == [4]


def test_truncates_at_max_tokens() -> None:
    session = _Session()
    tower = OnnxTextTower(session, _Tokenizer(), 5, 1)
    assert tower.features(["x " * 50])[0].tolist() == [float(ord("x")), 5.0]
