"""The inference lane keeps its core: in a serving process every other thread runs as ``SCHED_BATCH``.

Why: under 50 concurrent ``SearchText`` clients the model's lane (``ordo.embedding.inference_lane``) is the
bottleneck, yet it was off its CPU a third of the time while the machine still had 0.4 of a core idle. A
scheduler trace (``perf record -e sched:sched_switch``, 2-core Xeon with AMX, 3 s) put 15 % of its wall time
in ~1,000 preemptions a second by the process's own threads waking up (gRPC handlers taking turns on the
GIL, gRPC's event-engine and poller threads) and 12 % in GIL hand-overs. Linux's fair scheduler lets a
waking ``SCHED_OTHER`` thread preempt the running one; a ``SCHED_BATCH`` thread never preempts on wake-up
and otherwise gets its fair share (tick-driven). So a serving process marks its threads ``SCHED_BATCH``
(threads created later inherit it from their creator) and the lane switches itself back: its preemptions fell
to ~400 a second (the rest come from other processes, there the load generator) and its passes from 59-61 to
51-53 ms of wall time for the same ~36 ms of CPU. ``python -m bench.concurrency_bench --size 100000 --seconds
20``, four alternating pairs: 50 clients 363-385 req/s without, 371-418 with (+2 to +9 % in each pair).

Both calls are unprivileged (a thread may move between the two normal policies at its own nice value), are
no-ops where the platform has no such policies, and leave alone a process that someone started under another
policy (``SCHED_BATCH``, ``SCHED_IDLE``, real-time; ``chrt``, systemd): that was a choice, not a default.
``ORDO_LANE_PRIORITY`` turns it off.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

_OTHER = getattr(os, "SCHED_OTHER", None)
_BATCH = getattr(os, "SCHED_BATCH", None)
#: Set when this module moved the process to SCHED_BATCH: only then does the lane move back (a process that was
#: started as SCHED_BATCH, e.g. by systemd's ``CPUSchedulingPolicy=batch``, keeps it everywhere).
_demoted = False


def _policy(tid: int) -> int | None:
    try:
        return os.sched_getscheduler(tid)
    except OSError:  # the thread ended meanwhile, or the platform refuses
        return None


def _set(tid: int, policy: int) -> bool:
    try:
        os.sched_setscheduler(tid, policy, os.sched_param(0))
    except OSError:  # a sandbox that forbids it: serving is the same, only less protected
        return False
    return True


def supported() -> bool:
    """Whether this platform has the two policies (Linux does; macOS and Windows do not)."""
    return _OTHER is not None and _BATCH is not None and os.path.isdir("/proc/self/task")


def demote_process_threads() -> int:
    """Every thread of this process that runs as ``SCHED_OTHER`` becomes ``SCHED_BATCH``; returns how many.
    Call it early in a serving process: threads created afterwards inherit the caller's policy."""
    global _demoted
    if not supported():
        return 0
    assert _OTHER is not None and _BATCH is not None
    if _policy(threading.get_native_id()) != _OTHER:
        return 0  # started under another policy: someone's choice
    changed = 0
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        if _policy(tid) == _OTHER and _set(tid, _BATCH):
            changed += 1
    _demoted = changed > 0
    log.debug("%d threads of this process run as SCHED_BATCH; the inference lane keeps SCHED_OTHER", changed)
    return changed


def promote_current_thread() -> bool:
    """The calling thread back to ``SCHED_OTHER`` if it inherited ``SCHED_BATCH`` from
    :func:`demote_process_threads` (the lane, at its start)."""
    if not _demoted or not supported():
        return False
    assert _OTHER is not None and _BATCH is not None
    tid = threading.get_native_id()
    if _policy(tid) != _BATCH:
        return False
    return _set(tid, _OTHER)
