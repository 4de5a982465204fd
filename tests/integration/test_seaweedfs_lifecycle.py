"""The test S3 server's lifecycle: it starts from a process whose gRPC threads are running, and it goes when the
process that started it is killed (a killed pytest or `ordo ops up-distributed` leaves no server behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

_PARENT = """
import sys, time
from concurrent import futures
from pathlib import Path

import grpc

from ordo_devstack.seaweedfs import start_seaweedfs

# gRPC's event engine threads running in this process, as in pytest's when the S3 fixture starts
server = grpc.server(futures.ThreadPoolExecutor(2))
server.add_insecure_port("127.0.0.1:0")
server.start()
weed = start_seaweedfs(Path(sys.argv[1]))
print(weed.process.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_server_goes_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        assert line.strip().isdigit(), f"the server did not start: {parent.stderr.read() if parent.stderr else ''}"
        pid = int(line)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"mini" in cmdline and Path(cmdline[0].decode()).name == "weed"  # the launcher became the server
        assert _alive(pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    gone = not _alive(pid)
    if not gone:
        os.kill(pid, signal.SIGKILL)
    assert gone, "SeaweedFS outlived the process that started it"
