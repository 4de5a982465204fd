"""The image processor end to end: `ordo up` (tiny CLIP), `ordo ingest --text --objects`, `ordo search --mode`,
GetAsset's samples. (A detector that cannot load failing at worker start: tests/unit/test_processing.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ordo.v1 import common_pb2, ingest_pb2
from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.fixtures.datasets import DATASETS

RECEIPT = DATASETS / "sroie-receipts" / "images" / "001.jpg"  # "INDAH GIFT & HOME DECO"
BEAR = DATASETS / "coco-captions-mini" / "images" / "000000000285.jpg"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("ordo-processing"), tiny_clip_dir, {"ORDO_HTTP_PORT": "0"})
    yield s
    stop_stack(s)


def test_ingest_with_text_and_objects_then_search_by_mode(stack: Stack, tmp_path: Path) -> None:
    receipt = Image.open(RECEIPT).convert("RGB")
    receipt.crop((0, 0, receipt.width, 260)).save(tmp_path / "receipt.jpg", quality=92)  # the header: fast OCR
    Image.open(BEAR).save(tmp_path / "bear.jpg")
    done = stack.cli("ingest", str(tmp_path), "--text", "--objects", "--json", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    found = stack.cli("search", "Indah Gift & Home Deco", "--mode", "keyword", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits[0]["asset"]["fileName"] == "receipt.jpg"
    assert hits[0]["sample"]["kind"] == "SAMPLE_KIND_TEXT" and "INDAH" in hits[0]["sample"]["text"].upper()

    crops = stack.cli("search", "a bear", "--kind", "object", "--mode", "semantic", "--json")
    hits = json.loads(crops.stdout)["hits"]
    assert [h["asset"]["fileName"] for h in hits] == ["bear.jpg"] and hits[0]["sample"]["label"] == "bear"
    table = stack.cli("search", "indah gift")  # the default (hybrid) table names the matching sample
    assert "receipt.jpg" in table.stdout and "text: indah" in table.stdout.lower()

    asset = stack.client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=hits[0]["asset"]["assetId"]))
    kinds = [s.kind for s in asset.samples]
    assert kinds[0] == common_pb2.SAMPLE_KIND_IMAGE and common_pb2.SAMPLE_KIND_OBJECT in kinds
