"""Benchmark: the analysis core (clustering + 2-D map) against a naive scikit-learn pipeline, same run, same data.

    python -m bench.run --only analysis                      # 10k and 100k (the target is defined at 100k)
    python -m bench.run --only analysis --sizes 10000        # quicker
    python -m bench.analysis_bench 10000                     # this module alone, JSON on stdout

* **Data**: synthetic 512-d unit vectors — 50 seeded gaussian blobs whose centres share a common direction (as
  CLIP embeddings do), plus 5% uniform noise on the sphere — with ground truth, so quality (purity, NMI, ARI,
  noise) is reported beside time and a speed-up cannot hide a worse answer.
* **Ordo**: ``cluster(..., "dbscan")`` with automatic eps (eps choice included), ``cluster(..., "hdbscan")`` and
  ``project(..., "tsne")``: exact up to ``large_scale.LARGE_N`` points, sample + assignment above (see
  ``ordo.analysis.large_scale``).
* **Naive baseline**: what one writes with scikit-learn alone: ``DBSCAN(metric="cosine")`` with the *same* eps
  (brute-force cosine, no fast path) and ``TSNE(init="pca", metric="cosine")``, library defaults otherwise.
  It is run at most at ``NAIVE_MAX`` points; larger sizes are **extrapolated** from the largest measured size
  (DBSCAN brute force O(n²), Barnes-Hut t-SNE O(n log n)) and marked so in the table and JSON.
* **Memory**: peak resident set size of the process during each step, sampled every 20 ms from
  ``/proc/self/statm`` (tracemalloc would miss the C/C++ allocations of scikit-learn and openTSNE), reported as
  the rise over the RSS before the step (the data itself is already resident).

The machine is shared and 2-core, so timings are noisy: ratios within one run are what to compare.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ordo.analysis import large_scale
from ordo.analysis.clustering import cluster
from ordo.analysis.metrics import evaluate
from ordo.analysis.projection import has_opentsne, project

DIM = 512
N_BLOBS = 50
NOISE_SHARE = 0.05
NAIVE_MAX = 10_000
TARGET_AT = 100_000
TARGET_SECONDS = 120.0
TARGET_SPEEDUP = 10.0


def synthetic_vectors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors in 512-d and their true labels (-1 for the uniform noise)."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=DIM)
    shared /= np.linalg.norm(shared)
    centres = rng.normal(size=(N_BLOBS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres = centres + shared
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    n_noise = int(n * NOISE_SHARE)
    labels = rng.integers(0, N_BLOBS, size=n - n_noise)
    # sigma per dimension so that a member sits ~0.1 (cosine) from its centre, whatever DIM is.
    points = centres[labels] + (0.45 / np.sqrt(DIM)) * rng.normal(size=(n - n_noise, DIM))
    vectors = np.vstack([points, rng.normal(size=(n_noise, DIM))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, np.concatenate([labels, np.full(n_noise, -1)])


# ------------------------------------------------------------------------------------------ measuring
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn``; return its value and ``{"seconds", "peak_rss_mb", "rss_rise_mb"}`` for the call."""
    before = _rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        value = fn()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _rss_bytes())
    mb = 1024 * 1024
    return value, {
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak[0] / mb, 1),
        "rss_rise_mb": round((peak[0] - before) / mb, 1),
    }


