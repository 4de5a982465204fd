"""Benchmark: the default clustering (Leiden, two levels) + the map, at 100k (target <= 120 s) and at 1M.

    python -m bench.default_clustering_bench 100000 1000000      # JSON on stdout
    python -m bench.run --only analysis                          # part of the analysis bench (1M unless --quick)

Data: the analysis bench's synthetic embeddings (50 gaussian blobs sharing a direction, as CLIP-style vectors
do, plus 5 % uniform noise on the sphere, 512-d), generated in chunks straight into float32 so that 1M points
cost their 2 GB and no float64 copy. Steps timed with peak RSS (``analysis_bench.measure``):
``cluster(..., "leiden")`` (k-NN graph, Leiden groups, Leiden leaves inside each) and ``project(..., "tsne")``.

How 1M points fit (documented in ``ordo.analysis.graph_clustering`` and ``large_scale``): above 20k points the
graph is built in a 64-d PCA projection; above ``GRAPH_MAX`` (200k) on a seeded 200k sample, every other point
joining the leaf most of its 5 nearest sampled points belong to (out-of-sample extension, chunks of 50k so the
distance blocks stay bounded); the map embeds a 10k sample and places the rest at the median of their nearest
sampled points.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bench.analysis_bench import DIM, N_BLOBS, NOISE_SHARE, measure

TARGET_AT = 100_000
TARGET_SECONDS = 120.0
CHUNK = 100_000


def synthetic_float32(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Same distribution as ``analysis_bench.synthetic_vectors``, built chunk by chunk in float32."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=DIM)
    shared /= np.linalg.norm(shared)
    centres = rng.normal(size=(N_BLOBS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres = centres + shared
    centres = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
    n_noise = int(n * NOISE_SHARE)
    labels = np.concatenate([rng.integers(0, N_BLOBS, size=n - n_noise), np.full(n_noise, -1)])
    out = np.empty((n, DIM), dtype=np.float32)
    sigma = np.float32(0.45 / np.sqrt(DIM))
    for start in range(0, n, CHUNK):
        part = labels[start : start + CHUNK]
        block = rng.standard_normal(size=(part.size, DIM), dtype=np.float32)
        clustered = part >= 0
        block[clustered] = centres[part[clustered]] + sigma * block[clustered]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + part.size] = block
    return out, labels


def run(sizes: tuple[int, ...] = (100_000, 1_000_000), seed: int = 0) -> dict[str, Any]:
    from ordo.analysis.clustering import cluster
    from ordo.analysis.metrics import evaluate
    from ordo.analysis.projection import project

    results: dict[str, Any] = {"load_average": list(os.getloadavg()), "sizes": {}}
    for n in sizes:
        vectors, truth = synthetic_float32(n, seed)
        result, leiden = measure(lambda v=vectors: cluster(v, "leiden", seed=seed))
        groups = result.leaf_groups[np.maximum(result.labels, 0)]
        groups[result.labels < 0] = -1
        leiden.update(
            leaves=result.n_clusters,
            groups=int(result.leaf_groups.max()) + 1,
            group_stability=round(float(result.group_stability or 0), 3),
            leaves_quality={k: round(v, 4) for k, v in evaluate(result.labels, truth).items() if v is not None},
            groups_quality={k: round(v, 4) for k, v in evaluate(groups, truth).items() if v is not None},
        )
        _, tsne = measure(lambda v=vectors: project(v, "tsne", seed=seed))
        total = leiden["seconds"] + tsne["seconds"]
        results["sizes"][str(n)] = {
            "leiden": leiden,
            "tsne": tsne,
            "cluster_plus_map_s": round(total, 1),
            "load_average_after": list(os.getloadavg()),
        }
        del vectors, truth, result
    at = results["sizes"].get(str(TARGET_AT))
    if at:
        results["target"] = {
            "target": TARGET_SECONDS,
            "value": at["cluster_plus_map_s"],
            "passed": at["cluster_plus_map_s"] <= TARGET_SECONDS,
        }
    return results


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for n, row in results.get("sizes", {}).items():
        sec = f"default clustering @{int(n):,} x {DIM}-d"
        lei = row["leiden"]
        q = lei["groups_quality"]
        rows.append(
            (
                sec,
                "Leiden groups + leaves",
                f"{lei['seconds']:.1f} s, peak RSS {lei['peak_rss_mb']:.0f} MB (+{lei['rss_rise_mb']:.0f}); "
                f"{lei['groups']} groups / {lei['leaves']} leaves; "
                f"groups NMI {q.get('nmi', 0):.3f} ARI {q.get('ari', 0):.3f}",
            )
        )
        rows.append((sec, "t-SNE map", f"{row['tsne']['seconds']:.1f} s, peak RSS {row['tsne']['peak_rss_mb']:.0f} MB"))
        rows.append(
            (sec, "cluster + map", f"{row['cluster_plus_map_s']:.1f} s (load avg {row['load_average_after'][0]:.1f})")
        )
    return rows


if __name__ == "__main__":
    import json
    import sys

    chosen = tuple(int(arg) for arg in sys.argv[1:]) or (100_000,)
    print(json.dumps(run(chosen), indent=2))
