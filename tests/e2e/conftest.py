"""Starts the real embedded stack (`ordo up`) as a subprocess on a free port, with the tiny CLIP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.processes import free_port, stop_process


@dataclass
class Stack:
    client: OrdoClient
    env: dict[str, str]
    data_dir: Path
    address: str
    process: subprocess.Popen[bytes]
    log: Path

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ordo.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def start_stack(data_dir: Path, model_dir: Path, extra_env: dict[str, str] | None = None) -> Stack:
    port = free_port()
    env = {
        **os.environ,
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_MODEL": str(model_dir),
        "ORDO_PORT": str(port),
        "ORDO_ADDRESS": f"127.0.0.1:{port}",
        "ORDO_MAX_MESSAGE_BYTES": str(4 * 1024 * 1024),
        "ORDO_TASK_BATCH_SIZE": "8",
        "ORDO_HTTP_PORT": "0",  # tests that need the gateway set a free port
        "ORDO_INGEST_ROOTS": str(data_dir),  # server-side paths (IngestUris) only under the data dir
        **(extra_env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "stack.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ordo.cli.main", "up"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    settings = Settings(address=f"127.0.0.1:{port}", max_message_bytes=4 * 1024 * 1024 + 65536)
    client = OrdoClient(settings)
    deadline = time.monotonic() + 120
    while client.health("ingest", timeout=1) != "SERVING":
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"ordo up did not start (exit {proc.returncode}):\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    return Stack(client, env, data_dir, f"127.0.0.1:{port}", proc, log)


def stop_stack(stack: Stack) -> None:
    stop_process(stack.process)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("ordo-data"), tiny_clip_dir)
    yield s
    stop_stack(s)
