"""One CPU thread budget per process, shared by decoding, the model and the rest.

Why: left alone, every layer sizes itself from ``os.cpu_count()`` -- torch's intra-op pool, the decoder
threads, the BLAS pool -- so on a 2-core machine one worker ran 2 torch threads plus 2 decoders, and two
Ordo processes side by side ran 8 busy threads on 2 cores: 3.2 and 3.6 img/s together against 34 img/s for
one process alone (issue 18). The budget fixes three things:

* **The cores actually available**: ``os.sched_getaffinity`` (taskset, cpusets) and the cgroup CPU quota
  (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``), not the host's core count, which a
  container with ``--cpus 2`` on a 64-core host would otherwise see.
* **Peers**: every Ordo process that runs a model registers itself in a machine-wide folder (one file per
  pid, removed at exit; files of dead pids are ignored and cleaned up), and the cores are split between the
  live ones. A worker started next to a running stack therefore shrinks both pools instead of doubling the
  threads; the embedders call :meth:`ThreadBudget.apply` before each batch (on their inference lane), which
  rereads the peers at most every few seconds.
* **Decoding** gets one thread per two model threads (at least one): decoding a JPEG with DCT draft costs
  ~4 ms against ~30 ms for the model per image here, so more decoders only steal the model's cores.

Settings override every number: ``ORDO_TORCH_THREADS`` (model threads), ``ORDO_DECODE_THREADS``.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PEERS_DIR_ENV = "ORDO_CPU_PEERS_DIR"
# How often apply() rereads the peer folder: a listdir is cheap, but not per batch.
REFRESH_S = 5.0


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), or None when unlimited or unknown.

    cgroup v2: ``cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``. cgroup v1: ``cpu.cfs_quota_us``
    (-1 = unlimited) over ``cpu.cfs_period_us``, under ``cpu/`` or ``cpu,cpuacct/``. A malformed file counts
    as unknown (and is logged), never as zero cores.
    """
    candidates: list[tuple[Path, Path | None]] = [(root / "cpu.max", None)]
    for sub in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        candidates.append((root / sub / "cpu.cfs_quota_us", root / sub / "cpu.cfs_period_us"))
    for quota_path, period_path in candidates:
        try:
            if period_path is None:
                text = quota_path.read_text().split()
                if not text:
                    continue
                if text[0] == "max":
                    return None
                quota, period = float(text[0]), float(text[1]) if len(text) > 1 else 100_000.0
            else:
                quota = float(quota_path.read_text().strip())
                period = float(period_path.read_text().strip())
                if quota < 0:
                    return None
        except FileNotFoundError:
            continue
        except (OSError, ValueError, IndexError) as exc:
            log.warning("cannot read the CPU quota from %s (%s); ignoring it", quota_path, exc)
            continue
        if quota > 0 and period > 0:
            return quota / period
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may use: its CPU affinity, capped by the cgroup quota (rounded up, at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota - 1e-6)))
    return max(1, cpus)


def peers_dir() -> Path:
    """The machine-wide folder where model-running Ordo processes register (per user)."""
    override = os.environ.get(PEERS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(tempfile.gettempdir()) / f"ordo-cpu-peers-{os.getuid()}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def live_peers(folder: Path | None = None) -> int:
    """How many registered processes are alive (this one included when registered); stale files removed."""
    folder = folder or peers_dir()
    count = 0
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            pid = int(entry.stem)
        except ValueError:
            continue
        if _alive(pid):
            count += 1
        else:
            entry.unlink(missing_ok=True)
    return count


def split_threads(cpus: int, peers: int) -> tuple[int, int]:
    """``(model_threads, decode_threads)`` for one of ``peers`` processes sharing ``cpus`` cores."""
    share = max(1, cpus // max(1, peers))
    return share, max(1, share // 2)


@dataclass
class ThreadBudget:
    """This process's share of the machine; ``apply()`` keeps torch's pool at ``model_threads``."""

    cpus: int
    peers: int
    model_threads: int
    decode_threads: int
    model_override: int = 0
    decode_override: int = 0
    folder: Path | None = None
    _checked: float = field(default=0.0, repr=False)
    _applied: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def describe(self) -> str:
        source = "ORDO_TORCH_THREADS" if self.model_override else f"{self.cpus} cores / {self.peers} Ordo process(es)"
        return f"{self.model_threads} model + {self.decode_threads} decode threads ({source})"

    def refresh(self, now: float | None = None) -> bool:
        """Reread the peers (at most every REFRESH_S); True when this process's share changed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._checked < REFRESH_S:
                return False
            self._checked = now
            peers = max(1, live_peers(self.folder))
            model, decode = split_threads(self.cpus, peers)
            model = self.model_override or model
            decode = self.decode_override or decode
            changed = (peers, model, decode) != (self.peers, self.model_threads, self.decode_threads)
            if changed:
                log.info("CPU budget: %d Ordo process(es) now share %d cores", peers, self.cpus)
            self.peers, self.model_threads, self.decode_threads = peers, model, decode
            return changed

    def apply(self) -> int:
        """Set torch's intra-op threads to this process's share; call on the thread that runs torch."""
        self.refresh()
        if self._applied != self.model_threads:
            import torch

            torch.set_num_threads(self.model_threads)
            self._applied = self.model_threads
        return self.model_threads


_BUDGET: ThreadBudget | None = None
_BUDGET_LOCK = threading.Lock()


def _register(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}.json"
        path.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
    except OSError as exc:
        log.warning("cannot register in %s (%s): the CPU budget ignores other Ordo processes", folder, exc)
        return
    atexit.register(lambda: path.unlink(missing_ok=True))


def process_budget(*, model_threads: int = 0, decode_threads: int = 0) -> ThreadBudget:
    """This process's budget, created (and the process registered as a peer) on first call.

    ``model_threads`` / ``decode_threads`` > 0 are overrides (settings); later calls may add overrides.
    """
    global _BUDGET
    with _BUDGET_LOCK:
        if _BUDGET is None:
            folder = peers_dir()
            _register(folder)
            cpus = available_cpus()
            peers = max(1, live_peers(folder))
            model, decode = split_threads(cpus, peers)
            _BUDGET = ThreadBudget(cpus, peers, model, decode, folder=folder, _checked=time.monotonic())
            log.info("CPU budget: %d Ordo process(es) share %d available cores", peers, cpus)
        budget = _BUDGET
        if model_threads:
            budget.model_override = budget.model_threads = model_threads
        if decode_threads:
            budget.decode_override = budget.decode_threads = decode_threads
        return budget


def unregister() -> None:
    """Stop counting this process as a peer (it no longer runs a model: benchmarks, scripts)."""
    (peers_dir() / f"{os.getpid()}.json").unlink(missing_ok=True)


def reset_process_budget() -> None:
    """Forget the budget and unregister (tests)."""
    global _BUDGET
    with _BUDGET_LOCK:
        if _BUDGET is not None and _BUDGET.folder is not None:
            (_BUDGET.folder / f"{os.getpid()}.json").unlink(missing_ok=True)
        _BUDGET = None
