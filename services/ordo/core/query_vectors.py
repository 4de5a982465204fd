"""Text-query vectors under concurrency: concurrent queries share one forward pass; repeated ones are cached.

Why: the model runs on one inference lane (one thread, see ``ordo.embedding.inference_lane``), so 50
clients searching at once used to queue 50 single-text forward passes: 39 req/s for 50 clients against
49 req/s for one. Here queries wait in one list, and a *drain* takes everything waiting (up to
``max_batch``) into one pass, again and again until the list is empty (no timer, no added latency when
idle). The same idea as the worker's cross-task batching, for queries.

Where the drain runs matters: it runs **on the model's inference lane** when the embedder offers
``submit_text_work`` (both of Ordo's families do), so the lane goes from one pass straight into the next.
An earlier version let the first waiting gRPC thread lead each pass; under 50 clients every pass then
waited for that thread to win the GIL back from the others, and the lane sat idle ~30 % of the time.

The cache holds the last ``cache_size`` (model id, query) vectors: repeated queries (paging through
results, the UI re-running a search, popular queries) skip the model entirely. Keys include the model id,
so a model switch never serves a vector of the old model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

DEFAULT_MAX_BATCH = 64
DEFAULT_CACHE_SIZE = 2048


@dataclass
class _Waiting:
    query: str
    future: Future[np.ndarray] = field(default_factory=Future)


Submit = Callable[[Callable[[], None]], bool]
"""Schedules a drain on the model's lane; False when there is no lane (the drain then gets its own thread)."""


class QueryVectors:
    """``vector(query)`` for many threads at once, batching and caching around ``embed(texts)``.

    One drain at a time: the first query that finds none running schedules one; the drain runs passes of
    everything waiting until nothing is left, then ends (the next query schedules a new one)."""

    def __init__(
        self,
        embed: Callable[[Sequence[str]], np.ndarray],
        model_id: Callable[[], str],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        cache_size: int = DEFAULT_CACHE_SIZE,
        submit: Submit | None = None,
    ) -> None:
        self._embed = embed
        self._model_id = model_id
        self._submit = submit
        self.max_batch = max_batch
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._pending: list[_Waiting] = []
        self._draining = False
        self._own: ThreadPoolExecutor | None = None  # drains for an embedder without a lane
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
            start = not self._draining
            self._draining = True
        if start:
            self._schedule()
        return waiting.future.result()

    def _schedule(self) -> None:
        try:
            if self._submit is None or not self._submit(self._drain):
                if self._own is None:
                    self._own = ThreadPoolExecutor(1, thread_name_prefix="ordo-query-batch")
                self._own.submit(self._drain)
        except BaseException as exc:  # nobody will drain: fail what waits rather than hang it
            with self._lock:
                failed, self._pending, self._draining = self._pending, [], False
            for waiting in failed:
                waiting.future.set_exception(exc)
            raise

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                if not batch:
                    self._draining = False
                    return
            self._one_pass(batch)

    def _one_pass(self, batch: list[_Waiting]) -> None:
        unique = list(dict.fromkeys(w.query for w in batch))
        try:
            model_id = self._model_id()
            rows, errors = self._run(unique)
        except BaseException as exc:  # every caller must get an answer, whatever broke
            rows, errors, model_id = {}, dict.fromkeys(unique, exc), ""
        with self._lock:
            self.passes += 1
            for query, row in rows.items():
                self._cache[(model_id, query)] = row
                self._cache.move_to_end((model_id, query))
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        for waiting in batch:
            if waiting.query in errors:
                waiting.future.set_exception(errors[waiting.query])
            else:
                waiting.future.set_result(rows[waiting.query])

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
