"""``ORDO_MODEL_STREAMS`` settings through ``ordo up``, alternating: ingest rate and text-query latency meanwhile.

For each repetition and each setting (``--streams 1,2``), a scratch stack with that setting ingests ``--images``
COCO photos (upload → searchable) while one client sends a ``SearchText`` every 50 ms, and prints the stack's
rate with the queries' p50 / p90 / p99 / max. Alternating settings on one machine in one run is the only fair
comparison on a noisy VM (see README, "Image passes side by side").

    TMPDIR=$(mktemp -d -p ~) python -m bench.streams_ab --model ordo-lite --streams 1,2 --reps 2

``TMPDIR`` in a fresh folder: scratch stacks live there, and a ``/tmp`` that tests have just filled and emptied
makes every file the stack creates cost more kernel time (README, "The disk's share").
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from bench.common import load_avg, load_coco, percentiles_ms
from bench.cpu_speed_bench import _env, _stack_rate

QUERIES = ("a dog on the beach", "red car in the street", "two people eating pizza", "a cat sleeping", "city at night")


def _one(model: str, streams: str, files: list[Any], warm: list[Any]) -> dict[str, Any]:
    from ordo.launch import scratch_stack
    from ordo.v1 import search_pb2

    client: Any
    with scratch_stack(model, env={**_env(), "ORDO_MODEL_STREAMS": streams}, timeout=900) as (client, _s, _r):
        _stack_rate(client, warm)
        done, outcome, latencies = threading.Event(), {}, []

        def ingest() -> None:
            try:
                outcome["rate"] = _stack_rate(client, files)["images_per_s"]
            except Exception as exc:  # reported in the row, never a hang of the query loop
                outcome["error"] = repr(exc)[:200]
            finally:
                done.set()

        uploader = threading.Thread(target=ingest)
        uploader.start()
        time.sleep(1.0)
        i = 0
        while not done.is_set():
            started = time.perf_counter()
            request = search_pb2.SearchTextRequest(query=f"{QUERIES[i % len(QUERIES)]} {i}", page_size=10)
            client.search.SearchText(request, timeout=60)
            latencies.append((time.perf_counter() - started) * 1000)
            i += 1
            time.sleep(0.05)
        uploader.join()
    spread = percentiles_ms([ms / 1000 for ms in latencies])
    return {
        "model": model,
        "streams": streams,
        **outcome,
        "queries": len(latencies),
        **{key: round(spread.get(key, 0.0), 1) for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
        "load_avg": load_avg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="ordo-lite")
    parser.add_argument("--streams", default="1,2", help="settings to alternate, comma-separated")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--images", type=int, default=192)
    args = parser.parse_args()
    coco = load_coco().files
    warm = coco[-8:]
    for rep in range(args.reps):
        files = coco[rep * 96 : rep * 96 + args.images]  # each stack is new: the photos need not be
        for streams in args.streams.split(","):
            print(json.dumps(_one(args.model, streams.strip(), files, warm)), flush=True)


if __name__ == "__main__":
    main()
