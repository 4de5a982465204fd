"""What access control costs per call: ListJobs over a real gRPC channel to an in-process ingest server,
with ORDO_AUTH=off vs required (key record cached, the default 5 s) vs required with no cache (one key
read from the object store per call). Rounds alternate so machine load hits every side alike; the table
reports medians and the ratio to the auth-off baseline of the same run.

    python -m bench.auth_overhead [--calls 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from ordo.app import AppContext
from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.grpc_api.server import OrdoServer
from ordo.security.keys import KeyStore
from ordo.security.principal import Role
from ordo.v1 import ingest_pb2

RESULTS = Path(__file__).parent / "results"


def _per_call_us(data_dir: Path, calls: int, **auth: object) -> float:
    ctx = AppContext(Settings(data_dir=data_dir, model="ordo-lite", **auth))
    key = KeyStore(ctx.store).create(role=Role.READ).token if auth.get("auth") == "required" else ""
    server = OrdoServer(ctx, ("ingest",), "127.0.0.1", 0).start()
    try:
        client = OrdoClient(Settings(address=f"127.0.0.1:{server.port}", api_key=key))
        request = ingest_pb2.ListJobsRequest(page_size=1)
        for _ in range(20):
            client.ingest.ListJobs(request)
        start = time.perf_counter()
        for _ in range(calls):
            client.ingest.ListJobs(request)
        return (time.perf_counter() - start) / calls * 1e6
    finally:
        server.stop(0)
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sides = {
        "auth off": {},
        "required, cached key": {"auth": "required"},
        "required, no cache": {"auth": "required", "auth_cache_seconds": 0},
    }
    samples: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, auth in sides.items():
                samples[name].append(
                    _per_call_us(Path(tmp) / f"{r}-{len(samples[name])}-{hash(name)}", args.calls, **auth)
                )
    base = statistics.median(samples["auth off"])
    rows = {
        name: {"us_per_call": round(statistics.median(v), 1), "ratio": round(statistics.median(v) / base, 3)}
        for name, v in samples.items()
    }
    load = os.getloadavg()[0]
    print(f"ListJobs over gRPC, {args.calls} calls x {args.rounds} rounds, load average {load:.2f}")
    for name, row in rows.items():
        print(f"  {name:24s} {row['us_per_call']:8.1f} us/call  x{row['ratio']:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "auth-overhead-latest.json").write_text(json.dumps({"load_average": load, **rows}, indent=1))


if __name__ == "__main__":
    main()
