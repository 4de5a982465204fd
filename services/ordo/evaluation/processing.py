"""The image processor measured on a live stack: OCR on receipts, text search by shop name, detection.

Everything is read back through the public RPCs: GetAsset returns each image's samples (the OCR lines
with their text, the object crops with their labels), SearchText ranks with the service's own modes.

* **OCR** (``ocr.jsonl``: ``file``, ``lines[{box, text}]``, ``fields.company``). Texts are compared
  case-insensitively with runs of whitespace collapsed. *Line recall*: share of ground-truth lines that
  some recognised line matches with a character error rate ≤ 0.2 (and, stricter, exactly). *CER*: for
  each ground-truth line the edit distance to its closest recognised line, summed over all lines and
  divided by their total length (order-free: line segmentation and reading order vary between OCR
  systems and are not what is measured).
* **Search by company name**: each receipt's ``fields.company`` as a query; the receipt must come first.
  Several receipts share a company (the same shop, identical header), and no query can tell those apart,
  so the report gives the strict rate and the rate where any receipt of the same company at rank 1 counts.
* **Detection** (``captions.jsonl``'s ``objects``: COCO categories per image): image-level category recall
  and precision of the labels of the stored ``object`` samples, at the served threshold and above it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rapidfuzz.distance import Levenshtein

from ordo.errors import InvalidInput, Reason
from ordo.ids import asset_id_for

MATCH_CER = 0.2  # a ground-truth line counts as read when its closest recognised line is this close
SEARCH_MODES = ("hybrid", "semantic", "keyword")


@dataclass(frozen=True)
class Receipt:
    path: Path
    asset_id: str
    lines: tuple[str, ...]
    company: str


@dataclass(frozen=True)
class DetectionImage:
    path: Path
    asset_id: str
    objects: frozenset[str]


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist: the dataset folder needs it", reason=Reason.DATASET_INDEX_MISSING)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_receipts(folder: Path, limit: int | None = None) -> list[Receipt]:
    out = []
    for record in _records(folder / "ocr.jsonl")[:limit]:
        path = folder / record["file"]
        lines = tuple(line["text"] for line in record.get("lines", []) if line.get("text", "").strip())
        company = str(record.get("fields", {}).get("company", "")).strip()
        out.append(Receipt(path, asset_id_for(path.read_bytes()), lines, company))
    return out


def read_detection_images(folder: Path, limit: int | None = None) -> list[DetectionImage]:
    """Images whose record lists their COCO categories (records without ``objects`` are left out)."""
    out = []
    for record in _records(folder / "captions.jsonl"):
        if not record.get("objects"):
            continue
        path = folder / record["file"]
        out.append(DetectionImage(path, asset_id_for(path.read_bytes()), frozenset(record["objects"])))
        if limit and len(out) >= limit:
            break
    return out


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().upper()


def ocr_scores(truth: Sequence[str], read: Sequence[str]) -> dict[str, float]:
    """Character errors and line matches of one image (see the module notes)."""
    truth = [normalise(t) for t in truth if normalise(t)]
    read = [normalise(r) for r in read if normalise(r)]
    errors = exact = close = 0
    for line in truth:
        best = min((Levenshtein.distance(line, r) for r in read), default=len(line))
        errors += min(best, len(line))
        exact += best == 0
        close += best <= MATCH_CER * len(line)
    return {"chars": sum(map(len, truth)), "errors": errors, "lines": len(truth), "exact": exact, "close": close}


def _samples(client: Any, asset_id: str) -> list[Any]:
    from ordo.v1 import ingest_pb2

    return list(client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=asset_id)).samples)


def evaluate_ocr(
    client: Any, receipts: Sequence[Receipt], on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    from ordo.v1 import common_pb2, search_pb2

    totals: dict[str, float] = {"chars": 0, "errors": 0, "lines": 0, "exact": 0, "close": 0}
    per_receipt = []
    for receipt in receipts:
        lines = [s.text for s in _samples(client, receipt.asset_id) if s.kind == common_pb2.SAMPLE_KIND_TEXT]
        scores = ocr_scores(receipt.lines, lines)
        for key in totals:
            totals[key] += scores[key]
        per_receipt.append({"file": receipt.path.name, "text_samples": len(lines), **scores})
        if on_step:
            on_step("ocr")
    company_of = {r.asset_id: normalise(r.company) for r in receipts}
    search: dict[str, Any] = {}
    for mode in SEARCH_MODES:
        strict = same_company = 0
        misses = []
        # the generated stubs type enum fields as their enum class; at run time the value is this int
        mode_pb = cast("search_pb2.SearchMode", search_pb2.SearchMode.Value(f"SEARCH_MODE_{mode.upper()}"))
        for receipt in receipts:
            request = search_pb2.SearchTextRequest(query=receipt.company, page_size=5, mode=mode_pb)
            hits = client.search.SearchText(request).hits
            top = hits[0].asset.asset_id if hits else ""
            strict += top == receipt.asset_id
            same_company += company_of.get(top) == normalise(receipt.company)
            if top != receipt.asset_id:
                misses.append({"file": receipt.path.name, "company": receipt.company, "top": top[:12]})
            if on_step:
                on_step(f"search {mode}")
        n = max(len(receipts), 1)
        search[mode] = {
            "rank1_percent": round(100.0 * strict / n, 1),
            "rank1_same_company_percent": round(100.0 * same_company / n, 1),
            "misses": misses,
        }
    return {
        "receipts": len(receipts),
        "cer_percent": round(100.0 * totals["errors"] / max(totals["chars"], 1), 2),
        "line_recall_percent": round(100.0 * totals["close"] / max(totals["lines"], 1), 2),
        "line_recall_exact_percent": round(100.0 * totals["exact"] / max(totals["lines"], 1), 2),
        "ground_truth_lines": totals["lines"],
        "company_search": search,
        "per_receipt": per_receipt,
    }


def detection_scores(images: Sequence[tuple[frozenset[str], list[tuple[str, float]]]], threshold: float) -> dict:
    """Image-level category recall and precision: an image's predicted categories are the labels of its
    object samples scoring at least ``threshold``."""
    true_pos = predicted = actual = 0
    for truth, found in images:
        labels = {label for label, score in found if score >= threshold}
        true_pos += len(labels & truth)
        predicted += len(labels)
        actual += len(truth)
    return {
        "threshold": threshold,
        "recall_percent": round(100.0 * true_pos / max(actual, 1), 2),
        "precision_percent": round(100.0 * true_pos / max(predicted, 1), 2),
        "predicted_categories": predicted,
        "true_categories": actual,
    }


def evaluate_detection(
    client: Any,
    images: Sequence[DetectionImage],
    served_threshold: float,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    from ordo.v1 import common_pb2

    pairs = []
    crops = 0
    for image in images:
        objects = [
            (s.label, s.score) for s in _samples(client, image.asset_id) if s.kind == common_pb2.SAMPLE_KIND_OBJECT
        ]
        crops += len(objects)
        pairs.append((image.objects, objects))
        if on_step:
            on_step("detection")
    thresholds = sorted({served_threshold, *(t for t in (0.3, 0.4, 0.5, 0.6, 0.7) if t >= served_threshold)})
    return {
        "images": len(images),
        "object_samples": crops,
        "at_served_threshold": detection_scores(pairs, served_threshold),
        "by_threshold": [detection_scores(pairs, t) for t in thresholds],
    }
