"""Benchmark (issue 18): the embedded stack against the bare model on this CPU, per model, in one run.

    python -m bench.run --only cpu-speed            # ordo-lite and CLIP ViT-B/32 (random weights)

For each model:

* **tuning**: the embedder is loaded as ``ordo up`` loads it, so the load-time tuner measures the image tower on
  this machine (``ordo.embedding.autotune``); its table (every candidate's img/s) and choice are reported. The
  tuning cache is the bench's own (``$ORDO_BENCH_CACHE/tuning.json``) and is shared with the stacks below, so
  they run exactly the chosen setting.
* **bare loop** (the denominator): JPEG bytes → vectors in process, decoder threads feeding the tuned tower +
  head, with the best setting found: the least work that yields the vectors. Also reported: the tower + head
  alone on already preprocessed pixels (the "bare model"), and the ratio against it.
* **stack**: ``ordo up`` (a scratch stack, its own process) from upload over gRPC until the job is final (every
  image stored, thumbnailed, embedded, upserted, searchable). **Ratio = stack / bare loop** (target >= 0.9).
* **busy machine**: the same upload while a second Ordo process embeds the same model flat out; both rates are
  reported. With the CPU budget both processes share the cores instead of oversubscribing them.
* **text queries**: ``embed_texts`` of one query at a time (the text tower, what SearchText adds to the index's
  ~1-3 ms), p50/p99.

The load average and CPU model go with every row; the two sides of a ratio run back to back in one process.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import lane_streams_bench
from bench.common import BenchError, load_avg, load_coco, log, percentiles_ms

MODELS = ("ordo-lite", "random-clip:vit-b-32")
TARGET_RATIO = 0.9
TEXT_QUERIES = 60


def _tuning_cache() -> Path:
    root = Path(os.environ.get("ORDO_BENCH_CACHE", "/tmp/ordo-bench-cache"))
    return root / "tuning.json"


def _env() -> dict[str, str]:
    return {"ORDO_TUNING_CACHE": str(_tuning_cache()), "ORDO_AUTOTUNE": "true"}


def _embedder(model: str) -> Any:
    from ordo.config import Settings
    from ordo.embedding.factory import get_embedder
    from ordo.embedding.tuned_tower import runtime_options

    settings = Settings(model=model, device="cpu", tuning_cache=str(_tuning_cache()), autotune=True)
    return get_embedder(
        model,
        device="cpu",
        batch_size=settings.model_batch_size,
        quantize_text_on_cpu=settings.quantize_text_on_cpu,
        **runtime_options(settings),
    )


def _decode(blob: bytes, side: int) -> Any:
    from ordo.imaging import ImageLimits, decode

    return decode(blob, ImageLimits(), max_side=side)[0]


def _bare(model: str, blobs: list[bytes], rounds: int = 2, *, streams: bool = False) -> dict[str, Any]:
    """The bare model, the bare loop and text queries in this process; ``streams``: also the tower as one
    2-thread pass against two 1-thread streams (``bench.lane_streams_bench``)."""
    from ordo.embedding import cpu_budget
    from ordo.embedding.factory import clear_embedder_cache

    started = time.perf_counter()
    embedder = _embedder(model)
    load_s = time.perf_counter() - started
    side = max(int(getattr(embedder, "input_size", 224)), 256)
    try:
        prepared = [embedder.prepare_image(_decode(b, side)) for b in blobs]
        embedder.embed_prepared(prepared[: embedder.batch_size])  # warm
        tower_best = loop_best = 0.0
        for _ in range(rounds):
            load_before = load_avg()
            t = time.perf_counter()
            embedder.embed_prepared(prepared)
            tower_best = max(tower_best, len(blobs) / (time.perf_counter() - t))
            loop_best = max(loop_best, _bare_loop(embedder, blobs, side), _bare_loop(embedder, blobs, side, feed=False))
        texts = load_coco().captions[:TEXT_QUERIES]
        embedder.embed_texts(texts[:3])
        times = []
        for text in texts:
            t = time.perf_counter()
            embedder.embed_texts([text])
            times.append(time.perf_counter() - t)
        lanes = lane_streams_bench.measure(embedder, model, rounds=2, images=32) if streams else None
        return {
            "lane_streams": lanes,
            "model_load_s": round(load_s, 1),
            "tuning": embedder.tower.summary(),
            "bare_model_images_per_s": round(tower_best, 2),
            "bare_loop_with_decode_images_per_s": round(loop_best, 2),
            "text_query": percentiles_ms(times),
            "load_avg": load_before,
        }
    finally:
        clear_embedder_cache()
        embedder = None
        gc.collect()
        cpu_budget.unregister()  # this process no longer runs a model: the stack must not count it


def _bare_loop(embedder: Any, blobs: list[bytes], side: int, *, feed: bool = True) -> float:
    """JPEG bytes → vectors, img/s: the process's decoder threads decode and preprocess, and each batch is
    handed to the model as soon as it is ready (a feeder thread waits for it), so the model's lane always
    has the next batch queued instead of idling while this thread collects it. ``feed=False``: one batch
    at a time, each waited for (the simpler loop; the best of both is the bare loop's rate). No storage,
    thumbnails or bookkeeping."""
    batch = embedder.batch_size
    started = time.perf_counter()
    with (
        ThreadPoolExecutor(embedder.tower.budget.decode_threads) as pool,
        ThreadPoolExecutor(2 if feed else 1) as feeder,
    ):
        futures = [pool.submit(lambda b: embedder.prepare_image(_decode(b, side)), b) for b in blobs]
        passes = [
            feeder.submit(embedder.embed_prepared, [f.result() for f in futures[first : first + batch]])
            for first in range(0, len(blobs), batch)
        ]
        for done in passes:
            done.result()
    return len(blobs) / (time.perf_counter() - started)


def _stack_rate(client: Any, files: list[Path]) -> dict[str, Any]:
    from ordo.v1 import common_pb2, ingest_pb2

    acked: list[float] = []

    def upload(batch: list[Path]) -> Any:
        response = client.upload(batch)
        acked.append(time.perf_counter())  # the stream's response: every file stored durably
        job = None
        for update in client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=response.job.job_id), timeout=1800):
            job = update.job
        if job is None or job.state != common_pb2.JOB_STATE_SUCCEEDED or job.succeeded != len(batch):
            raise BenchError(f"ingest job did not embed all {len(batch)} images: {job}")
        return job

    load_before = load_avg()
    t = time.perf_counter()
    upload(files)
    wall = time.perf_counter() - t
    return {
        "images": len(files),
        "images_per_s": round(len(files) / wall, 2),
        "acknowledged_per_s": round(len(files) / (acked[0] - t), 2),
        "load_avg": load_before,
    }


def _stack(
    model: str, warm: list[Path], rounds: list[list[Path]], second: list[Path], busy_files: list[Path]
) -> dict[str, Any]:
    """Upload → searchable through a scratch ``ordo up``: the best of ``rounds`` uploads (each of photos the
    stack has not seen, or they would all be duplicates), as the bare side is the best of its rounds."""
    from ordo.launch import scratch_stack

    with scratch_stack(model, env=_env(), timeout=900) as (client, _settings, _root):
        _stack_rate(client, warm)  # loads (cache hit) and warms the model
        alone = max((_stack_rate(client, files) for files in rounds), key=lambda r: r["images_per_s"])
        busy_proc = subprocess.Popen(
            [sys.executable, "-m", "bench.cpu_speed_bench", "--busy", model, *map(str, busy_files)],
            env={**os.environ, **_env()},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(2)
            ready = busy_proc.stdout.readline() if busy_proc.stdout else ""  # "ready" once it embeds
            if not ready.startswith("ready"):
                raise BenchError(f"the busy process did not start: {ready!r}")
            busy_proc.send_signal(signal.SIGUSR1)  # its count starts with the shared upload, not before
            shared = _stack_rate(client, second)  # other photos: the first set would all be duplicates
        finally:
            busy_proc.terminate()
            out, _ = busy_proc.communicate(timeout=60)
        busy = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    return {"alone": alone, "busy": {**shared, "other_process_images_per_s": busy.get("images_per_s")}}


def _busy(model: str, files: list[str]) -> None:
    """A second Ordo process embedding ``model`` flat out until terminated; prints its rate at exit, counted
    from SIGUSR1 (the start of the stack's shared upload) to SIGTERM, so its seconds alone before the upload
    do not count."""
    embedder = _embedder(model)
    side = max(int(getattr(embedder, "input_size", 224)), 256)
    blobs = [Path(f).read_bytes() for f in files]
    done, started = 0, time.perf_counter()
    stop = False

    def on_start(*_: Any) -> None:
        nonlocal done, started
        done, started = 0, time.perf_counter()

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGUSR1, on_start)
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    while not stop:
        batch = blobs[: embedder.batch_size]
        embedder.embed_images([_decode(b, side) for b in batch])
        done += len(batch)
    print(json.dumps({"images_per_s": round(done / (time.perf_counter() - started), 2)}), flush=True)


def run(*, n_images: int = 96, rounds: int = 2, models: tuple[str, ...] = MODELS) -> dict[str, Any]:
    """``rounds`` per side: the bare model and bare loop are the best of ``rounds`` passes over the same
    photos, the stack the best of ``rounds`` uploads of fresh photos (the first set is the bare side's)."""
    coco = load_coco()
    rounds = max(1, rounds)
    if len(coco.files) < (rounds + 1) * n_images + 40:
        raise BenchError(f"need {(rounds + 1) * n_images + 40} images")
    sets = [coco.files[i * n_images : (i + 1) * n_images] for i in range(rounds + 1)]
    warm = coco.files[-8:]
    busy_files = coco.files[-40:-8]
    blobs = [f.read_bytes() for f in sets[0]]
    rows = []
    for model in models:
        log(f"cpu-speed: {model}: load (tunes), bare model and bare loop on {n_images} images, {rounds} rounds")
        bare = _bare(model, blobs, rounds, streams=True)
        log(
            f"cpu-speed: {model}: bare {bare['bare_model_images_per_s']} img/s, loop "
            f"{bare['bare_loop_with_decode_images_per_s']} img/s ({bare['tuning']['config']})"
        )
        stack = _stack(model, warm, sets[:rounds], sets[rounds], busy_files)
        # the bare loop: JPEG → vector with the best setting found (decoding is work the stack must do
        # too); the stricter ratio against the tower alone is reported beside it
        ratio = stack["alone"]["images_per_s"] / bare["bare_loop_with_decode_images_per_s"]
        tower_ratio = stack["alone"]["images_per_s"] / bare["bare_model_images_per_s"]
        log(
            f"cpu-speed: {model}: stack {stack['alone']['images_per_s']} img/s, ratio {ratio:.2f}; busy {stack['busy']}"
        )
        rows.append(
            {
                "model": model,
                **bare,
                "stack": stack,
                "ratio": round(ratio, 3),
                "ratio_vs_tower_alone": round(tower_ratio, 3),
                "passed": ratio >= TARGET_RATIO,
            }
        )
    return {"rows": rows, "target_ratio": TARGET_RATIO, "images": n_images, "rounds": rounds}


def target_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{row['model']}: upload→searchable / bare loop",
            "target": f">= {result['target_ratio']}",
            "value": row["ratio"],
            "passed": row["passed"],
        }
        for row in result["rows"]
    ]


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for row in result["rows"]:
        sec = f"cpu speed: {row['model']}"
        stack = row["stack"]
        rows += [
            (sec, "tuned setting", row["tuning"]["config"]),
            (sec, "bare model img/s (tower + head)", f"{row['bare_model_images_per_s']} (load {row['load_avg']})"),
            (sec, "bare loop with decode img/s", str(row["bare_loop_with_decode_images_per_s"])),
            (sec, "upload→searchable img/s", f"{stack['alone']['images_per_s']} (load {stack['alone']['load_avg']})"),
            (sec, "ratio vs bare loop / vs tower alone", f"{row['ratio']} / {row['ratio_vs_tower_alone']}"),
            (
                sec,
                "with a 2nd busy process: this / other img/s",
                f"{stack['busy']['images_per_s']} / {stack['busy']['other_process_images_per_s']}",
            ),
            (sec, "text query p50 / p99 ms", f"{row['text_query']['p50_ms']} / {row['text_query']['p99_ms']}"),
        ]
        streams = row.get("lane_streams")
        if streams:  # bench.lane_streams_bench: the best round of each side, quiet and beside a busy thread
            for phase in ("quiet", "busy"):
                one = max(r["one_pass"] for r in streams[phase])
                two = max(r["streams"] for r in streams[phase])
                rows.append((sec, f"tower, 2-thread pass / 2 streams, {phase} img/s", f"{one} / {two}"))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--busy":
        _busy(sys.argv[2], sys.argv[3:])
    else:
        models = tuple(sys.argv[1:]) or MODELS
        print(json.dumps(run(models=models), indent=1))
