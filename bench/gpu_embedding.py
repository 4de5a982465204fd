"""Image-embedding throughput of the worker's compute path, on a GPU when there is one.

Runs anywhere: ``python -m bench.gpu_embedding --images DIR --device cuda`` on a lent GPU machine, or
``--device cpu`` here. The model is ``random-clip:vit-b-32``: real CLIP ViT-B/32 architecture (so real
compute), random weights (no model hub here). Rows, all in one run so ratios are fair:

* ``naive``: what a plain script does — transformers' CLIP, fp32, one image per forward pass. The baseline.
* ``embed_images bN``: Ordo's embedder (``HFDualEncoder``: fp16 on a GPU, batches of N on one inference
  thread) on already-decoded images, preprocessing on the calling thread.
* ``forward only bN``: the model alone on ready tensors, the ceiling the rest is measured against.
* ``end to end bN``: JPEG bytes → Ordo's decoder (DCT draft scaling) and ``prepare_image`` on a thread
  pool → ``embed_prepared``, chunk by chunk as the embedding pipeline does, so decoding and resizing
  overlap the model.

Prints a table and writes JSON (``--json``, default bench/results/gpu_embedding.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ordo.embedding.factory import clip_image_processor, get_embedder, random_clip_config
from ordo.imaging import ImageLimits, decode

MODEL = "random-clip:vit-b-32"
RESULTS = Path(__file__).resolve().parent / "results" / "gpu_embedding.json"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _images(folder: Path, n: int) -> list[bytes]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"no images under {folder}")
    data = [p.read_bytes() for p in files]
    return [data[i % len(data)] for i in range(n)]


def _timed(fn: Any, device: str, items: int) -> float:
    """Images per second of one call after a warm-up call."""
    fn()
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return items / (time.perf_counter() - start)


def run(images_dir: Path, device: str, n: int, batches: list[int], decode_threads: int) -> dict[str, Any]:
    blobs = _images(images_dir, n)
    limits = ImageLimits(max_bytes=64 << 20, max_pixels=100_000_000)
    decoded = [decode(b, limits, max_side=224)[0] for b in blobs]
    rows: list[dict[str, Any]] = []

    # naive baseline: fp32, batch 1, processor per image
    from transformers import CLIPModel

    torch.manual_seed(0)
    naive_model = CLIPModel(random_clip_config("vit-b-32")).to(device).eval()
    processor = clip_image_processor()
    naive_n = min(n, 256 if device.startswith("cuda") else 64)

    def naive() -> None:
        with torch.inference_mode():
            for image in decoded[:naive_n]:
                pixels = processor(images=[image], return_tensors="pt")["pixel_values"].to(device)
                naive_model.get_image_features(pixel_values=pixels)

    naive_rate = _timed(naive, device, naive_n)
    rows.append({"row": "naive (fp32, batch 1)", "images_per_s": naive_rate})

    for batch in batches:
        embedder = get_embedder(MODEL, device=device, batch_size=batch)
        rate = _timed(lambda e=embedder: e.embed_images(decoded), device, n)
        rows.append({"row": f"embed_images b{batch}", "images_per_s": rate, "dtype": str(embedder.dtype)})

        model = embedder._model  # the loaded module, for the ceiling row
        pixels = processor(images=decoded[:batch], return_tensors="pt")["pixel_values"].to(device, embedder.dtype)
        steps = max(n // batch, 1)

        def forward(model: Any = model, pixels: torch.Tensor = pixels, steps: int = steps) -> None:
            with torch.inference_mode():
                for _ in range(steps):
                    model.get_image_features(pixel_values=pixels)

        rows.append({"row": f"forward only b{batch}", "images_per_s": _timed(forward, device, steps * batch)})

        def end_to_end(embedder: Any = embedder, batch: int = batch) -> None:
            def load(blob: bytes) -> Any:  # what the embedding pipeline's decoder threads do
                return embedder.prepare_image(decode(blob, limits, max_side=224)[0])

            with ThreadPoolExecutor(decode_threads) as pool:
                futures = [pool.submit(load, b) for b in blobs]
                for first in range(0, n, batch):
                    embedder.embed_prepared([f.result() for f in futures[first : first + batch]])

        rows.append({"row": f"end to end b{batch}", "images_per_s": _timed(end_to_end, device, n)})

    for row in rows:
        row["x_naive"] = row["images_per_s"] / naive_rate
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else ""
    return {
        "benchmark": "gpu_embedding",
        "model": MODEL,
        "device": device,
        "gpu": gpu,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "images": n,
        "decode_threads": decode_threads,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="Folder of JPEG/PNG photos.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("-n", type=int, default=512, help="Images per timed pass.")
    parser.add_argument("--batch", type=int, action="append", help="Batch sizes (repeatable).")
    parser.add_argument("--decode-threads", type=int, default=min(os.cpu_count() or 2, 16))
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args.images, args.device, args.n, args.batch or [32, 128], args.decode_threads)
    print(f"{result['model']} on {result['gpu'] or result['device']} ({result['cpu_count']} CPUs), {args.n} images")
    print(f"{'row':<26}{'images/s':>12}{'x naive':>10}")
    for row in result["rows"]:
        print(f"{row['row']:<26}{row['images_per_s']:>12.1f}{row['x_naive']:>10.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(result, indent=1, default=lambda o: float(o) if isinstance(o, np.floating) else str(o))
    )


if __name__ == "__main__":
    main()
