"""Start `ordo up` as a child process and wait until it serves.

Used by `ordo demo` and by the evaluation commands, which run the real stack (a separate process with
its own data directory) rather than calling core code directly, so they exercise decoding, queueing,
indexing and the gRPC contracts exactly as users do."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ordo.config import Settings
from ordo.errors import ModelUnavailable, Unavailable
from ordo.processes import free_port, stop_process

# `ordo up` exits with this code when the model's weights cannot be had (no hub, nothing cached).
MODEL_UNAVAILABLE_EXIT = 2


def start_stack(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`ordo up` in a child process, its output appended to log_path."""
    log = log_path.open("ab")
    return subprocess.Popen([sys.executable, "-m", "ordo.cli.main", "up"], env=env, stdout=log, stderr=log)


def wait_serving(proc: subprocess.Popen[bytes], settings: Settings, timeout: float) -> bool:
    """True once the stack answers health checks; False when the process exited first."""
    from ordo.client import OrdoClient

    client = OrdoClient(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if client.health("ingest", timeout=1.0) == "SERVING":
            return True
        time.sleep(0.3)
    raise Unavailable(f"the stack did not come up within {timeout:.0f} s")


@contextmanager
def scratch_stack(
    model: str,
    *,
    data_dir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300.0,
) -> Iterator[tuple[object, Settings, Path]]:
    """A throw-away embedded stack serving `model`: yields (OrdoClient, its Settings, its data dir).

    The data directory is temporary unless given; the process is stopped on exit. Raises
    ModelUnavailable when the model cannot be loaded, Unavailable when the stack does not start."""
    from ordo.client import OrdoClient

    with tempfile.TemporaryDirectory(prefix="ordo-scratch-") as tmp:
        root = Path(data_dir) if data_dir is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        child_env = {
            **os.environ,
            **(env or {}),
            "ORDO_DATA_DIR": str(root),
            "ORDO_PORT": str(port),
            "ORDO_ADDRESS": f"127.0.0.1:{port}",
            "ORDO_MODEL": model,
            "ORDO_HTTP_PORT": "0",  # no web gateway: a scratch stack is driven over gRPC only
        }
        for key in ("ORDO_INGEST_ADDRESS", "ORDO_SEARCH_ADDRESS", "ORDO_ANALYSIS_ADDRESS", "ORDO_CONFIG"):
            child_env.pop(key, None)
        settings = Settings(data_dir=root, port=port, address=f"127.0.0.1:{port}", model=model)
        log_path = root / "stack.log"
        proc = start_stack(child_env, log_path)
        try:
            if not wait_serving(proc, settings, timeout):
                if proc.returncode == MODEL_UNAVAILABLE_EXIT:
                    raise ModelUnavailable(f"model {model!r} is not available (see {log_path})")
                raise Unavailable(f"the scratch stack exited with {proc.returncode}; see {log_path}")
            yield OrdoClient(settings), settings, root
        finally:
            stop_process(proc)
