"""Cross-task batching: one worker's concurrent tasks share forward passes (up to N images or T ms).

A task is a batch of images, but tasks are often small — the first of each job is a quarter batch (so
embedding starts while the upload continues), the last one is partial, and many concurrent small uploads
each make their own. A GPU fed 4 images at a time idles. With ``ORDO_WORKER_CONCURRENCY`` > 1 a worker
runs several tasks at once (Celery's thread pool: their fetching, decoding and writing overlap anyway),
and this wrapper merges the model calls they make: a call waits at most ``max_wait_s`` for others, the
merged pass holds at most ``max_images`` (calls are never split, so one larger call runs whole), and each
caller gets back exactly its own rows. One concurrent task (the default) is passed straight through.

It wraps the embedder the pipeline holds; everything but the two image-embedding calls is forwarded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class _Call:
    method: str  # "embed_images" or "embed_prepared"
    items: list[Any]
    future: Future[np.ndarray] = field(default_factory=Future)


class CoalescingEmbedder:
    def __init__(
        self, inner: Any, max_images: int, max_wait_s: float, on_merged: Callable[[int, int], object] | None = None
    ) -> None:
        """``on_merged(images, calls)`` is told of every pass that served several calls (metrics)."""
        if max_images < 1 or max_wait_s < 0:
            raise ValueError("max_images must be >= 1 and max_wait_s >= 0")
        self._inner = inner
        self._on_merged = on_merged
        self.max_images = max_images
        self.max_wait_s = max_wait_s
        self._pending: list[_Call] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ordo-coalesce", daemon=True)
        self._thread.start()
        #: (images, calls) of every merged pass; the worker's log and the tests read it.
        self.passes: list[tuple[int, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def embed_images(self, images: Any) -> np.ndarray:
        return self._submit("embed_images", list(images))

    def embed_prepared(self, prepared: Any) -> np.ndarray:
        return self._submit("embed_prepared", list(prepared))

    def _submit(self, method: str, items: list[Any]) -> np.ndarray:
        if not items:
            return getattr(self._inner, method)(items)
        call = _Call(method, items)
        with self._cond:
            self._pending.append(call)
            self._cond.notify_all()
        return call.future.result()

    def _take(self) -> list[_Call]:
        """Wait for a first call, then up to ``max_wait_s`` for more of its kind, up to ``max_images``."""
        with self._cond:
            while not self._pending:
                self._cond.wait()
            deadline = time.monotonic() + self.max_wait_s
            while True:
                kind = self._pending[0].method
                waiting = sum(len(c.items) for c in self._pending if c.method == kind)
                remaining = deadline - time.monotonic()
                if waiting >= self.max_images or remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken: list[_Call] = []
            count = 0
            for call in list(self._pending):
                if call.method != kind:
                    continue
                if taken and count + len(call.items) > self.max_images:
                    break
                taken.append(call)
                count += len(call.items)
                self._pending.remove(call)
            return taken

    def _run(self) -> None:
        while True:
            calls = self._take()
            merged = [item for call in calls for item in call.items]
            try:
                vectors = getattr(self._inner, calls[0].method)(merged)
            except BaseException as exc:  # every caller sees the failure of the pass it was part of
                for call in calls:
                    call.future.set_exception(exc)
                continue
            self.passes.append((len(merged), len(calls)))
            if len(calls) > 1 and self._on_merged is not None:
                self._on_merged(len(merged), len(calls))
            start = 0
            for call in calls:
                call.future.set_result(vectors[start : start + len(call.items)])
                start += len(call.items)
            if len(calls) > 1:
                log.debug("one forward pass for %d images of %d tasks", len(merged), len(calls))