def _quality(labels: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    return {k: (round(v, 4) if v is not None else None) for k, v in evaluate(labels, truth).items()}


def _log(message: str) -> None:
    try:
        from bench.common import log

        log(message)
    except ImportError:  # run as a plain script
        print(message, flush=True)


# ------------------------------------------------------------------------------------------ the run
def _naive(vectors: np.ndarray, truth: np.ndarray, eps: float, ordo_labels: np.ndarray, seed: int) -> dict[str, Any]:
    from sklearn.cluster import DBSCAN
    from sklearn.manifold import TSNE
    from sklearn.metrics import adjusted_rand_score

    labels, dbscan = measure(lambda: DBSCAN(eps=eps, min_samples=5, metric="cosine").fit_predict(vectors))
    dbscan.update(_quality(np.asarray(labels), truth))
    dbscan["ari_vs_ordo"] = round(float(adjusted_rand_score(ordo_labels, labels)), 4)
    _log(f"analysis: naive DBSCAN(cosine) at {len(vectors):,}: {dbscan['seconds']:.1f} s")
    _, tsne = measure(
        lambda: TSNE(n_components=2, init="pca", metric="cosine", random_state=seed).fit_transform(vectors)
    )
    _log(f"analysis: naive sklearn TSNE at {len(vectors):,}: {tsne['seconds']:.1f} s")
    return {"n": len(vectors), "extrapolated": False, "dbscan": dbscan, "tsne": tsne}


def _extrapolate(measured: dict[str, Any], n: int) -> dict[str, Any]:
    m = measured["n"]
    quadratic = (n / m) ** 2
    n_log_n = (n * math.log(n)) / (m * math.log(m))
    return {
        "n": n,
        "extrapolated": True,
        "from_n": m,
        "method": f"measured at {m:,}; DBSCAN brute force x (n/m)^2 = {quadratic:.0f}, "
        f"Barnes-Hut t-SNE x n log n ratio = {n_log_n:.1f}",
        "dbscan": {"seconds": round(measured["dbscan"]["seconds"] * quadratic, 1)},
        "tsne": {"seconds": round(measured["tsne"]["seconds"] * n_log_n, 1)},
    }


def run(sizes: Sequence[int] = (10_000, 100_000), *, baseline: bool = True, seed: int = 0) -> dict[str, Any]:
    """Time Ordo's clustering and projection at each size against the naive pipeline; a JSON-able dict."""
    results: dict[str, Any] = {
        "config": {
            "dim": DIM,
            "blobs": N_BLOBS,
            "noise_share": NOISE_SHARE,
            "min_samples": 5,
            "min_cluster_size": 10,
            "large_n": large_scale.LARGE_N,
            "sample_size": large_scale.SAMPLE_SIZE,
            "naive_max": NAIVE_MAX,
            "opentsne": has_opentsne(),
            "cpus": os.cpu_count(),
        },
        "sizes": {},
    }
    naive_measured: dict[str, Any] | None = None
    for n in sorted(sizes):
        vectors, truth = synthetic_vectors(n, seed)
        row: dict[str, Any] = {}
        dbscan, row["ordo_dbscan"] = measure(lambda v=vectors: cluster(v, "dbscan", min_samples=5, seed=seed))
        row["ordo_dbscan"].update({"eps": round(float(dbscan.eps_used), 5), "clusters": dbscan.n_clusters})
        row["ordo_dbscan"].update(_quality(dbscan.labels, truth))
        _log(f"analysis: Ordo DBSCAN at {n:,}: {row['ordo_dbscan']['seconds']:.1f} s")
        hdbscan, row["ordo_hdbscan"] = measure(
            lambda v=vectors: cluster(v, "hdbscan", min_samples=5, min_cluster_size=10, seed=seed)
        )
        row["ordo_hdbscan"].update({"clusters": hdbscan.n_clusters, **_quality(hdbscan.labels, truth)})
        _log(f"analysis: Ordo HDBSCAN at {n:,}: {row['ordo_hdbscan']['seconds']:.1f} s")
        layout, row["ordo_tsne"] = measure(lambda v=vectors: project(v, "tsne", seed=seed))
        row["ordo_tsne"]["finite"] = bool(np.isfinite(layout).all())
        _log(f"analysis: Ordo t-SNE at {n:,}: {row['ordo_tsne']['seconds']:.1f} s")
        row["path"] = "sampled" if n > large_scale.LARGE_N else "exact"
        ordo_seconds = row["ordo_dbscan"]["seconds"] + row["ordo_tsne"]["seconds"]
        row["ordo_cluster_plus_map_s"] = round(ordo_seconds, 2)
        if baseline:
            if n <= NAIVE_MAX:
                naive_measured = _naive(vectors, truth, float(dbscan.eps_used), dbscan.labels, seed)
                row["naive"] = naive_measured
            else:
                if naive_measured is None:  # only large sizes asked for: measure on a subsample
                    rows = np.sort(np.random.default_rng(seed).choice(n, size=NAIVE_MAX, replace=False))
                    naive_measured = _naive(
                        vectors[rows], truth[rows], float(dbscan.eps_used), dbscan.labels[rows], seed
                    )
                row["naive"] = _extrapolate(naive_measured, n)
            naive_seconds = row["naive"]["dbscan"]["seconds"] + row["naive"]["tsne"]["seconds"]
            row["naive_cluster_plus_map_s"] = round(naive_seconds, 2)
            row["speedup"] = round(naive_seconds / ordo_seconds, 2) if ordo_seconds > 0 else None
        results["sizes"][str(n)] = row
        del vectors, truth, layout, dbscan, hdbscan
    results["targets"] = _targets(results)
    return results


def _targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, judged at 100k (or at the largest size run, marked as such)."""
    sizes = results["sizes"]
    if not sizes:
        return {}
    at = max(int(n) for n in sizes)
    row = sizes[str(at)]
    out: dict[str, Any] = {"at_vectors": at, "defined_at": TARGET_AT}
    seconds = row["ordo_cluster_plus_map_s"]
    out["seconds"] = {"target": TARGET_SECONDS, "value": seconds, "passed": seconds <= TARGET_SECONDS}
    if row.get("speedup") is not None:
        out["speedup"] = {"target": TARGET_SPEEDUP, "value": row["speedup"], "passed": row["speedup"] >= TARGET_SPEEDUP}
    return out


def target_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries for ``bench.run``'s targets table."""
    t = results.get("targets") or {}
    if not t:
        return []
    where = f"@{t['at_vectors']:,}" + ("" if t["at_vectors"] == t["defined_at"] else " (defined at 100k)")
    out = [
        {
            "name": f"analysis DBSCAN + t-SNE {where}",
            "target": f"<= {t['seconds']['target']:.0f} s",
            "value": t["seconds"]["value"],
            "passed": t["seconds"]["passed"],
        }
    ]
    if "speedup" in t:
        out.append(
            {
                "name": f"analysis speed-up vs naive sklearn {where}",
                "target": f">= {t['speedup']['target']:.0f}x",
                "value": t["speedup"]["value"],
                "passed": t["speedup"]["passed"],
            }
        )
    return out


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, metric, value) rows for ``bench.run``'s table."""
    rows: list[tuple[str, str, str]] = []

    def fmt(step: dict[str, Any]) -> str:
        text = f"{step['seconds']:.1f} s"
        if "rss_rise_mb" in step:
            text += f", peak RSS +{step['rss_rise_mb']:.0f} MB"
        if "ari" in step:
            purity = "-" if step["purity"] is None else f"{step['purity']:.3f}"
            text += (
                f"; purity {purity}, NMI {step['nmi']:.3f}, ARI {step['ari']:.3f}, noise {step['noise_fraction']:.3f}"
            )
        if "clusters" in step:
            text += f", {step['clusters']} clusters"
        return text

    for n, row in results.get("sizes", {}).items():
        sec = f"analysis @{int(n):,} x {results['config']['dim']}-d ({row['path']})"
        rows.append((sec, f"Ordo DBSCAN auto-eps (eps {row['ordo_dbscan']['eps']})", fmt(row["ordo_dbscan"])))
        rows.append((sec, "Ordo HDBSCAN", fmt(row["ordo_hdbscan"])))
        rows.append((sec, "Ordo t-SNE (openTSNE)", fmt(row["ordo_tsne"])))
        naive = row.get("naive")
        if naive:
            label = f" (extrapolated from {naive['from_n']:,})" if naive["extrapolated"] else ""
            rows.append((sec, f"naive DBSCAN(metric=cosine){label}", fmt(naive["dbscan"])))
            rows.append((sec, f"naive sklearn TSNE{label}", fmt(naive["tsne"])))
            if "ari_vs_ordo" in naive["dbscan"]:
                rows.append((sec, "naive vs Ordo DBSCAN labels (ARI)", f"{naive['dbscan']['ari_vs_ordo']:.4f}"))
            rows.append(
                (
                    sec,
                    "cluster + map: Ordo vs naive",
                    f"{row['ordo_cluster_plus_map_s']:.1f} s vs {row['naive_cluster_plus_map_s']:.1f} s "
                    f"= {row['speedup']:.1f}x",
                )
            )
        else:
            rows.append((sec, "cluster + map: Ordo", f"{row['ordo_cluster_plus_map_s']:.1f} s"))
    return rows


if __name__ == "__main__":
    import json
    import sys

    chosen = tuple(int(arg) for arg in sys.argv[1:]) or (10_000,)
    print(json.dumps(run(chosen), indent=2))
