"""Kill points for the crash tests (``tests/chaos``): ``ORDO_CHAOS_KILL=<point>:<n>`` makes the process
SIGKILL itself the n-th time it passes ``point``. Unset (always, outside those tests) it costs one dict
lookup. A real SIGKILL, not an exception: nothing is flushed, closed or acknowledged, exactly as when
the machine or the OOM killer stops the process. Points: upload (original stored, record not yet),
queue (task about to be submitted), decode, embed, write (vectors upserted, records not yet READY),
optimise (an index rebuild built, not yet swapped in), switch (a model switch about to flip), analysis (a run started),
delete (an asset's vectors deleted, its record and bytes not yet).
"""

from __future__ import annotations

import os
import signal
import threading

_spec = os.environ.get("ORDO_CHAOS_KILL", "")
_point, _, _count = _spec.partition(":")
_remaining = int(_count or 1) if _point else 0
_lock = threading.Lock()


def checkpoint(point: str) -> None:
    """Die here if the crash test asked for it (see the module docstring)."""
    global _remaining
    if point != _point:
        return
    with _lock:
        _remaining -= 1
        if _remaining == 0:
            os.kill(os.getpid(), signal.SIGKILL)
