"""Crash rounds against the real embedded stack (`ordo up` in a subprocess, the tiny CLIP).

One round: start `ordo up`, upload images in several calls, and SIGKILL the process at one kill point —
either from inside (``ORDO_CHAOS_KILL=<point>:<n>``, see ``ordo.chaos``: upload, queue, decode, embed,
write, optimise, switch, analysis) or from outside at a random moment (``random``). Restart on the same
data directory and wait until nothing is running. Then:

1. every image the stack *acknowledged* (its upload call returned) is READY and found by searching with
   its own bytes — without uploading anything again;
2. after uploading every image again (what a user does after a crash), all of them are: asset count =
   vector count = images, each found exactly once, no duplicate vectors;
3. every job is in a final state, and `ordo status` (GetStats) agrees with the catalog.

The same functions serve the CI test (a few small rounds) and `make chaos` (many rounds, a table).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.processes import free_port, stop_process
from ordo.v1 import analysis_pb2, common_pb2, ingest_pb2, search_pb2

INGEST_POINTS = ("upload", "queue", "decode", "embed", "write", "optimise", "random")
FINAL = {
    common_pb2.JOB_STATE_SUCCEEDED,
    common_pb2.JOB_STATE_PARTIALLY_SUCCEEDED,
    common_pb2.JOB_STATE_FAILED,
    common_pb2.JOB_STATE_CANCELLED,
}


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    client: OrdoClient
    log: Path


@dataclass
class RoundResult:
    seed: int
    point: str
    killed: bool
    acknowledged: int
    recovered: int  # acknowledged images searchable after the restart, before any re-upload
    final_assets: int
    final_vectors: int
    jobs_open: int
    recovery_s: float
    problems: list[str] = field(default_factory=list)
    kill_spec: str = ""  # the inside kill point and its pass (``embed:3``), or ``random@<file>``
    duplicates: int = 0  # images whose asset came back more than once from one search, at the end

    @property
    def ok(self) -> bool:
        return not self.problems


def start(data_dir: Path, model_dir: Path, kill: str = "", model: str = "") -> Stack:
    port = free_port()
    env = {
        **os.environ,
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_MODEL": model or str(model_dir),
        "ORDO_PORT": str(port),
        "ORDO_ADDRESS": f"127.0.0.1:{port}",
        "ORDO_TASK_BATCH_SIZE": "8",
        # A graph (and so a rebuild, and the optimise kill point) from the first vectors on, as in a big library.
        "ORDO_EDGE_INDEXING_THRESHOLD_KB": "1",
        "ORDO_HTTP_PORT": "0",
        "ORDO_CHAOS_KILL": kill,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "stack.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ordo.cli.main", "up"], env=env, stdout=out, stderr=out)
    client = OrdoClient(Settings(address=f"127.0.0.1:{port}"))
    deadline = time.monotonic() + 120
    while client.health("ingest", timeout=1) != "SERVING":
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"ordo up did not start (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return Stack(proc, client, log)


def kill(stack: Stack) -> None:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGKILL)
    stack.process.wait(timeout=30)


def _dead(stack: Stack) -> bool:
    return stack.process.poll() is not None


def _wait_dead(stack: Stack, timeout: float = 15) -> bool:
    """Whether the process exits within ``timeout`` (a failed call may arrive before the exit is seen)."""
    try:
        stack.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def upload_calls(stack: Stack, files: Sequence[Path], per_call: int, rng: random.Random, point: str) -> list[Path]:
    """Upload in calls of ``per_call``; returns the files of calls that returned (acknowledged). With
    ``point == 'random'`` the process is SIGKILLed from here at a random file."""
    acknowledged: list[Path] = []
    kill_at = rng.randrange(len(files)) if point == "random" else -1
    sent = 0

    def on_file(path: Path, size: int) -> None:
        nonlocal sent
        if sent == kill_at:  # on gRPC's sending thread: signal only (waiting here races Popen.poll)
            os.kill(stack.process.pid, signal.SIGKILL)
        sent += 1

    for first in range(0, len(files), per_call):
        chunk = list(files[first : first + per_call])
        if sent > kill_at >= 0 or _dead(stack):
            break
        try:
            stack.client.upload(chunk, on_file=on_file, timeout=120)
        except Exception:  # the stack died under this call: nothing of it was acknowledged
            break
        acknowledged.extend(chunk)
    return acknowledged


def wait_quiet(stack: Stack, timeout: float = 180) -> int:
    """Wait until every job is final (or the process died); returns how many are still open."""
    deadline = time.monotonic() + timeout
    while True:
        if _dead(stack):
            return -1
        try:
            jobs = stack.client.ingest.ListJobs(ingest_pb2.ListJobsRequest(page_size=500), timeout=10).jobs
        except Exception:
            try:  # the process is being killed (maybe from another thread): wait for it
                stack.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                raise
            return -1
        open_jobs = [j for j in jobs if j.state not in FINAL]
        if not open_jobs or time.monotonic() > deadline:
            return len(open_jobs)
        time.sleep(0.2)


def searchable(stack: Stack, files: Sequence[Path], duplicated: list[Path] | None = None) -> list[Path]:
    """Files whose own bytes find their asset as the best hit, and whose asset is READY. Files whose asset
    appears more than once among the hits (a duplicate vector) go to ``duplicated``."""
    found = []
    for path in files:
        data = path.read_bytes()
        asset_id = hashlib.sha256(data).hexdigest()
        try:
            asset = stack.client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=asset_id), timeout=10).asset
            hits = stack.client.search.SearchImage(
                search_pb2.SearchImageRequest(image=data, page_size=3), timeout=30
            ).hits
        except Exception:
            continue
        if asset.state == common_pb2.ASSET_STATE_READY and hits and hits[0].asset.asset_id == asset_id:
            found.append(path)
        if duplicated is not None and [h.asset.asset_id for h in hits].count(asset_id) > 1:
            duplicated.append(path)
    return found


def ingest_round(seed: int, files: Sequence[Path], model_dir: Path, work: Path, point: str = "") -> RoundResult:
    rng = random.Random(seed)
    point = point or rng.choice(INGEST_POINTS)
    data_dir = work / f"round-{seed}"
    # Inside kill points: the n-th pass (each point is passed a different number of times per image).
    passes = {
        "upload": len(files),
        "queue": max(1, len(files) // 8),
        "decode": len(files),
        "embed": 4,
        "write": 4,
        "optimise": 1,
    }
    kill_spec = f"{point}:{rng.randint(1, passes[point])}" if point in passes else ""
    stack = start(data_dir, model_dir, kill=kill_spec)
    if point == "random":  # the file upload_calls will kill at: its first draw from this same state
        peek = random.Random()
        peek.setstate(rng.getstate())
        kill_spec = f"random@{peek.randrange(len(files))}"
    try:
        acknowledged = upload_calls(stack, files, per_call=10, rng=rng, point=point)
        wait_quiet(stack, timeout=120)  # the kill may come later (embedding, optimise)
        killed = _dead(stack)
    finally:
        kill(stack)
    t0 = time.monotonic()
    again = start(data_dir, model_dir)
    try:
        open_after = wait_quiet(again)
        recovery_s = time.monotonic() - t0
        recovered = searchable(again, acknowledged)
        problems = []
        if len(recovered) != len(acknowledged):
            lost = sorted(set(p.name for p in acknowledged) - {p.name for p in recovered})
            problems.append(f"{len(lost)} acknowledged image(s) not searchable after restart: {lost[:5]}")
        if open_after:
            problems.append(f"{open_after} job(s) not final after restart")
        upload_calls(again, files, per_call=20, rng=rng, point="")
        open_jobs = wait_quiet(again)
        stats = again.client.ingest.GetStats(ingest_pb2.GetStatsRequest(), timeout=30)
        duplicated: list[Path] = []
        everything = searchable(again, files, duplicated)
        if duplicated:
            problems.append(f"{len(duplicated)} image(s) found more than once: {[p.name for p in duplicated[:5]]}")
        if open_jobs:
            problems.append(f"{open_jobs} job(s) not final at the end")
        if (stats.asset_count, stats.vector_count) != (len(files), len(files)):
            problems.append(f"status: {stats.asset_count} assets, {stats.vector_count} vectors for {len(files)} images")
        if len(everything) != len(files):
            problems.append(f"{len(files) - len(everything)} image(s) not searchable at the end")
        return RoundResult(
            seed,
            point,
            killed,
            len(acknowledged),
            len(recovered),
            stats.asset_count,
            stats.vector_count,
            open_jobs,
            recovery_s,
            problems,
            kill_spec,
            len(duplicated),
        )
    finally:
        stop_process(again.process)


def switch_round(seed: int, files: Sequence[Path], model_dir: Path, work: Path) -> RoundResult:
    """Kill during a model switch (while re-embedding, or just before the flip); after the restart the
    switch must finish by itself: the new model active, every image in its collection once."""
    rng = random.Random(seed)
    data_dir = work / f"switch-{seed}"
    # Another name: another model and collection. A copy under <data_dir>/models, the one place
    # ActivateModel takes a folder from (ordo.security.paths.check_model).
    second = Path(os.path.realpath(data_dir)) / "models" / "tiny-clip-b"
    if not second.exists():
        shutil.copytree(model_dir, second)
    stack = start(data_dir, model_dir)
    try:
        upload_calls(stack, files, per_call=20, rng=rng, point="")
        wait_quiet(stack)
    finally:
        stop_process(stack.process)
    point = rng.choice(("embed", "switch"))
    kill_spec = f"{point}:{rng.randint(1, 3) if point == 'embed' else 1}"
    stack = start(data_dir, model_dir, kill=kill_spec)
    try:
        stack.client.ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model=str(second)), timeout=60)
        wait_quiet(stack)
        killed = _dead(stack)
    except grpc.RpcError:
        killed = _wait_dead(stack)
    finally:
        kill(stack)
    t0 = time.monotonic()
    again = start(data_dir, model_dir)
    try:
        open_jobs = wait_quiet(again)
        recovery_s = time.monotonic() - t0
        time.sleep(1.5)  # the active model is re-read every second or so
        stats = again.client.ingest.GetStats(ingest_pb2.GetStatsRequest(), timeout=30)
        problems = []
        if stats.model != str(second):
            problems.append(f"active model is {stats.model}, not the one switched to")
        if (stats.asset_count, stats.vector_count) != (len(files), len(files)):
            problems.append(f"status: {stats.asset_count} assets, {stats.vector_count} vectors")
        if open_jobs:
            problems.append(f"{open_jobs} job(s) not final")
        duplicated: list[Path] = []
        found = searchable(again, files, duplicated)
        if len(found) != len(files):
            problems.append(f"{len(files) - len(found)} image(s) not searchable after the switch")
        if duplicated:
            problems.append(f"{len(duplicated)} image(s) found more than once after the switch")
        return RoundResult(
            seed,
            f"switch/{point}",
            killed,
            len(files),
            len(found),
            stats.asset_count,
            stats.vector_count,
            open_jobs,
            recovery_s,
            problems,
            kill_spec,
            len(duplicated),
        )
    finally:
        stop_process(again.process)


def analysis_round(seed: int, files: Sequence[Path], model_dir: Path, work: Path) -> RoundResult:
    """Kill as a clustering run starts: after the restart its job is FAILED with INTERRUPTED, and a new
    run succeeds."""
    rng = random.Random(seed)
    data_dir = work / f"analysis-{seed}"
    stack = start(data_dir, model_dir)
    try:
        upload_calls(stack, files, per_call=20, rng=rng, point="")
        wait_quiet(stack)
    finally:
        stop_process(stack.process)
    stack = start(data_dir, model_dir, kill="analysis:1")
    try:
        stack.client.analysis.CreateClusteringRun(analysis_pb2.CreateClusteringRunRequest(), timeout=60)
        stack.process.wait(timeout=60)
        killed = True
    except grpc.RpcError as exc:
        if exc.code() is not grpc.StatusCode.UNAVAILABLE:  # refused, not killed: the round tests nothing
            raise
        killed = _wait_dead(stack)
    finally:
        kill(stack)
    t0 = time.monotonic()
    again = start(data_dir, model_dir)
    try:
        open_jobs = wait_quiet(again)
        recovery_s = time.monotonic() - t0
        jobs = again.client.ingest.ListJobs(ingest_pb2.ListJobsRequest(page_size=500), timeout=10).jobs
        problems = []
        interrupted = [j for j in jobs if "INTERRUPTED" in j.error]
        if killed and not interrupted:
            problems.append("the interrupted analysis job was not ended with reason INTERRUPTED")
        again.client.analysis.CreateClusteringRun(analysis_pb2.CreateClusteringRunRequest(), timeout=60)
        open_jobs = max(open_jobs, wait_quiet(again))
        if open_jobs:
            problems.append(f"{open_jobs} job(s) not final")
        stats = again.client.ingest.GetStats(ingest_pb2.GetStatsRequest(), timeout=30)
        return RoundResult(
            seed,
            "analysis",
            killed,
            len(files),
            len(files),
            stats.asset_count,
            stats.vector_count,
            open_jobs,
            recovery_s,
            problems,
            "analysis:1",
        )
    finally:
        stop_process(again.process)
