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
CACHE_FORMAT = 1
DEFAULT_BUDGET_S = 8.0
# Per candidate: at least this long and this many calls after one warm-up call.
MIN_MEASURE_S = 0.3
MIN_CALLS = 1
BATCH_CANDIDATES = (2, 4, 8, 16, 1)


@dataclass(frozen=True)
class TowerConfig:
    """One way to run an image tower. ``runtime``: ``torch`` or ``onnxruntime``."""

    batch_size: int = 4
    threads: int = 1
    channels_last: bool = True
    bf16: bool = False
    runtime: str = "torch"

    def label(self) -> str:
        parts = [f"batch {self.batch_size}", f"{self.threads} thr", self.runtime]
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
    if cached_cpus != cpus or config.threads > cpus or config.batch_size < 1:
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


def _speed(run: Callable[[int], None], batch: int) -> float:
    started = time.perf_counter()
    run(batch)  # warm-up: first call allocates, oneDNN picks kernels
    first = time.perf_counter() - started
    if first > 4 * MIN_MEASURE_S:  # a candidate this slow loses anyway: do not spend more time proving it
        return batch / first
    calls, started = 0, time.perf_counter()
    while calls < MIN_CALLS or time.perf_counter() - started < MIN_MEASURE_S:
        run(batch)
        calls += 1
    return calls * batch / (time.perf_counter() - started)


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
    spent = 0.0  # seconds spent measuring (one-time work such as an ONNX export does not count)
    measured: list[dict[str, Any]] = []
    speeds: dict[TowerConfig, float] = {}
    runners: dict[tuple[Any, ...], Callable[[int], None] | None] = {}

    def measure(config: TowerConfig, required: bool = False) -> float:
        nonlocal spent
        if config in speeds:
            return speeds[config]
        if speeds and spent > (budget_s * 3 if required else budget_s):
            return 0.0
        # torch's threads are set per call below; ONNX Runtime's are fixed when its session is made
        shape = (config.channels_last, config.bf16, config.runtime, 0 if config.runtime == "torch" else config.threads)
        if shape not in runners:
            try:
                runners[shape] = prepare(config)
            except Exception as exc:  # a runtime that cannot run this model here: not a candidate
                log.info("tuning: %s unavailable (%s)", config.label(), exc)
                runners[shape] = None
        run = runners[shape]
        if run is None:
            speeds[config] = 0.0
            return 0.0
        torch.set_num_threads(config.threads)
        clock = time.perf_counter()
        try:
            speed = _speed(run, config.batch_size)
        except Exception as exc:
            log.info("tuning: %s failed (%s)", config.label(), exc)
            speed = 0.0
        spent += time.perf_counter() - clock
        speeds[config] = speed
        measured.append({"config": config.label(), "images_per_s": round(speed, 2)})
        return speed

    default = replace(default, threads=min(default.threads, max_threads) or max_threads)
    best = default
    measure(best)

    def consider(candidate: TowerConfig, required: bool = False) -> None:
        nonlocal best
        if measure(candidate, required) > speeds[best]:
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
    return TuneResult(best, round(speeds[best], 2), measured, "measured", 0, round(time.perf_counter() - started, 2))


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
) -> TuneResult:
    """The cached choice if it fits, else a fresh measurement (cached); ``enabled=False``: the default."""
    if not enabled:
        return TuneResult(replace(default, threads=max_threads), 0.0, source="default", cpus=cpus)
    # one entry per thread share: a process sharing the machine with a peer measures (and keeps) its own choice
    key = f"{machine_key(model_id)}-t{max_threads}"
    hit = cached_result(key, cpus, cache)
    if hit is not None and hit.config.threads <= max_threads:
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
