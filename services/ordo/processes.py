"""Child processes (the stack, S3 and Redis servers, workers): free ports for them, and stopping them the
same way everywhere."""

from __future__ import annotations

import socket
import subprocess


def free_ports(count: int) -> list[int]:
    """Ports of 127.0.0.1 the kernel says are free now (held open together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, so the process can shut down cleanly (Celery finishes its task, indexes are closed);
    SIGKILL if it has not gone within ``timeout``. A process that already exited is left alone."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
