"""Stopping child processes (the stack, S3 servers) the same way everywhere."""

from __future__ import annotations

import subprocess


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
