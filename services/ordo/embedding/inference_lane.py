"""One thread per model that runs every forward pass, with text queries ahead of image batches.

Why one thread: on a CPU, every thread that runs torch gets its own OpenMP team, and once two threads
have run torch in a process every forward pass gets slower (measured here: a CLIP text query at 4.5 ms
when one thread runs torch, ~10 ms when two do; with the gRPC pool's threads taking turns it was 2x
worse again). So gRPC threads, the Celery worker and the loader hand their work to this lane.

Why priorities: during ingestion the lane is busy with image batches (~0.8 s each for 16 images on
this CPU); a search arriving then should wait for the batch in progress at most, not for every batch
queued behind it.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np

from ordo.embedding.lane_priority import promote_current_thread

T = TypeVar("T")

TEXT_PRIORITY = 0
IMAGE_PRIORITY = 1


class InferenceLane:
    """A single daemon thread executing submitted calls by (priority, arrival)."""

    def __init__(self, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], None]]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name=name[:60], daemon=True)
        self._started = False
        self._start_lock = threading.Lock()

    def is_current_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, priority: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the lane; called from the lane itself, it runs at once (no deadlock)."""
        future: Future[T] = Future()
        if self.is_current_thread():
            self._call(future, fn, args)
            return future
        self._ensure_started()
        self._queue.put((priority, next(self._order), lambda: self._call(future, fn, args)))
        return future

    @staticmethod
    def _call(future: Future[T], fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller, who re-raises it
            future.set_exception(exc)

    def _ensure_started(self) -> None:
        with self._start_lock:
            if not self._started:
                self._thread.start()
                self._started = True

    def _run(self) -> None:
        # In a serving process the other threads run as SCHED_BATCH and this one keeps its core (lane_priority).
        promote_current_thread()
        while True:
            _, _, job = self._queue.get()
            job()

    def map_batches(
        self, priority: int, fn: Callable[[list[Any]], np.ndarray], items: list[Any], batch_size: int
    ) -> np.ndarray:
        """``fn`` over consecutive batches of ``items``, one lane job per batch (so a text query waits
        for at most one batch, not the whole call), results stacked in order."""
        jobs = [
            self.submit(priority, fn, items[start : start + batch_size]) for start in range(0, len(items), batch_size)
        ]
        return np.concatenate([job.result() for job in jobs], axis=0)
