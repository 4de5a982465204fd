"""What an embedder calls at load time to run its image tower the fastest way this machine allows.

Ties together the process's CPU budget (``cpu_budget``), the measured choice (``autotune``) and the runtimes
(``tower_runtime``), and holds the settings that override them (:class:`RuntimeOptions`, built from
``ordo.config.Settings`` by :func:`runtime_options`). Both model families use it: ordo-lite's EfficientNet
tower and the vision tower of any transformers dual encoder (CLIP). Every call into the result runs on the
embedder's inference lane, which is also where :meth:`TunedTower.__call__` applies the thread budget.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ordo.embedding import autotune as tuning
from ordo.embedding.autotune import TowerConfig, TuneResult
from ordo.embedding.cpu_budget import ThreadBudget, process_budget
from ordo.embedding.tower_runtime import FeatureModule, TowerFn, TowerRuntimes, describe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeOptions:
    """Settings that steer tuning. 0 / None means "measure it"; anything else is used as given."""

    autotune: bool = True
    budget_s: float = tuning.DEFAULT_BUDGET_S
    batch_size: int = 0  # images per tower call (ORDO_MODEL_BATCH_SIZE when set explicitly)
    threads: int = 0  # ORDO_TORCH_THREADS
    bf16: bool | None = None
    runtime: str = ""  # "" (measure), "torch" or "onnxruntime" (ORDO_MODEL_RUNTIME)
    streams: int = 0  # image passes side by side (ORDO_MODEL_STREAMS): 0 measure, 1 never, n > 1 that many
    cache_file: str = ""  # ORDO_TUNING_CACHE ("" = the environment's or ~/.cache/ordo/tuning.json)

    @classmethod
    def from_env(cls) -> RuntimeOptions:
        """For embedders built without settings (tests, scripts): the same ``ORDO_*`` variables."""
        env = os.environ
        return cls(
            autotune=env.get("ORDO_AUTOTUNE", "true").strip().lower() not in ("0", "false", "no", "off"),
            budget_s=float(env.get("ORDO_AUTOTUNE_BUDGET_S") or tuning.DEFAULT_BUDGET_S),
            threads=int(env.get("ORDO_TORCH_THREADS") or 0),
            runtime=(env.get("ORDO_MODEL_RUNTIME") or "").strip().lower().replace("auto", ""),
            streams=int(env.get("ORDO_MODEL_STREAMS") or 0),
        )

    def with_bf16(self, bf16: bool) -> RuntimeOptions:
        return replace(self, bf16=bf16)


def runtime_options(settings: Any) -> dict[str, Any]:
    """The embedder options derived from settings (for ``get_embedder``): a knob set explicitly in settings
    (environment or arguments) is taken as given and not tuned."""
    explicit = getattr(settings, "model_fields_set", set())
    return {
        "runtime_options": RuntimeOptions(
            autotune=bool(getattr(settings, "autotune", True)),
            budget_s=float(getattr(settings, "autotune_budget_s", tuning.DEFAULT_BUDGET_S)),
            batch_size=int(settings.model_batch_size) if "model_batch_size" in explicit else 0,
            threads=int(getattr(settings, "torch_threads", 0) or 0),
            runtime=str(getattr(settings, "model_runtime", "") or "").replace("auto", ""),
            streams=int(getattr(settings, "model_streams", 0) or 0),
            cache_file=str(getattr(settings, "tuning_cache", "") or ""),
        )
    }


def decode_threads_for(settings: Any) -> int:
    """Decoder threads of a worker: ``ORDO_DECODE_THREADS`` when set, else this process's budget share."""
    configured = int(getattr(settings, "decode_threads", 0) or 0)
    return process_budget(decode_threads=configured).decode_threads


def autotune_cache(options: RuntimeOptions) -> Path:
    return tuning.cache_path(options.cache_file)


