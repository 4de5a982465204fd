"""Shared helpers: paths, the COCO sample set, percentiles, machine facts and `ordo up` as a subprocess."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ordo.processes import free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL = "random-clip:vit-b-32"
COCO = "coco-captions-mini"


class BenchError(RuntimeError):
    """A benchmark could not run (missing data, a stack that does not start...): one readable line."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data
def datasets_dir() -> Path:
    """`../shared/datasets` beside the checkout, or ORDO_DATASETS."""
    override = os.environ.get("ORDO_DATASETS")
    return Path(override).expanduser() if override else REPO_ROOT.parent / "shared" / "datasets"


@dataclass(frozen=True)
class CocoSample:
    files: list[Path]  # every image, stable order
    captions: list[str]  # every caption, stable order


def load_coco() -> CocoSample:
    root = datasets_dir() / COCO
    index = root / "captions.jsonl"
    if not index.is_file():
        raise BenchError(f"COCO sample set not found at {root} (set ORDO_DATASETS to the folder holding {COCO}/)")
    files: list[Path] = []
    captions: list[str] = []
    for line in index.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        path = root / record["file"]
        if path.is_file():
            files.append(path)
            captions.extend(c.strip() for c in record.get("captions", []) if c.strip())
    if not files:
        raise BenchError(f"no images listed in {index} exist")
    return CocoSample(files, captions)


# ------------------------------------------------------------------------------------ statistics
def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min/max in milliseconds (linear interpolation, numpy's default)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {}
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "min_ms": round(float(ms.min()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


# ---------------------------------------------------------------------------------------- model
def create_bench_embedder() -> Any:
    """An unloaded embedder built from the same settings ``ordo up`` uses (``AppContext.embedder``), on the
    CPU, so the in-process side of a comparison runs exactly the model the stack runs."""
    from ordo.config import Settings
    from ordo.embedding.factory import create_embedder

    settings = Settings(model=MODEL, device="cpu")
    options: dict[str, Any] = {
        "device": "cpu",
        "batch_size": settings.model_batch_size,
        "torch_threads": settings.torch_threads or None,
    }
    if hasattr(settings, "quantize_text_on_cpu"):  # int8 text tower (newer Ordo)
        options["quantize_text_on_cpu"] = settings.quantize_text_on_cpu
    return create_embedder(MODEL, **options)


# ---------------------------------------------------------------------------------- machine facts
def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "numpy": np.__version__,
    }
    info["load_avg_1m"] = load_avg()
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n")
        total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
        info["memory_gib"] = round(total_kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        from importlib.metadata import version

        info["qdrant_edge"] = version("qdrant-edge-py")
        info["transformers"] = version("transformers")
        info["grpcio"] = version("grpcio")
    except Exception:
        pass
    return info


def calibrate(size: int = 384, reps: int = 20) -> float:
    """A ~0.1 s speed probe: fp32 matmul GFLOP/s with torch's default threads (median of ``reps``).

    These machines are shared VMs whose speed varies (identical bare-loop runs measured 4.6-20.7 img/s in
    one session); recording this next to each measurement helps tell a slow machine from a slow change.
    """
    import torch

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return round(2 * size**3 / float(np.median(times)) / 1e9, 1)


def load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# ------------------------------------------------------------------------------------ the stack


@dataclass
class Stack:
    """A running `ordo up` subprocess and a client for it."""

    process: subprocess.Popen[bytes]
    client: Any  # ordo.client.OrdoClient
    data_dir: Path
    address: str
    log_path: Path
    startup_s: float
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def stack_env(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_MODEL": MODEL,
        "ORDO_DEVICE": "cpu",
        "ORDO_PORT": str(port),
        "ORDO_HOST": "127.0.0.1",
        "ORDO_ADDRESS": f"127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }
    for key in ("ORDO_INGEST_ADDRESS", "ORDO_SEARCH_ADDRESS", "ORDO_ANALYSIS_ADDRESS"):
        env.pop(key, None)  # the client must talk to this stack, not to one configured elsewhere
    return env


@contextmanager
def ordo_up(data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 180.0) -> Iterator[Stack]:
    """`python -m ordo.cli.main up` on a free port with ``data_dir``; waits for every service to be SERVING
    and always stops the process (SIGTERM, then SIGKILL after 30 s)."""
    from ordo.client import OrdoClient
    from ordo.config import Settings

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = stack_env(data_dir, port, extra_env)
    log_path = data_dir / "ordo-up.log"
    started = time.perf_counter()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ordo.cli.main", "up"],
            env=env,
            # Not the checkout: the embedded Celery (kombu's filesystem transport) writes its pidbox
            # exchange to ./control relative to the working directory.
            cwd=data_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it cleanly
        )
    try:
        client = OrdoClient(Settings(address=f"127.0.0.1:{port}", max_message_bytes=64 * 1024 * 1024))
        stack = Stack(process, client, data_dir, f"127.0.0.1:{port}", log_path, 0.0, env)
        deadline = time.monotonic() + timeout
        while not all(client.health(s, timeout=1.0) == "SERVING" for s in ("ingest", "search")):
            if process.poll() is not None:
                raise BenchError(f"`ordo up` exited with {process.returncode} at start-up:\n{stack.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"`ordo up` not SERVING after {timeout:.0f} s:\n{stack.log_tail()}")
            time.sleep(0.2)
        stack.startup_s = time.perf_counter() - started
        yield stack
        if process.poll() is not None:
            raise BenchError(f"`ordo up` died during the benchmark (exit {process.returncode}):\n{stack.log_tail()}")
    finally:
        stop_process(process)


@contextmanager
def temp_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def request_id() -> str:
    return uuid.uuid4().hex
