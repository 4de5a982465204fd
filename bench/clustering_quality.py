"""Clustering quality table: the default (Leiden groups and leaves) beside k-means (true k), DBSCAN and HDBSCAN.

    python -m bench.clustering_quality                       # cifar10-2k and lfw-top40, ordo-lite; JSON on stdout
    python -m bench.clustering_quality --datasets cifar10-2k coco-captions-mini

What ``ordo eval clustering`` measures through a scratch stack, computed here with the service's own functions
(``clustering.cluster``, ``centroids``, ``naming.name_clusters``, ``metrics.evaluate``) on the
embeddings of every image, so it finishes in minutes on two busy cores (the stack's ingest of 2,000 images did
not). Columns: purity, NMI, ARI, noise share, the largest cluster's share of the images, and naming accuracy (below).

Naming accuracy = the share of clusters whose name or top-3 terms name the cluster's majority class. Two judges:

* ``naming`` (``lexicon.matches``): the label itself (plurals folded), a synonym (same WordNet synset), or a
  *kind of* it — a term whose WordNet hypernyms include the label ("jet" names "airplane", "tabby cat" names
  "cat"); a compound not in the lexicon is judged by its head word ("norfolk terrier" → "terrier" → dog).
* ``strict``: the label or a synonym only (no kinds, no head words).

For ``coco-captions-mini`` (multi-label: the COCO categories in each photo) the majority class of a cluster is
the category present in the most of its photos. ``lfw-top40`` labels are people's names, which no vocabulary
holds, so its naming column is not meaningful and is left out.

Embeddings are cached under ``$TMPDIR/ordo-bench-embeddings`` per dataset and model, the vocabulary's prompt
embeddings under the same folder (``naming``'s own cache).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CACHE = Path(tempfile.gettempdir()) / "ordo-bench-embeddings"
MODEL = "ordo-lite"


def _records(name: str) -> list[dict[str, Any]]:
    folder = DATASETS / name
    index = folder / ("labels.jsonl" if (folder / "labels.jsonl").is_file() else "captions.jsonl")
    return [json.loads(line) for line in index.read_text().splitlines() if line.strip()]


def embeddings(name: str, embedder: Any) -> tuple[np.ndarray, list[list[str]]]:
    """Image vectors and each image's labels (one for labelled folders, COCO's categories for COCO)."""
    from PIL import Image

    records = _records(name)
    labels = [[r["label"]] if "label" in r else list(r.get("objects", [])) for r in records]
    path = CACHE / f"{name}-{MODEL}.npy"
    if path.is_file():
        return np.load(path), labels
    vectors = []
    for start in range(0, len(records), 64):
        images = [Image.open(DATASETS / name / r["file"]).convert("RGB") for r in records[start : start + 64]]
        vectors.append(np.asarray(embedder.embed_images(images), dtype=np.float32))
    matrix = np.vstack(vectors)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return matrix, labels


def _majority(members: np.ndarray, labels: list[list[str]]) -> str | None:
    counts = Counter(label for i in members.tolist() for label in sorted(set(labels[i])))
    return counts.most_common(1)[0][0] if counts else None


def _synonym(term: str, label: str) -> bool:
    from ordo.analysis.lexicon import entries

    t, lab = term.strip().lower(), label.strip().lower()
    entry = entries().get(lab)
    return t == lab or (entry is not None and t in entry.synonyms)


def naming_scores(
    labels_pred: np.ndarray, vectors: np.ndarray, truth: list[list[str]], encode: Any, concept_head: Any = None
) -> dict:
    """Naming accuracy (both judges) of the clusters of ``labels_pred`` (-1 = noise), named as the service does."""
    from ordo.analysis.clustering import centroids
    from ordo.analysis.lexicon import matches
    from ordo.analysis.naming import name_clusters

    ids, centres = centroids(vectors, labels_pred)
    if ids.size == 0:
        return {"naming": None, "strict": None, "names": []}
    members = [vectors[labels_pred == label] for label in ids.tolist()] if concept_head is not None else None
    names = name_clusters(
        centres, encode, model_id=MODEL, cache_dir=CACHE, concept_head=concept_head, concept_members=members
    )
    judged = []
    for label, named in zip(ids.tolist(), names, strict=True):
        majority = _majority(np.flatnonzero(labels_pred == label), truth)
        if majority is None:
            continue
        terms = [named.name, *named.terms[:3]]
        judged.append(
            (named.name, majority, any(matches(t, majority) for t in terms), any(_synonym(t, majority) for t in terms))
        )
    count = max(1, len(judged))
    return {
        "naming": round(sum(j[2] for j in judged) / count, 3),
        "strict": round(sum(j[3] for j in judged) / count, 3),
        "names": [{"name": n, "majority": m, "ok": ok} for n, m, ok, _ in judged],
    }


def _quality(pred: np.ndarray, truth: list[list[str]]) -> dict[str, Any]:
    from ordo.analysis.metrics import evaluate

    single = np.array([t[0] if t else "" for t in truth])
    keep = single != ""
    scores = evaluate(pred[keep], single[keep])
    clustered = pred[pred >= 0]
    largest = int(np.bincount(clustered).max()) if clustered.size else 0
    out = {k: (round(v, 3) if v is not None else None) for k, v in scores.items()}
    out.update(clusters=int(pred.max()) + 1 if clustered.size else 0, largest_share=round(largest / pred.size, 3))
    return out


def run(datasets: list[str], seed: int = 0) -> dict[str, Any]:
    from ordo.analysis.clustering import cluster
    from ordo.embedding.factory import get_embedder

    embedder = get_embedder(MODEL)
    concept_head = getattr(embedder, "concept_head", lambda: None)()
    results: dict[str, Any] = {"model": MODEL, "seed": seed, "load_average": list(os.getloadavg()), "datasets": {}}
    for name in datasets:
        vectors, truth = embeddings(name, embedder)
        k = len({t[0] for t in truth if t})
        rows: dict[str, Any] = {}
        for algorithm in ("leiden", "kmeans", "dbscan", "hdbscan"):
            started = time.perf_counter()
            result = cluster(vectors, algorithm, n_clusters=k if algorithm == "kmeans" else None, seed=seed)
            seconds = round(time.perf_counter() - started, 2)
            variants = {algorithm: result.labels}
            if algorithm == "leiden":
                groups = np.where(result.labels >= 0, result.leaf_groups[np.maximum(result.labels, 0)], -1)
                variants = {"leiden (groups)": groups, "leiden (leaves)": result.labels}
            for row_name, pred in variants.items():
                row = _quality(pred, truth) | {"seconds": seconds}
                if result.eps_used is not None:
                    row["eps_used"] = round(result.eps_used, 4)
                if name != "lfw-top40":
                    row |= naming_scores(pred, vectors, truth, embedder.embed_texts, concept_head)
                rows[row_name] = row
        results["datasets"][name] = {"images": len(truth), "classes": k, "rows": rows}
    results["load_average_after"] = list(os.getloadavg())
    return results


def table(results: dict[str, Any]) -> str:
    lines = []
    for name, data in results["datasets"].items():
        lines.append(f"\n{name} ({data['images']} images, {data['classes']} classes), {results['model']}")
        lines.append(f"{'algorithm':18} {'clusters':>8} {'purity':>7} {'NMI':>6} {'ARI':>6} {'noise':>6} "
                     f"{'largest':>7} {'naming':>7} {'strict':>7}")  # fmt: skip
        for algo, r in data["rows"].items():

            def f(key: str, row: dict = r) -> str:
                value = row.get(key)
                return "-" if value is None else f"{value:.3f}"

            lines.append(
                f"{algo:18} {r['clusters']:>8} {f('purity'):>7} {f('nmi'):>6} {f('ari'):>6} "
                f"{f('noise_fraction'):>6} {f('largest_share'):>7} {f('naming'):>7} {f('strict'):>7}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["cifar10-2k", "lfw-top40"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    report = run(args.datasets, args.seed)
    print(table(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
