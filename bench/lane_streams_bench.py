"""One 2-thread pass against two 1-thread streams of an image tower, quiet and beside a busy thread.

Why it exists: ``ordo.embedding.inference_lane`` runs ONNX Runtime image passes side by side (streams) because a
pass on two intra-op threads waits at every operator's barrier for a thread that a decoder or an upload took
the core from. This measures that claim in one process, alternating the two settings round by round (the
baseline is the one-pass setting of the same run): the model's tower alone, then with a thread decoding
JPEGs for ``--busy`` of one core beside it (what the stack's decoder and upload threads do).

    python -m bench.lane_streams_bench --model ordo-lite --busy 0.3
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from typing import Any

import numpy as np

from ordo.embedding.tower_runtime import TowerFn


def _burn(share: float, stop: threading.Event) -> None:
    """Decode a JPEG for ``share`` of every 10 ms (Pillow releases the GIL, like the stack's decoders)."""
    from PIL import Image

    pixels = (np.random.default_rng(1).random((480, 640, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    data = buffer.getvalue()
    while not stop.is_set():
        started = time.perf_counter()
        while time.perf_counter() - started < share * 0.01:
            Image.open(io.BytesIO(data)).convert("RGB").resize((64, 64))
        time.sleep(max(0.0, (1 - share) * 0.01))


def _rate(fn: TowerFn, pixels: np.ndarray, passes: int, streams: int) -> float:
    """Images a second of ``passes`` calls split over ``streams`` threads."""
    per = max(1, passes // streams)

    def run() -> None:
        for _ in range(per):
            fn(pixels)

    threads = [threading.Thread(target=run) for _ in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per * streams * len(pixels) / (time.perf_counter() - started)


def run(model: str, *, busy: float = 0.3, rounds: int = 3, images: int = 64) -> dict[str, Any]:
    from bench.cpu_speed_bench import _embedder  # here: cpu_speed_bench runs this one too

    embedder = _embedder(model)
    embedder.load()
    return measure(embedder, model, busy=busy, rounds=rounds, images=images)


def measure(embedder: Any, model: str, *, busy: float = 0.3, rounds: int = 3, images: int = 64) -> dict[str, Any]:
    """The comparison on a loaded embedder with an ONNX-exportable tower (``embedder.tower`` set)."""
    from ordo.embedding.autotune import TowerConfig

    runtimes = embedder.tower.runtimes  # the model's own export, agreement checked against float32 torch
    batch = embedder.tower.config.batch_size
    one_pass = runtimes.build(TowerConfig(batch_size=batch, threads=2, runtime="onnxruntime"))
    stream = runtimes.build(TowerConfig(batch_size=batch, threads=1, streams=2, runtime="onnxruntime"))
    side = embedder.input_size
    pixels = np.random.default_rng(0).standard_normal((batch, 3, side, side)).astype(np.float32)
    passes = max(2, images // batch)
    _rate(one_pass, pixels, 2, 1)  # warm both (arenas, kernels)
    _rate(stream, pixels, 2, 2)
    result: dict[str, Any] = {"model": model, "batch": batch, "busy_share": busy, "quiet": [], "busy": []}
    for phase in ("quiet", "busy"):
        stop = threading.Event()
        if phase == "busy":
            threading.Thread(target=_burn, args=(busy, stop), daemon=True).start()
        for _ in range(rounds):
            a, b = _rate(one_pass, pixels, passes, 1), _rate(stream, pixels, passes, 2)
            result[phase].append({"one_pass": round(a, 2), "streams": round(b, 2), "ratio": round(b / a, 3)})
        stop.set()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="ordo-lite")
    parser.add_argument("--busy", type=float, default=0.3, help="share of one core the busy thread takes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = run(args.model, busy=args.busy, rounds=args.rounds)
    for phase in ("quiet", "busy"):
        for row in out[phase]:
            print(
                f"{out['model']:24s} {phase:5s} one 2-thread pass {row['one_pass']:7.2f} img/s   "
                f"two 1-thread streams {row['streams']:7.2f} img/s   x{row['ratio']:.2f}"
            )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
