"""Text-query vectors under concurrency: concurrent queries share one forward pass; repeated ones are cached.

Why: the model runs on one inference lane (one thread, see ``ordo.embedding.inference_lane``), so 50
clients searching at once used to queue 50 single-text forward passes: 39 req/s for 50 clients against
49 req/s for one. A text tower costs little more for 16 texts than for one, so here a query that arrives
while a forward pass is running waits for it to end and then goes into the *next* pass with every other
query that arrived meanwhile (leader/follower batching: no timer, no added latency when idle). The same
idea as the worker's cross-task batching, for queries.

The cache holds the last ``cache_size`` (model id, query) vectors: repeated queries (paging through
results, the UI re-running a search, popular queries) skip the model entirely. Keys include the model id,
so a model switch never serves a vector of the old model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

DEFAULT_MAX_BATCH = 32
DEFAULT_CACHE_SIZE = 2048


@dataclass
class _Waiting:
    query: str
    future: Future[np.ndarray] = field(default_factory=Future)
    wake: threading.Event = field(default_factory=threading.Event)  # result ready, or this thread leads


class QueryVectors:
    """``vector(query)`` for many threads at once, batching and caching around ``embed(texts)``.

    One pass at a time: the thread that finds no pass running leads one pass (its query and everything
    waiting, up to ``max_batch``), then hands the lead to the oldest query still waiting, so no caller
    serves others' queries for longer than one pass after its own is done."""

    def __init__(
        self,
        embed: Callable[[Sequence[str]], np.ndarray],
        model_id: Callable[[], str],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._embed = embed
        self._model_id = model_id
        self.max_batch = max_batch
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._pending: list[_Waiting] = []
        self._running = False
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.passes = 0  # forward passes run (for tests and metrics)
        self.cache_hits = 0

    def vector(self, query: str) -> np.ndarray:
        key = (self._model_id(), query)
        waiting = _Waiting(query)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return cached
            self._pending.append(waiting)
            if not self._running:
                self._running = True
                waiting.wake.set()  # lead at once
        while True:
            waiting.wake.wait()
            if waiting.future.done():
                return waiting.future.result()
            waiting.wake.clear()
            self._one_pass()  # promoted: this query is first in line

    def _one_pass(self) -> None:
        with self._lock:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        unique = list(dict.fromkeys(w.query for w in batch))
        try:
            model_id = self._model_id()
            rows, errors = self._run(unique)
        except BaseException as exc:  # never leave the lead unclaimed: the next caller would wait forever
            rows, errors, model_id = {}, dict.fromkeys(unique, exc), ""
        with self._lock:
            self.passes += 1
            for query, row in rows.items():
                self._cache[(model_id, query)] = row
                self._cache.move_to_end((model_id, query))
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            if self._pending:
                self._pending[0].wake.set()  # the next pass is led by the oldest waiting query
            else:
                self._running = False
        for waiting in batch:
            if waiting.query in errors:
                waiting.future.set_exception(errors[waiting.query])
            else:
                waiting.future.set_result(rows[waiting.query])
            waiting.wake.set()

    def _run(self, unique: list[str]) -> tuple[dict[str, np.ndarray], dict[str, BaseException]]:
        rows: dict[str, np.ndarray] = {}
        errors: dict[str, BaseException] = {}
        try:
            matrix = self._embed(unique)
            rows = {query: matrix[i] for i, query in enumerate(unique)}
        except Exception as exc:
            if len(unique) == 1:
                errors[unique[0]] = exc
            else:  # one bad query must not fail its batch mates: one at a time instead
                for query in unique:
                    try:
                        rows[query] = self._embed([query])[0]
                    except Exception as single:
                        errors[query] = single
        return rows, errors
