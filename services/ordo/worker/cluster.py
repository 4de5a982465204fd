"""The distributed topology on one machine, as real processes: Redis, SeaweedFS (S3), the index host
(standing in for a Qdrant server, which cannot be installed here), the gRPC services and N workers.

``make up-distributed`` (``ordo ops up-distributed``), the fault tests and the distributed benchmark all
start processes through here, so they exercise exactly what a deployment runs: ``ordo worker`` processes
consuming Redis, ``ordo serve`` for the services, each configured by ``ORDO_*`` variables alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.exceptions

from ordo.metrics import WORKER_KEY
from ordo.processes import free_port, stop_process
from ordo.seaweedfs import S3Server


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def _ordo() -> list[str]:
    """The ``ordo`` console script of this interpreter (works from a venv without it on PATH)."""
    script = Path(sys.executable).parent / "ordo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ordo.cli.main"]


def _spawn(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


# --- Redis ---------------------------------------------------------------------------------------
@dataclass
class RedisServer:
    """A private ``redis-server`` with an append-only file, so it can be restarted without losing the
    queue or the jobs (like the compose service). Never the shared server on :6379."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]
        self.process = _spawn(args, {}, self.workdir / "redis.log")
        deadline = time.monotonic() + 20
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start") from None
                time.sleep(0.05)
            # redis answers LOADING while it replays the append-only file; ping raises until done
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)  # SIGTERM: redis flushes its append-only file

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


# --- Ordo processes ------------------------------------------------------------------------------
def start_index_host(path: Path, port: int, log_path: Path, token: str) -> subprocess.Popen[bytes]:
    """The gRPC index host; every client needs ``token`` (``ORDO_INDEX_HOST_TOKEN``)."""
    env = {"ORDO_INDEX_HOST_TOKEN": token}
    process = _spawn([*_ordo(), "ops", "index-host", "--path", str(path), "--port", str(port)], env, log_path)
    wait_for_port(port, 60, process)
    return process


def start_worker(env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``ordo worker`` as its own process; see :func:`wait_for_workers` to know when it consumes."""
    return _spawn([*_ordo(), "worker"], env, log_path)


def start_services(env: Mapping[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    process = _spawn([*_ordo(), "serve", "all", "--port", str(port)], env, log_path)
    wait_for_port(port, 120, process)
    return process


def live_workers(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=2)
    try:
        return sorted(k.removeprefix(WORKER_KEY) for k in client.scan_iter(match=WORKER_KEY + "*"))
    finally:
        client.close()


def wait_for_workers(
    redis_url: str, count: int, processes: Sequence[subprocess.Popen[bytes]] = (), timeout: float = 90.0
) -> list[str]:
    """Workers announce themselves (a heartbeat) once they consume; wait until ``count`` have."""
    deadline = time.monotonic() + timeout
    while True:
        names = live_workers(redis_url)
        if len(names) >= count:
            return names
        for p in processes:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited with code {p.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(names)} of {count} workers ready after {timeout:.0f} s")
        time.sleep(0.1)


def http_get(url: str, timeout: float = 5.0) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode()
    except urllib.error.URLError as exc:
        raise RuntimeError(f"GET {url}: {exc}") from exc


def stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        stop_process(p, timeout)


def distributed_env(data_dir: Path, s3: S3Server, index_port: int, redis_url: str, **extra: str) -> dict[str, str]:
    """The settings every process of a one-machine distributed deployment shares: S3 objects, the index
    host, Redis as broker (db 0) and job store (db 1). ``extra`` adds or overrides ``ORDO_*`` variables."""
    return {
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_OBJECT_STORE": "s3",
        "ORDO_S3_ENDPOINT": s3.endpoint,
        "ORDO_S3_ACCESS_KEY": s3.access_key,
        "ORDO_S3_SECRET_KEY": s3.secret_key,
        "ORDO_VECTOR_BACKEND": "qdrant",
        "ORDO_QDRANT_URL": f"ordo-index://127.0.0.1:{index_port}",
        "ORDO_QDRANT_PATH": "",
        "ORDO_BROKER_URL": f"{redis_url}/0",
        "ORDO_JOB_STORE": "redis",
        "ORDO_REDIS_URL": f"{redis_url}/1",
        **extra,
    }
