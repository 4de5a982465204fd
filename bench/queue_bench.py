"""Benchmark: the embedded queue, measured against the transports it was chosen over (issue 12).

Each kombu transport gets the same work, through kombu's own producer and consumer (what Celery's worker
uses underneath): ``n`` messages of a Celery task's size (an ``EmbedBatch`` envelope, ~1.5 KB) are
published, then taken and acknowledged one by one. Reported per transport: enqueue tasks/s, take+ack
tasks/s, and enqueue→ack tasks/s over the whole run.

Then **what a SIGKILL between take and ack loses**: ``k`` messages are queued, a consumer in a child
process takes one and is SIGKILLed before acknowledging it; a fresh consumer (after what a restart of
``ordo up`` does: ``restore_taken`` for Ordo's queue; for Redis, waiting out the visibility timeout,
set to 2 s here instead of kombu's hour) drains the queue. ``lost`` = ``k`` minus what it got.

Transports: Ordo's (``ordo-sqlite://``, WAL, ``synchronous=FULL``), kombu's ``filesystem://`` (the
previous default), kombu's ``sqla+sqlite://`` (needs SQLAlchemy, which Ordo does not depend on: the row
says so when it is missing) and Redis (a private ``redis-server`` on a free port, with ``appendfsync
always``, Ordo's durability, and ``everysec``, Redis's default), when ``redis-server`` is on the PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import load_avg, log, temp_dir

QUEUE = "bench"
PAYLOAD_BYTES = 1500
VISIBILITY_S = 2.0

_CHILD = """
import sys, time, json
import ordo.worker.sqlite_queue  # registers ordo-sqlite://
from kombu import Connection
url, options = sys.argv[1], json.loads(sys.argv[2])
with Connection(url, transport_options=options) as conn:
    queue = conn.SimpleQueue(sys.argv[3])
    message = queue.get(timeout=30)
    print("taken", flush=True)
    time.sleep(600)  # SIGKILLed here, before any ack
"""


def _payload(i: int) -> dict[str, Any]:
    return {"batch_id": f"{i:032x}", "asset_ids": [f"{i:064x}"] * 16, "pad": "x" * (PAYLOAD_BYTES - 1200)}


@contextmanager
def _redis(fsync: str) -> Iterator[str | None]:
    """A private redis-server (no persistence file left behind) or None when there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    from ordo.processes import free_port, stop_process

    with temp_dir("ordo-bench-redis-", False) as root:
        port = free_port()
        persistence = ["--save", "", "--appendonly", "yes", "--appendfsync", fsync]
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root), *persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import redis

            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(proc)


def _transports(root: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    from ordo.worker.sqlite_queue import queue_url

    folder = root / "fs"
    folder.mkdir()
    return {
        "ordo-sqlite (WAL, synchronous=FULL)": (queue_url(root / "ordo.sqlite3"), {}),
        "kombu filesystem://": (
            "filesystem://",
            {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False},
        ),
        "kombu sqla+sqlite://": (f"sqla+sqlite:///{root / 'sqla.sqlite3'}", {}),
    }


def _throughput(url: str, options: dict[str, Any], n: int) -> dict[str, Any]:
    from kombu import Connection

    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue(QUEUE)
        start = time.perf_counter()
        for i in range(n):
            queue.put(_payload(i))
        enqueued = time.perf_counter()
        got = 0
        for _ in range(n):
            message = queue.get(timeout=10)
            message.ack()
            got += 1
        done = time.perf_counter()
        queue.close()
    return {
        "enqueue_per_s": round(n / (enqueued - start), 1),
        "take_ack_per_s": round(got / (done - enqueued), 1),
        "end_to_end_per_s": round(got / (done - start), 1),
        "messages": got,
    }


def _kill_between_take_and_ack(url: str, options: dict[str, Any], k: int, restart: Any) -> dict[str, Any]:
    from kombu import Connection

    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue(QUEUE + "-kill")
        for i in range(k):
            queue.put(_payload(i))
        queue.close()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, json.dumps(options), QUEUE + "-kill"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        if line.strip() != "taken":
            return {"error": f"consumer did not take a message: {line!r}"}
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    restart()
    received = 0
    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue(QUEUE + "-kill")
        deadline = time.perf_counter() + VISIBILITY_S + 3
        while time.perf_counter() < deadline and received < k:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                continue
            message.ack()
            received += 1
        queue.close()
    return {"queued": k, "taken_by_killed_consumer": 1, "recovered": received, "lost": k - received}


def _one(name: str, url: str, options: dict[str, Any], n: int, k: int, root: Path) -> dict[str, Any]:
    def restart() -> None:
        if url.startswith("ordo-sqlite://"):
            from ordo.worker.sqlite_queue import restore_taken

            restore_taken(root / "ordo.sqlite3")  # what `ordo up` does at start, before its worker
        elif url.startswith("redis://"):
            time.sleep(VISIBILITY_S + 0.5)  # kombu restores unacked messages after the visibility timeout

    try:
        row: dict[str, Any] = {"url": url.split("://")[0] + "://"}
        row.update(_throughput(url, options, n))
        row["sigkill_between_take_and_ack"] = _kill_between_take_and_ack(url, options, k, restart)
    except ImportError as exc:
        return {"error": f"not installed: {exc.name}"}
    except Exception as exc:  # a transport that fails is a result too
        return {"error": f"{type(exc).__name__}: {exc}"}
    log(f"queue: {name}: {row}")
    return row


def run(*, n: int = 2000, k: int = 10, keep: bool = False) -> dict[str, Any]:
    import ordo.worker.sqlite_queue  # noqa: F401  (registers ordo-sqlite://)

    results: dict[str, Any] = {"messages": n, "kill_messages": k, "load_avg_1m": [load_avg()], "transports": {}}
    with temp_dir("ordo-bench-queue-", keep) as root:
        for name, (url, options) in _transports(root).items():
            results["transports"][name] = _one(name, url, options, n, k, root)
    for fsync in ("always", "everysec"):
        with _redis(fsync) as url:
            name = f"redis (appendfsync {fsync})"
            if url is None:
                results["transports"][name] = {"error": "redis-server not on PATH"}
                continue
            results["transports"][name] = _one(name, url, {"visibility_timeout": VISIBILITY_S}, n, k, Path("."))
    results["load_avg_1m"].append(load_avg())
    return results


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    sec = f"queue, {results['messages']:,} msgs (load {results['load_avg_1m']})"
    rows = []
    for name, r in results["transports"].items():
        if "error" in r:
            rows.append((sec, name, r["error"]))
            continue
        kill = r["sigkill_between_take_and_ack"]
        lost = kill.get("error") or f"lost {kill['lost']} of {kill['queued']} after a SIGKILL between take and ack"
        rows.append(
            (
                sec,
                name,
                f"enqueue {r['enqueue_per_s']:,.0f}/s, take+ack {r['take_ack_per_s']:,.0f}/s, "
                f"enqueue→ack {r['end_to_end_per_s']:,.0f}/s; {lost}",
            )
        )
    return rows
