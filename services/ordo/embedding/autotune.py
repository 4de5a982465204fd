"""Measure an image tower on this machine at load time and keep its fastest setting, cached per machine + model.

Why: the right batch size, thread count, memory format, dtype and runtime differ by CPU, and guessing costs a
lot. On a Xeon without bf16 (issue 18) EfficientNet-Lite2 ran 34 img/s at batch 4 but 18 at batch 16 -- the
old default; on this AMD EPYC with AVX512-BF16 bf16 helps, on that Xeon it is emulated and slower. So
:func:`tune` measures a handful of candidates in a few seconds (coordinate descent: batch size first, then
each other knob at the best batch), always including the configured default, and keeps the fastest: the
choice can only be as slow as the default, within the noise of the measurement.

The choice is cached in one JSON file (``ORDO_TUNING_CACHE``, default ``~/.cache/ordo/tuning.json``) under a
key made of the CPU model and flags, torch's version, the model id and the thread share (a process alone on the
machine and one sharing it with a peer keep separate choices). An entry also records the cores it was
measured with: on a machine where that no longer fits (fewer cores, a new cgroup quota, more Ordo processes
sharing it) the entry is dropped and the tower measured again. A corrupt file is ignored with a warning and
rewritten. Tuning is skipped (the defaults run) with ``ORDO_AUTOTUNE=false``; any knob set in settings is
not tuned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_ENV = "ORDO_TUNING_CACHE"
#: 2: ONNX Runtime streams are candidates (entries of format 1 never measured them); 3: native bf16 is measured
#: first (format-2 entries of slow models may never have measured it: the budget ran out before it).
CACHE_FORMAT = 3
DEFAULT_BUDGET_S = 8.0
# Per candidate: at least this long and this many calls after one warm-up call.
MIN_MEASURE_S = 0.3
MIN_CALLS = 1
BATCH_CANDIDATES = (2, 4, 8, 16, 1)
#: Streams win unless they measure this much slower than one pass on all threads (see ``_handicap``).
STREAMS_MARGIN = 0.10


@dataclass(frozen=True)
class TowerConfig:
    """One way to run an image tower. ``runtime``: ``torch`` or ``onnxruntime``. ``threads``: intra-op threads
    of one pass; ``streams``: passes run side by side, each on its own thread (ONNX Runtime only; see
    ``ordo.embedding.inference_lane``), so a config uses ``threads * streams`` cores."""

    batch_size: int = 4
    threads: int = 1
    channels_last: bool = True
    bf16: bool = False
    runtime: str = "torch"
    streams: int = 1

    def label(self) -> str:
        parts = [f"batch {self.batch_size}", f"{self.threads} thr", self.runtime]
        if self.streams > 1:
            parts.insert(2, f"x{self.streams} streams")
        if self.channels_last and self.runtime == "torch":
            parts.append("channels-last")
        if self.bf16:
            parts.append("bf16")
        return ", ".join(parts)


@dataclass
class TuneResult:
    """The chosen config, its speed, every measurement, and how it was obtained."""

    config: TowerConfig
    images_per_s: float
    measured: list[dict[str, Any]] = field(default_factory=list)
    source: str = "measured"  # measured | cache | default
    cpus: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "images_per_s": self.images_per_s,
            "measured": self.measured,
            "cpus": self.cpus,
            "seconds": self.seconds,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }


# ------------------------------------------------------------------------------------ machine facts
def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16(flags: set[str] | None = None) -> bool:
    """AMX or AVX512-BF16: bfloat16 runs natively; elsewhere it is emulated and slower than float32."""
    flags = cpu_flags() if flags is None else flags
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def machine_key(model_id: str) -> str:
    import torch

    relevant = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"})
    text = "|".join([cpu_model(), ",".join(relevant), torch.__version__, model_id, str(CACHE_FORMAT)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# ------------------------------------------------------------------------------------------- cache
def cache_path(configured: str = "") -> Path:
    """``configured`` (ORDO_TUNING_CACHE via settings), else the environment, else the user cache."""
    override = configured or os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ordo" / "tuning.json"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("tuning cache %s is unreadable (%s): ignoring it and measuring again", path, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("tuning cache %s is not a JSON object: ignoring it and measuring again", path)
        return {}
    return data


def cached_result(key: str, cpus: int, path: Path | None = None) -> TuneResult | None:
    """The cached choice for ``key`` if it still fits this machine (same cores available), else None."""
    path = path or cache_path()
    entry = _read_cache(path).get(key)
    if entry is None:
        return None
    try:
        config = TowerConfig(**entry["config"])
        cached_cpus = int(entry["cpus"])
        speed = float(entry["images_per_s"])
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("tuning cache entry %s in %s is malformed (%s): measuring again", key, path, exc)
        return None
    if cached_cpus != cpus or config.threads * config.streams > cpus or config.batch_size < 1 or config.streams < 1:
        log.info(
            "tuning cache entry measured with %d cores no longer fits (%d available now): measuring again",
            cached_cpus,
            cpus,
        )
        return None
    return TuneResult(config, speed, list(entry.get("measured") or []), "cache", cached_cpus)


def store_result(key: str, result: TuneResult, path: Path | None = None) -> None:
    """Write (atomically) ``result`` under ``key``; other entries kept, a corrupt file replaced."""
    path = path or cache_path()
    data = _read_cache(path)
    data[key] = result.to_json()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the tuning cache %s (%s): the next start measures again", path, exc)


# ------------------------------------------------------------------------------------------ tuning
Runner = Callable[[TowerConfig], Callable[[int], None] | None]
"""``prepare(config)`` → ``run(batch_size)`` that embeds one batch, or None when the config cannot run here."""


def _speed(run: Callable[[int], None], batch: int, images_per_call: int = 0) -> float:
    """Images a second of ``run(batch)``; ``images_per_call``: what one call embeds when it is not ``batch``
    (a streams candidate runs one batch per stream in each call)."""
    per_call = images_per_call or batch
    started = time.perf_counter()
    run(batch)  # warm-up: first call allocates, oneDNN picks kernels
    first = time.perf_counter() - started
    if first > 4 * MIN_MEASURE_S:  # a candidate this slow loses anyway: do not spend more time proving it
        return per_call / first
    calls, started = 0, time.perf_counter()
    while calls < MIN_CALLS or time.perf_counter() - started < MIN_MEASURE_S:
        run(batch)
        calls += 1
    return calls * per_call / (time.perf_counter() - started)


def _handicap(candidate: TowerConfig, best: TowerConfig) -> float:
    """How much faster than ``best`` a candidate must measure to replace it: streams are favoured by
    :data:`STREAMS_MARGIN`. The tuner measures on a quiet process, where one 2-thread pass and two 1-thread
    streams run about as fast (EfficientNet-Lite2 0.98-1.03x); in a serving process, where decoders and
    uploads take turns on the cores, the streams ran 5-16 % faster (``ordo.embedding.inference_lane``)."""
    if candidate.streams > best.streams:
        return 1.0 - STREAMS_MARGIN
    if candidate.streams < best.streams:
        return 1.0 / (1.0 - STREAMS_MARGIN)
    return 1.0


class _Measurements:
    """The tuner's bookkeeping: each candidate's speed, the runners it built (one per runtime shape: a
    session or module is reused across batch sizes) and the time spent measuring against the budget."""

    def __init__(self, prepare: Runner, budget_s: float) -> None:
        self.prepare = prepare
        self.budget_s = budget_s
        self.spent = 0.0  # seconds spent measuring (one-time work such as an ONNX export does not count)
        self.measured: list[dict[str, Any]] = []
        self.speeds: dict[TowerConfig, float] = {}
        self.runners: dict[tuple[Any, ...], Callable[[int], None] | None] = {}

    def _runner(self, config: TowerConfig) -> Callable[[int], None] | None:
        # torch's threads are set per call (see measure); ONNX Runtime's are fixed when its session is made
        shape = (
            config.channels_last,
            config.bf16,
            config.runtime,
            0 if config.runtime == "torch" else config.threads,
            config.streams,
        )
        if shape not in self.runners:
            try:
                self.runners[shape] = self.prepare(config)
            except Exception as exc:  # a runtime that cannot run this model here: not a candidate
                log.info("tuning: %s unavailable (%s)", config.label(), exc)
                self.runners[shape] = None
        return self.runners[shape]

    def speed(self, config: TowerConfig) -> float:
        return self.speeds.get(config, 0.0)

    def measure(self, config: TowerConfig, required: bool = False, again: bool = False) -> float:
        """Images a second of ``config`` (0 when it cannot run, or the budget is spent: ``required`` ones
        get 3x the budget). ``again``: measure a known one once more and keep its better run (a VM's noise
        slows runs, it never speeds them up)."""
        import torch

        if config in self.speeds and not again:
            return self.speeds[config]
        if self.speeds and not again and self.spent > (self.budget_s * 3 if required else self.budget_s):
            return 0.0
        run = self._runner(config)
        if run is None:
            self.speeds[config] = 0.0
            return 0.0
        torch.set_num_threads(config.threads)
        clock = time.perf_counter()
        try:
            speed = _speed(run, config.batch_size, config.batch_size * config.streams)
        except Exception as exc:
            log.info("tuning: %s failed (%s)", config.label(), exc)
            speed = 0.0
        self.spent += time.perf_counter() - clock
        self.speeds[config] = max(speed, self.speed(config))
        self.measured.append({"config": config.label(), "images_per_s": round(speed, 2)})
        return speed


def tune(
    default: TowerConfig,
    prepare: Runner,
    *,
    max_threads: int,
    budget_s: float = DEFAULT_BUDGET_S,
    batches: Sequence[int] = BATCH_CANDIDATES,
    variants: Sequence[dict[str, Any]] = (),
    tune_batch: bool = True,
    tune_threads: bool = True,
) -> TuneResult:
    """Measure ``default`` and its neighbours; return the fastest. Stops trying new candidates after
    ``budget_s`` (the best so far wins). ``variants``: field overrides to try at the best batch size
    (e.g. ``{"bf16": True}``, ``{"runtime": "onnxruntime"}``)."""
    import torch

    started = time.perf_counter()
    book = _Measurements(prepare, budget_s)
    best = replace(default, threads=min(default.threads, max_threads) or max_threads)
    book.measure(best)

    def consider(candidate: TowerConfig, required: bool = False) -> None:
        nonlocal best
        if book.measure(candidate, required) and book.speed(best) and candidate.streams != best.streams:
            # one pass against streams is a close call that one slow 0.3 s sample decides: both once more
            book.measure(best, again=True)
            book.measure(candidate, again=True)
        if book.speed(candidate) > book.speed(best) * _handicap(candidate, best):
            best = candidate

    # The knobs that moved speed most in our measurements come first, so a short budget still gets them:
    # the runtime (3-4x under contention), then threads, then the batch size (2x between 4 and 16).
    # (the runtime and thread candidates are worth up to 3x the budget on a slow, busy machine)
    for overrides in variants:
        consider(replace(best, **overrides), required=True)
    if tune_threads and max_threads > 1:
        consider(replace(best, threads=max(1, max_threads // 2)), required=True)
    if tune_batch:
        for batch in batches:
            consider(replace(best, batch_size=batch))
    torch.set_num_threads(best.threads)
    elapsed = round(time.perf_counter() - started, 2)
    return TuneResult(best, round(book.speed(best), 2), book.measured, "measured", 0, elapsed)


def tuned(
    model_id: str,
    default: TowerConfig,
    prepare: Runner,
    *,
    cpus: int,
    max_threads: int,
    enabled: bool = True,
    budget_s: float = DEFAULT_BUDGET_S,
    variants: Sequence[dict[str, Any]] = (),
    tune_batch: bool = True,
    tune_threads: bool = True,
    cache: Path | None = None,
    pinned: str = "",
) -> TuneResult:
    """The cached choice if it fits, else a fresh measurement (cached); ``enabled=False``: the default.
    ``pinned``: the knobs the caller fixed (runtime, streams, ...), part of the cache key, so a choice
    measured with other knobs free is never served in their place."""
    if not enabled:
        threads = max(1, max_threads // default.streams)  # a stream has its own thread(s)
        return TuneResult(replace(default, threads=threads), 0.0, source="default", cpus=cpus)
    # one entry per thread share: a process sharing the machine with a peer measures (and keeps) its own choice
    key = f"{machine_key(model_id)}-t{max_threads}" + (f"-{pinned}" if pinned else "")
    hit = cached_result(key, cpus, cache)
    if hit is not None and hit.config.threads * hit.config.streams <= max_threads:
        log.info(
            "%s: tuned setting from cache: %s (%.1f img/s measured)", model_id, hit.config.label(), hit.images_per_s
        )
        return hit
    result = tune(
        default,
        prepare,
        max_threads=max_threads,
        budget_s=budget_s,
        variants=variants,
        tune_batch=tune_batch,
        tune_threads=tune_threads,
    )
    result.cpus = cpus
    store_result(key, result, cache)
    log.info(
        "%s: tuned on this CPU in %.1f s: %s at %.1f img/s (%s)",
        model_id,
        result.seconds,
        result.config.label(),
        result.images_per_s,
        "; ".join(f"{m['config']}: {m['images_per_s']}" for m in result.measured),
    )
    return result