class TunedTower:
    """The chosen runtime of one image tower plus the thread budget it must respect."""

    def __init__(
        self,
        fn: TowerFn,
        result: TuneResult,
        budget: ThreadBudget,
        runtimes: TowerRuntimes,
    ) -> None:
        self._fn = fn
        self.result = result
        self.config = result.config
        self.budget = budget
        self.agreement = runtimes.agreement
        self._runtimes = runtimes
        self._threads = result.config.threads
        # torch threads for the text tower (a single query); see tune_text
        self.text_threads = min(result.config.threads, budget.model_threads)

    def tune_text(self, run_query: Callable[[], object], enabled: bool = True, queries: int = 5) -> None:
        """Pick torch's thread count for text queries: 1 or this process's share, whichever answers a query
        faster (median of a few). On a busy machine one thread wins by far: two OpenMP threads that lose their
        cores made a MiniLM query take 270 ms here instead of ~10."""
        options = sorted({1, self.budget.model_threads})
        if not enabled or len(options) == 1:
            self.text_threads = options[-1] if not enabled else 1
            return
        timings: dict[int, float] = {}
        for threads in options:
            self.text_threads = threads  # before_text (if run_query calls it) keeps this count
            torch.set_num_threads(threads)
            run_query()
            times = []
            for _ in range(queries):
                started = time.perf_counter()
                run_query()
                times.append(time.perf_counter() - started)
            timings[threads] = sorted(times)[len(times) // 2]
        self.text_threads = min(timings, key=lambda t: timings[t])
        torch.set_num_threads(self.text_threads)
        log.info(
            "%s text queries: %d torch thread(s) (median ms by threads: %s)",
            self._runtimes.name,
            self.text_threads,
            {t: round(v * 1000, 1) for t, v in timings.items()},
        )

    def before_text(self) -> None:
        """Call on the lane before a text forward pass: torch's threads for text queries."""
        threads = min(self.text_threads, self.budget.model_threads)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    @property
    def active_streams(self) -> int:
        """Passes that may run side by side now (see inference_lane): the budget lowers it when peers start."""
        return max(1, min(self.config.streams, self.budget.model_threads // max(1, self.config.threads)))

    @property
    def runtimes(self) -> TowerRuntimes:
        """The model's runtimes (its ONNX export, agreement-checked), for benches comparing settings."""
        return self._runtimes

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """One pass. Called on the lane, and on its helper streams at once when the config has streams
        (ONNX Runtime runs concurrent calls of one session, each on its calling thread)."""
        # the budget caps the tuned thread count while more Ordo processes share the machine
        self.budget.refresh()
        threads = min(self.config.threads, self.budget.model_threads)
        if self.config.runtime == "torch":
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        elif threads != self._threads:  # ONNX Runtime fixes its pool per session: a new session (rare)
            self._fn = self._runtimes.build(replace(self.config, threads=threads))
            self._threads = threads
            log.info("%s: ONNX Runtime now on %d thread(s) (%s)", self._runtimes.name, threads, self.budget.describe())
        return self._fn(pixels)

    def summary(self) -> dict[str, Any]:
        return {
            "config": describe(self.config, self.agreement),
            "images_per_s": self.result.images_per_s,
            "source": self.result.source,
            "measured": self.result.measured,
            "budget": self.budget.describe(),
        }


def tune_tower(
    model_id: str,
    module: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    *,
    input_size: int,
    conv: bool,
    default_batch: int,
    options: RuntimeOptions,
) -> TunedTower:
    """Measure (or read from the cache) the fastest way to run ``forward`` here and build it."""
    budget = process_budget(model_threads=options.threads)
    runtimes = TowerRuntimes(
        model_id, FeatureModule(module, forward), input_size, conv=conv, cache_file=options.cache_file
    )
    default = TowerConfig(
        batch_size=options.batch_size or default_batch,
        threads=budget.model_threads,
        channels_last=conv,
        bf16=bool(options.bf16),
        runtime=options.runtime or "torch",
    )
    default, variants = candidates(options, default, budget.model_threads, native_bf16=tuning.native_bf16(), conv=conv)
    result = tuning.tuned(
        model_id,
        default,
        runtimes.prepare,
        cpus=budget.cpus,
        max_threads=budget.model_threads,
        enabled=options.autotune,
        budget_s=options.budget_s,
        variants=variants,
        tune_batch=not options.batch_size,
        tune_threads=not options.threads,
        cache=autotune_cache(options),
        pinned=_pinned(options),
    )
    try:
        # a setting forced by the caller (bf16 on) is honoured even below the agreement bar; tuned ones are not
        fn = runtimes.build(result.config, enforce=options.bf16 is None or not result.config.bf16)
    except Exception as exc:  # e.g. a cached choice whose runtime is gone, or that no longer agrees
        log.warning("%s: tuned runtime %s unusable (%s); using float32 torch", model_id, result.config.label(), exc)
        fallback = replace(result.config, runtime="torch", bf16=False, streams=1)
        result = replace(result, config=fallback, source="fallback")
        fn = runtimes.build(result.config)
    tower = TunedTower(fn, result, budget, runtimes)
    log.info("%s image tower: %s; %s", model_id, describe(result.config, runtimes.agreement), budget.describe())
    return tower


def candidates(
    options: RuntimeOptions, default: TowerConfig, model_threads: int, *, native_bf16: bool, conv: bool
) -> tuple[TowerConfig, list[dict[str, Any]]]:
    """The default the tuner starts from and the variants it measures, in the order it measures them (it
    stops trying new ones when its time budget is spent, so the likeliest large gains come first)."""
    variants: list[dict[str, Any]] = []
    if not options.runtime:
        variants.append({"runtime": "onnxruntime", "bf16": False})
    onnx_allowed = options.runtime in ("", "onnxruntime")
    if options.streams > 1 and onnx_allowed:  # set in settings: ONNX Runtime, one thread a stream
        default = replace(default, runtime="onnxruntime", bf16=False, threads=1, streams=options.streams)
    elif not options.streams and onnx_allowed and not options.threads and model_threads > 1:
        # one single-thread pass per core, side by side: no operator barrier to wait at (inference_lane)
        variants.append({"runtime": "onnxruntime", "bf16": False, "threads": 1, "streams": model_threads})
    torch_allowed = options.runtime in ("", "torch") and default.streams == 1
    if torch_allowed and options.bf16 is None and native_bf16:
        # First: native bf16 is the largest gain measured (CLIP ViT-B/32 on a Xeon with AMX, one thread: 42 img/s
        # against 14 in float32), and a slow model's earlier candidates (ONNX Runtime, streams and their close
        # call measured twice) used up the tuner's budget before it, so a 2-thread tuning never tried it.
        variants.insert(0, {"bf16": True, "runtime": "torch"})
    if torch_allowed and conv:
        variants.append({"channels_last": not default.channels_last, "runtime": "torch", "bf16": False})
    return default, variants


def lane_job_images(images: int, config: TowerConfig) -> int:
    """Images per inference-lane job for a family that wants about ``images``: whole tower calls of the tuned
    batch, and with streams, 1/streams of it, down to one image a call. A text query waits for at most the
    lane's job in progress, and with streams each job runs on 1/streams of the threads, so a job that much
    smaller keeps that wait as it was with one pass at a time (measured, CLIP ViT-B/32 on 2 cores while
    ingesting: queries at p50 860 ms with 2 streams of 8-image jobs against 485 ms with one 2-thread pass)."""
    batch = config.batch_size
    share = -(-max(images, batch) // max(1, config.streams))  # at least one tower call's worth, split
    return share if share < batch else batch * -(-share // batch)


def _pinned(options: RuntimeOptions) -> str:
    """The knobs fixed in settings, for the tuning cache's key (empty when every knob is measured)."""
    fixed = {
        "runtime": options.runtime,
        "streams": options.streams,
        "batch": options.batch_size,
        "threads": options.threads,
        "bf16": "" if options.bf16 is None else ("on" if options.bf16 else "off"),
    }
    return ",".join(f"{name}={value}" for name, value in fixed.items() if value)
