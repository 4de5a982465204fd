"""GPU check of cross-task batching (``ordo.worker.coalescing``), standalone: ``python3 bench/coalescing_gpu.py``
from the repository root on a machine with CUDA torch and transformers (``DEV=cpu``: a tiny smoke version).

Eight concurrent "tasks" each embed 4 images per call through a CLIP ViT-B/32-sized vision tower (random
weights, fp16): (a) one forward pass per call, serialized as on Ordo's inference lane, vs (b) through
``CoalescingEmbedder`` (passes of up to 32 images, 5 ms wait). Both must give the same vectors.

Measured on an NVIDIA H200 (torch 2.11+cu130): direct 570 img/s; coalesced 2,690-3,390 img/s (mean pass
32 images), max abs difference 0.0.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
from ordo.worker.coalescing import CoalescingEmbedder

DEV = os.environ.get("DEV", "cuda")
SMALL = DEV == "cpu"
DTYPE = torch.float32 if SMALL else torch.float16
TASKS, PER_CALL, CALLS = 8, 4, (3 if SMALL else 60)


class Tower:
    """A vision tower behind one lock: one forward pass at a time, like the inference lane."""

    dim = 512

    def __init__(self) -> None:
        cfg = CLIPVisionConfig(
            hidden_size=64 if SMALL else 768,
            intermediate_size=128 if SMALL else 3072,
            num_hidden_layers=2 if SMALL else 12,
            num_attention_heads=2 if SMALL else 12,
            image_size=224,
            patch_size=32,
            projection_dim=512,
        )
        self.model = CLIPVisionModelWithProjection(cfg).eval().to(DEV).to(DTYPE)
        self.lock = threading.Lock()

    def embed_prepared(self, prepared: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(prepared)).to(DEV).to(DTYPE)
        with self.lock, torch.inference_mode():
            out = self.model(pixel_values=x).image_embeds.float()
            return torch.nn.functional.normalize(out, dim=-1).cpu().numpy()


def images_per_second(embedder: object, images: list[np.ndarray]) -> float:
    barrier = threading.Barrier(TASKS)

    def task() -> None:
        barrier.wait()
        for _ in range(CALLS):
            assert embedder.embed_prepared(images).shape == (PER_CALL, 512)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=task) for _ in range(TASKS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not SMALL:
        torch.cuda.synchronize()
    return TASKS * CALLS * PER_CALL / (time.perf_counter() - start)


def main() -> None:
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((3, 224, 224), dtype=np.float32) for _ in range(PER_CALL)]
    tower = Tower()
    images_per_second(tower, images)  # warm-up
    device = "cpu" if SMALL else torch.cuda.get_device_name(0)
    result: dict[str, object] = {"device": device, "torch": torch.__version__}
    for rnd in range(2):
        result[f"direct_img_s_{rnd}"] = round(images_per_second(tower, images), 1)
        coalescing = CoalescingEmbedder(tower, max_images=32, max_wait_s=0.005)
        result[f"coalesced_img_s_{rnd}"] = round(images_per_second(coalescing, images), 1)
        sizes = [n for n, _ in coalescing.passes]
        result[f"coalesced_mean_pass_{rnd}"] = round(sum(sizes) / len(sizes), 1)
    same = CoalescingEmbedder(tower, 32, 0.0).embed_prepared(images)
    result["max_abs_diff"] = float(np.abs(tower.embed_prepared(images) - same).max())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
