"""Soak: 50 gRPC + 20 REST search clients and 8 uploaders against one `ordo up` on loopback, for 60 s.

    make soak                                  # 60 s, the issue's mix
    python -m bench.soak --seconds 15          # shorter (``make bench`` runs a 10 s version)

What it shows: under a mix of searches (gRPC ``SearchText`` and REST ``GET /api/search``) and uploads (each
a fresh 64x48 JPEG, so every one is new work for the embedding worker) nobody gets an error, nothing hangs,
and the latencies stay bounded. It prints, per kind of client, the requests, errors and p50/p95/p99, and the
load average. The stack runs ordo-lite (the offline default) on an empty data dir (the uploads fill it).
Queries are COCO captions, repeated across clients (as real traffic repeats), so the query cache helps.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import threading
import time
from typing import Any

import httpx

from bench.common import load_avg, load_coco, log, ordo_up, temp_dir
from bench.load import run_clients
from ordo.processes import free_port

GRPC_CLIENTS = 50
REST_CLIENTS = 20
UPLOADERS = 8
MODEL = "ordo-lite"


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", (64, 48), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(20):
        image.putpixel((rng.randrange(64), rng.randrange(48)), (rng.randrange(256), 0, rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def run(*, seconds: float = 60.0, keep: bool = False) -> dict[str, Any]:
    from ordo.v1 import ingest_pb2, search_pb2

    captions = sorted(set(load_coco().captions))[:500]
    http_port = free_port()
    with (
        temp_dir("ordo-soak-", keep) as tmp,
        ordo_up(tmp / "data", {"ORDO_MODEL": MODEL, "ORDO_HTTP_PORT": str(http_port)}) as stack,
    ):
        base = f"http://127.0.0.1:{http_port}"
        client = stack.client
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/healthz", timeout=5).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        # Seed a few images so searches have something to find, and warm the model.
        seed_upload = [
            ingest_pb2.UploadImagesRequest(header=ingest_pb2.UploadFileHeader(file_name=f"seed{i}.jpg"))
            if k == 0
            else ingest_pb2.UploadImagesRequest(chunk=_jpeg(10**6 + i))
            for i in range(16)
            for k in range(2)
        ]
        client.ingest.UploadImages(iter(seed_upload), timeout=120)
        client.search.SearchText(search_pb2.SearchTextRequest(query="warm up", page_size=10), timeout=120)

        stop = threading.Event()
        rest_clients = [httpx.Client(base_url=base, timeout=60) for _ in range(REST_CLIENTS)]

        def grpc_search(index: int, n: int) -> None:
            query = captions[(index * 7919 + n) % len(captions)]
            client.search.SearchText(search_pb2.SearchTextRequest(query=query, page_size=20), timeout=60)

        def rest_search(index: int, n: int) -> None:
            query = captions[(index * 104729 + n * 3) % len(captions)]
            response = rest_clients[index].get("/api/search", params={"q": query, "k": 20})
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

        def upload(index: int, n: int) -> None:
            messages = [
                ingest_pb2.UploadImagesRequest(header=ingest_pb2.UploadFileHeader(file_name=f"u{index}-{n}.jpg")),
                ingest_pb2.UploadImagesRequest(chunk=_jpeg(index * 1_000_000 + n)),
            ]
            response = client.ingest.UploadImages(iter(messages), timeout=60)
            if response.results[0].outcome == ingest_pb2.FILE_OUTCOME_FAILED:
                raise RuntimeError(response.results[0].failure.message)

        outcomes: dict[str, Any] = {}

        def drive(name: str, clients: int, call: Any) -> None:
            outcomes[name] = run_clients(clients, call, seconds, stop=stop)

        log(f"soak: {GRPC_CLIENTS} gRPC + {REST_CLIENTS} REST search clients, {UPLOADERS} uploaders, {seconds:.0f} s")
        threads = [
            threading.Thread(target=drive, args=("grpc_search", GRPC_CLIENTS, grpc_search)),
            threading.Thread(target=drive, args=("rest_search", REST_CLIENTS, rest_search)),
            threading.Thread(target=drive, args=("upload", UPLOADERS, upload)),
        ]
        load_before = load_avg()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load_after = load_avg()
        healthy = client.health("ingest") == "SERVING"
        stats = client.ingest.GetStats(ingest_pb2.GetStatsRequest(), timeout=30)
        for http in rest_clients:
            http.close()
    summary = {name: result.summary() for name, result in outcomes.items()}
    total_errors = sum(s["errors"] for s in summary.values())
    return {
        "config": {
            "seconds": seconds,
            "grpc_clients": GRPC_CLIENTS,
            "rest_clients": REST_CLIENTS,
            "uploaders": UPLOADERS,
            "model": MODEL,
        },
        "clients": summary,
        "errors": total_errors,
        "healthy_after": healthy,
        "assets_after": int(stats.asset_count),
        "load_avg_1m": {"before": load_before, "after": load_after},
        "target": {
            "name": f"soak {seconds:.0f} s ({GRPC_CLIENTS} gRPC + {REST_CLIENTS} REST + {UPLOADERS} uploaders)",
            "target": "0 errors, healthy after",
            "value": f"{total_errors} errors, {'healthy' if healthy else 'NOT healthy'}",
            "passed": total_errors == 0 and healthy,
        },
    }


def print_report(result: dict[str, Any]) -> None:
    print(f"{'clients':<14}{'n':>4}{'requests':>10}{'errors':>8}{'req/s':>9}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for name, s in result["clients"].items():
        print(
            f"{name:<14}{s['clients']:>4}{s['requests']:>10}{s['errors']:>8}{s['req_per_s']:>9}"
            f"{s.get('p50_ms', '-'):>10}{s.get('p95_ms', '-'):>10}{s.get('p99_ms', '-'):>10}"
        )
        for sample in s["error_samples"]:
            print(f"    error: {sample}")
    load = result["load_avg_1m"]
    print(
        f"errors {result['errors']}; healthy after: {result['healthy_after']}; assets {result['assets_after']}; "
        f"load average (1 min) {load['before']} before, {load['after']} after"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="print the full result as JSON too")
    args = parser.parse_args(argv)
    result = run(seconds=args.seconds)
    print_report(result)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if result["target"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
