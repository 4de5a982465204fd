"""One thread per model that runs every forward pass, with text queries ahead of image batches; on a CPU
with an ONNX Runtime tower, image passes may also run side by side on helper threads (streams).

Why one thread: on a CPU, every thread that runs torch gets its own OpenMP team, and once two threads
have run torch in a process every forward pass gets slower (measured here: a CLIP text query at 4.5 ms
when one thread runs torch, ~10 ms when two do; with the gRPC pool's threads taking turns it was 2x
worse again). So gRPC threads, the Celery worker and the loader hand their work to this lane.

Why priorities: during ingestion the lane is busy with image batches (~0.8 s each for 16 images on
this CPU); a search arriving then should wait for the batch in progress at most, not for every batch
queued behind it.

Why streams: one pass on two intra-op threads meets at a barrier after every operator, so when another
thread of the process (a decoder, an upload) takes one of the cores, the other thread of the pass waits
for it hundreds of times a pass. Two single-thread passes side by side never wait for each other: on a
2-core AMD EPYC with a thread decoding JPEGs for 30 % of a core beside it, CLIP ViT-B/32 in ONNX Runtime ran
12.7-13.1 img/s as one 2-thread pass and 15.3-15.7 as two 1-thread streams (quiet: 16.6-17.6 and 17.6-18.5;
``python -m bench.lane_streams_bench --model random-clip:vit-b-32``).
Only passes handed over as *shared* (:meth:`InferenceLane.map_batches` with ``shared=True``: an image
tower in ONNX Runtime, whose session runs concurrent calls each on its calling thread) go to the helpers;
text queries, loading and models that run in torch stay on the lane itself.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np

from ordo.embedding.lane_priority import promote_current_thread

T = TypeVar("T")

TEXT_PRIORITY = 0
IMAGE_PRIORITY = 1
HELPER_RECHECK_S = 1.0  # an idle helper re-reads the stream count this often (the CPU budget may change)


class InferenceLane:
    """A daemon thread executing submitted calls by (priority, arrival), plus optional helper threads
    that run *shared* image passes alongside it (``streams`` of them at once, the lane included)."""

    def __init__(self, name: str) -> None:
        self._name = name[:60]
        self._cond = threading.Condition()
        self._heap: list[tuple[int, int, Callable[[], None]]] = []  # jobs only the lane runs
        self._shared: deque[Callable[[], None]] = deque()  # image passes any stream may run
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._started = False
        self._streams: Callable[[], int] = lambda: 1
        self._helpers: list[threading.Thread] = []
        self._idle: set[int] = set()  # helpers waiting for a shared pass (by index)

    def is_current_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def set_streams(self, streams: Callable[[], int]) -> None:
        """How many shared passes may run at once (read before each one: a CPU budget that shrinks because
        another Ordo process started lowers it). Helper threads start when first needed."""
        with self._cond:
            self._streams = streams
            self._cond.notify_all()

    def submit(self, priority: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the lane; called from the lane itself, it runs at once (no deadlock)."""
        return self._enqueue(fn, args, lambda job: heapq.heappush(self._heap, (priority, next(self._order), job)))

    def submit_shared(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the lane (after its own queue) or on a helper stream. ``fn`` must be safe to
        run on several threads at once. Torch operators it runs get an OpenMP team per thread (idle teams
        sleep: ``OMP_WAIT_POLICY=PASSIVE``), so it should keep torch to light pre- and post-processing."""

        def put(job: Callable[[], None]) -> None:
            self._shared.append(job)
            self._ensure_helpers()

        return self._enqueue(fn, args, put)

    def _enqueue(
        self, fn: Callable[..., T], args: tuple[Any, ...], put: Callable[[Callable[[], None]], None]
    ) -> Future[T]:
        future: Future[T] = Future()
        if self.is_current_thread():
            self._call(future, fn, args)
            return future
        with self._cond:
            self._ensure_started()
            put(lambda: self._call(future, fn, args))
            self._cond.notify_all()
        return future

    @staticmethod
    def _call(future: Future[T], fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller, who re-raises it
            future.set_exception(exc)

    def _limit(self) -> int:
        try:
            return max(1, int(self._streams()))
        except Exception:  # a broken count must not kill a helper: fall back to the lane alone
            return 1

    def _ensure_started(self) -> None:  # under self._cond
        if not self._started:
            self._thread.start()
            self._started = True

    def _ensure_helpers(self) -> None:  # under self._cond
        while len(self._helpers) < self._limit() - 1:
            index = len(self._helpers) + 1
            helper = threading.Thread(target=self._help, args=(index,), name=f"{self._name}-{index}", daemon=True)
            self._helpers.append(helper)
            helper.start()

    def _helper_free(self) -> bool:  # under self._cond
        limit = self._limit()
        return any(index < limit for index in self._idle)

    def _run(self) -> None:
        # In a serving process the other threads run as SCHED_BATCH and this one keeps its core (lane_priority).
        promote_current_thread()
        while True:
            with self._cond:
                # a shared pass is left to a free helper, so the lane stays free for the next text query
                while not self._heap and not (self._shared and not self._helper_free()):
                    self._cond.wait(HELPER_RECHECK_S)
                job = heapq.heappop(self._heap)[2] if self._heap else self._shared.popleft()
            job()

    def _help(self, index: int) -> None:
        """Helper ``index`` (1-based) runs shared passes while the stream count is above ``index``."""
        promote_current_thread()
        while True:
            with self._cond:
                self._idle.add(index)
                while not (self._shared and index < self._limit()):
                    self._cond.wait(HELPER_RECHECK_S)
                self._idle.discard(index)
                job = self._shared.popleft()
                self._cond.notify_all()  # a pass still queued is now the lane's to take
            job()

    def map_batches(
        self,
        priority: int,
        fn: Callable[[list[Any]], np.ndarray],
        items: list[Any],
        batch_size: int,
        *,
        shared: bool = False,
    ) -> np.ndarray:
        """``fn`` over consecutive batches of ``items``, one lane job per batch (so a text query waits
        for at most one batch, not the whole call), results stacked in order. ``shared``: the batches may
        run on helper streams too (see :meth:`submit_shared`)."""
        chunks = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
        jobs = [self.submit_shared(fn, chunk) if shared else self.submit(priority, fn, chunk) for chunk in chunks]
        return np.concatenate([job.result() for job in jobs], axis=0)
