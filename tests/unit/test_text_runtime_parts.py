"""OnnxTextTower's ways to use more than one core must not change which row is whose: a batch split in
parts (run side by side) and a lone query on its own session come back in the caller's order."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ordo.embedding.text_runtime import OnnxTextTower


class _Tokenizer:
    """Word count + 2 tokens, each token the text's first character code: lengths differ, rows are traceable."""

    def __call__(self, texts: list[str], truncation: bool, max_length: int) -> dict[str, Any]:
        return {"input_ids": [[ord(t[0])] * min(max_length, len(t.split()) + 2) for t in texts]}


class _Session:
    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.calls = 0

    def run(self, _outputs: Any, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.threads.add(threading.current_thread().name)
        self.calls += 1
        ids, mask = batch["input_ids"], batch["attention_mask"]
        first = ids[:, 0].astype(np.float32)
        return [np.stack([first, mask.sum(1).astype(np.float32)], axis=1)]


def _texts() -> list[str]:
    return [chr(ord("a") + i) + " word" * (i % 7) for i in range(23)]


def test_a_split_batch_keeps_every_row_in_place() -> None:
    session = _Session()
    tower = OnnxTextTower(session, _Tokenizer(), 128, 1, parallel=2)
    texts = _texts()
    out = tower.features(texts)
    assert out[:, 0].tolist() == [float(ord(t[0])) for t in texts]
    assert out[:, 1].tolist() == [float(len(t.split()) + 2) for t in texts]
    assert len(session.threads) == 2  # the caller's thread and one helper ran a part each


def test_a_lone_query_runs_on_the_solo_session() -> None:
    batches, solo = _Session(), _Session()
    tower = OnnxTextTower(batches, _Tokenizer(), 128, 1, solo_session=solo, parallel=2)
    assert tower.features(["zebra crossing"])[0].tolist() == [float(ord("z")), 4.0]
    assert (solo.calls, batches.calls) == (1, 0)
    tower.features(["a b", "c d e"])
    assert solo.calls == 1 and batches.calls == 2
