"""`ordo eval clustering`: the real pipeline on a small labelled folder (30 CIFAR-10 photos of 3 classes,
ordo-lite), plus the report table and the evaluation's input checks on their own.

The end-to-end test runs the command as a user would: it starts its own scratch `ordo up`, uploads the images
through the ingest service and asks the AnalysisService for DBSCAN, HDBSCAN and k-means runs with the labels.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ordo.cli.eval_clustering import largest_clusters_lines, report_table
from ordo.errors import InvalidInput
from ordo.evaluation.clustering import ALGORITHMS, evaluate_clustering, labels_map
from ordo.evaluation.datasets import LabelledImage
from tests.fixtures.datasets import DATASETS, dataset_records

CLASSES = ("airplane", "frog", "truck")


def _dataset(folder: Path, per_class: int = 10) -> Path:
    """labels.jsonl in a temp folder pointing at the shared CIFAR images by absolute path (never copied)."""
    records = dataset_records("cifar10-2k", "labels.jsonl")
    chosen = [r for label in CLASSES for r in [r for r in records if r["label"] == label][:per_class]]
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({**r, "file": str(DATASETS / "cifar10-2k" / r["file"])}) for r in chosen]
    (folder / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.slow
@pytest.mark.timeout(900)  # the naming vocabulary (5,160 terms x 2 prompts) is encoded once per scratch stack
def test_eval_clustering_through_the_real_stack(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "cifar30")
    report_path = tmp_path / "clustering.json"
    result = subprocess.run(
        [sys.executable, "-m", "ordo.cli.main", "eval", "clustering", "--dataset", str(dataset),
         "--model", "ordo-lite", "--json-out", str(report_path)],
        capture_output=True, text=True, timeout=840,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for header in ("purity", "NMI", "ARI", "noise", "clusters", "largest clusters"):
        assert header in result.stdout
    report = json.loads(report_path.read_text())
    assert report["model_id"].startswith("ordo-lite")
    assert (report["images"], report["classes"], report["k"]) == (30, 3, 3)
    assert report["ingest"]["ingest_failures"] == 0
    rows = {row["algorithm"]: row for row in report["rows"]}
    assert list(rows) == ["leiden (groups)", "leiden (leaves)", "kmeans", "dbscan", "hdbscan"]
    assert set(ALGORITHMS) == {"leiden", "kmeans", "dbscan", "hdbscan"}
    for row in rows.values():
        assert row["samples"] == 30 and row["labelled"] == 30
        assert 0.0 < row["largest_share"] <= 1.0
        assert row["naming_accuracy"] is None or 0.0 <= row["naming_accuracy"] <= 1.0
        assert 0.0 <= row["noise_fraction"] <= 1.0 and row["noise"] == round(row["noise_fraction"] * 30)
        for metric in ("nmi", "ari"):
            assert row[metric] is not None and -1.0 <= row[metric] <= 1.0
        assert row["purity"] is None or 0.333 <= row["purity"] <= 1.0  # majority share of 3 classes (4 places)
        assert row["seconds"] >= 0 and row["run_id"]
        assert sum(c["size"] for c in row["largest_clusters"]) + row["noise"] <= 30
    assert rows["dbscan"]["eps_used"] and 0 < rows["dbscan"]["eps_used"] <= 2
    # k-means gets the k it was asked for, labels every point, and ordo-lite separates these classes well
    # above chance (a random split has ARI ~0, purity ~1/3).
    kmeans = rows["kmeans"]
    assert kmeans["clusters"] == 3 and kmeans["noise"] == 0
    assert kmeans["ari"] > 0.3 and kmeans["purity"] > 0.6
    assert all(c["name"] for c in kmeans["largest_clusters"])  # named by the text tower


def test_report_table_has_one_row_per_algorithm() -> None:
    row = {
        "algorithm": "dbscan", "purity": 0.9, "nmi": 0.5, "ari": None, "noise_fraction": 0.1, "clusters": 4,
        "seconds": 1.25, "eps_used": 0.2, "largest_clusters": [{"name": "dog", "size": 5, "top_terms": []}],
    }  # fmt: skip
    report = {"model_id": "m", "dataset": "/x/cifar", "images": 30, "classes": 3, "k": 3, "rows": [row]}
    table = report_table(report)
    headers = [c.header for c in table.columns]
    assert headers[:9] == ["algorithm", "purity", "NMI", "ARI", "noise", "largest", "naming", "clusters", "seconds"]
    assert table.row_count == 1
    cells = [next(iter(c.cells)) for c in table.columns]
    assert cells[0] == "dbscan (eps 0.200)" and cells[3] == "–" and cells[-1] == "1.2"
    assert largest_clusters_lines(report) == ["dbscan: dog (5)"]


def test_bad_input_is_refused_before_any_rpc() -> None:
    with pytest.raises(InvalidInput, match="no labelled images"):
        evaluate_clustering(object(), [])
    images = [LabelledImage(Path("a.jpg"), "a" * 64, "cat"), LabelledImage(Path("b.jpg"), "b" * 64, "dog")]
    with pytest.raises(InvalidInput, match="unknown algorithm"):
        evaluate_clustering(object(), images, algorithms=("dbscan", "spectral"))
    assert labels_map(images) == {"a" * 64: "cat", "b" * 64: "dog"}
