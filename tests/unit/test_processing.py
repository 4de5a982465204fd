"""The image processor's models and stage on real photos: SSD MobileNet v2 (OpenCV DNN) on a COCO photo,
PP-OCR (rapidocr) on a SROIE receipt, upright and upside down, and the stage writing object and text
samples into a real Qdrant Edge index with a real (tiny) CLIP. Plus the bad inputs: blank images, huge
images, tiny crops, missing and corrupt model files."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.core.catalog import AssetCatalog
from ordo.core.embedding_pipeline import StageClock
from ordo.core.ranking import keyword_ranking, query_words, reciprocal_rank_fusion, roll_up
from ordo.domain import Asset, Filter, ProcessingOptions, SampleKind, SampleRef, ScoredPoint
from ordo.errors import ModelUnavailable
from ordo.ids import asset_id_for
from ordo.imaging import ImageLimits, probe
from ordo.processing.ocr import MODEL_FILES, RapidTextReader, rapidocr_model_dir
from ordo.processing.ssd_detector import SsdMobileNetDetector, locate_ssd_files
from ordo.processing.stage import ImageProcessor, ProcessorConfig
from tests.fixtures.datasets import DATASETS

BEAR = DATASETS / "coco-captions-mini" / "images" / "000000000285.jpg"  # COCO labels: bear
RECEIPT = DATASETS / "sroie-receipts" / "images" / "000.jpg"  # header: "TAN WOON YANN", "JOHOR BAHRU"


@pytest.fixture(scope="module")
def detector() -> SsdMobileNetDetector:
    d = SsdMobileNetDetector(0.5)
    d.load()
    return d


@pytest.fixture(scope="module")
def reader() -> RapidTextReader:
    r = RapidTextReader(0.5)
    r.load()
    return r


def _receipt_header() -> Image.Image:
    """The receipt's top part (shop name and address): real text, a fraction of the OCR time."""
    image = Image.open(RECEIPT).convert("RGB")
    return image.crop((0, 0, image.width, 250))


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


# --- models ---------------------------------------------------------------------------------------


def test_ssd_finds_the_bear_and_nothing_in_a_blank_image(detector: SsdMobileNetDetector) -> None:
    image = np.asarray(Image.open(BEAR).convert("RGB"))
    found = detector.detect(image)
    assert found and found[0].label == "bear" and found[0].score > 0.8
    box = found[0].bbox
    assert box.x >= 0 and box.x + box.width <= image.shape[1] + 1 and box.height > 100
    assert detector.detect(np.full((300, 400, 3), 255, np.uint8)) == []


def test_ocr_reads_a_receipt_upright_and_upside_down(reader: RapidTextReader) -> None:
    header = _receipt_header()
    upright = [line.text.upper() for line in reader.read(np.asarray(header))]
    assert "TAN WOON YANN" in upright
    assert any("JOHOR BAHRU" in t for t in upright)
    # The direction classifier turns 180°-rotated lines back before recognition.
    flipped = reader.read(np.asarray(header.rotate(180)))
    assert "TAN WOON YANN" in [line.text.upper() for line in flipped]
    # Lines turned 90° come back as tall boxes, which the reader turns upright before classifying.
    sideways = reader.read(np.asarray(header.rotate(90, expand=True)))
    assert "TAN WOON YANN" in [line.text.upper() for line in sideways]
    polygon = flipped[0].polygon
    assert len(polygon) == 4 and all(0 <= x <= header.width + 1 for x, _ in polygon)
    assert reader.read(np.full((200, 300, 3), 255, np.uint8)) == []


def test_missing_or_corrupt_detector_files_fail_clearly(tmp_path: Path) -> None:
    graph, config = locate_ssd_files()
    with pytest.raises(ModelUnavailable, match="missing or empty"):
        SsdMobileNetDetector(graph=tmp_path / "nope.pb", config=config).load()
    corrupt = tmp_path / "frozen_inference_graph.pb"
    corrupt.write_bytes(graph.read_bytes()[:50_000])  # a truncated download
    with pytest.raises(ModelUnavailable, match="corrupt") as err:
        SsdMobileNetDetector(graph=corrupt, config=config).load()
    assert err.value.reason == "DETECTOR_UNAVAILABLE"


def test_missing_or_corrupt_ocr_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="missing or empty"):
        RapidTextReader(model_dir=tmp_path).load()
    for name in MODEL_FILES.values():
        shutil.copy(rapidocr_model_dir() / name, tmp_path / name)
    (tmp_path / MODEL_FILES["Rec"]).write_bytes(b"not an onnx model")
    with pytest.raises(ModelUnavailable, match="cannot be loaded") as err:
        RapidTextReader(model_dir=tmp_path).load()
    assert err.value.reason == "OCR_UNAVAILABLE"


# --- the stage ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_embedder(tiny_clip_dir: Path):
    from ordo.embedding.hf_dual_encoder import HFDualEncoder

    model = HFDualEncoder(str(tiny_clip_dir), device="cpu", batch_size=8)
    model.load()
    return model


def _stored(store: LocalDirectoryStore, data: bytes, name: str) -> tuple[SampleRef, Asset]:
    from datetime import UTC, datetime

    info = probe(data, ImageLimits())
    asset_id = asset_id_for(data)
    key = AssetCatalog(store).put_original(asset_id, data, info.mime_type)
    asset = Asset(asset_id, f"file:///{name}", name, info.mime_type, len(data), info.width, info.height,
                  datetime.now(UTC), key)  # fmt: skip
    return SampleRef(asset_id, key, SampleKind.IMAGE, None, asset.source_uri, name), asset


def _processor(tmp_path: Path, embedder, detector, reader, **config) -> ImageProcessor:
    return ImageProcessor(
        store=LocalDirectoryStore(tmp_path / "objects", fsync=False),
        index=EdgeVectorIndex(tmp_path / "vectors"),
        embedder=embedder,
        limits=ImageLimits(),
        detector=detector,
        reader=reader,
        config=ProcessorConfig(**config),
    )


def test_stage_stores_object_and_text_samples_in_original_pixels(
    tmp_path: Path, tiny_embedder, detector: SsdMobileNetDetector, reader: RapidTextReader
) -> None:
    # max_side 1000: the 3000-px-wide upscaled bear is downscaled for the models; boxes come back in
    # pixels of the original.
    processor = _processor(tmp_path, tiny_embedder, detector, reader, max_side=1000)
    bear = Image.open(BEAR).convert("RGB")
    huge_bear = bear.resize((bear.width * 5, bear.height * 5))
    items = [
        _stored(processor.store, _jpeg(huge_bear), "huge_bear.jpg"),
        _stored(processor.store, _jpeg(_receipt_header()), "receipt.jpg"),
        _stored(processor.store, _jpeg(Image.new("RGB", (320, 240), "white")), "blank.jpg"),
    ]
    # Off by default (deployment config all False) and when the task does not ask: nothing happens.
    assert processor.process(ProcessingOptions(), items, StageClock()) == 0
    clock = StageClock()
    stored = processor.process(ProcessingOptions(detect_objects=True, read_text=True), items, clock)
    index = processor.index
    assert stored == index.count() > 0
    assert {"detect", "ocr", "embed_objects", "embed_text"} <= set(clock.seconds)

    bear_id, receipt_id, blank_id = (asset.asset_id for _, asset in items)
    objects = index.search([1.0] * tiny_embedder.dim, limit=50, filter=Filter(kinds=(SampleKind.OBJECT,)))
    bears = [p for p in objects if p.payload["asset_id"] == bear_id]
    assert bears and bears[0].payload["label"] == "bear" and bears[0].payload["kind"] == "object"
    x, y, w, h = bears[0].payload["bbox"]
    assert w > 500 and x + w <= huge_bear.width + 1 and y + h <= huge_bear.height + 1  # original pixels

    texts = index.search([1.0] * tiny_embedder.dim, limit=100, filter=Filter(kinds=(SampleKind.TEXT,)))
    assert {p.payload["asset_id"] for p in texts} == {receipt_id}  # the blank image yields nothing
    assert "TAN WOON YANN" in {p.payload["text"].upper() for p in texts}
    assert all(0 < p.payload["score"] <= 1 and len(p.payload["polygon"]) == 4 for p in texts)
    # The full-text index answers keyword filters.
    hits = index.search([1.0] * tiny_embedder.dim, limit=10, filter=Filter(text_any="johor"))
    assert hits and all("johor" in p.payload["text"].lower() for p in hits)
    assert blank_id not in {p.payload["asset_id"] for p in objects + texts}


def test_stage_skips_tiny_crops_and_caps_crops_per_image(
    tmp_path: Path, tiny_embedder, detector: SsdMobileNetDetector, reader: RapidTextReader
) -> None:
    processor = _processor(tmp_path, tiny_embedder, detector, reader, detect_objects=True, min_object_side=10_000)
    items = [_stored(processor.store, BEAR.read_bytes(), "bear.jpg")]
    assert processor.process(ProcessingOptions(), items, StageClock()) == 0  # every crop is "tiny"
    processor.config = ProcessorConfig(detect_objects=True, max_objects=1)
    assert processor.process(ProcessingOptions(), items, StageClock()) == 1
    # The request's explicit "no" wins over the deployment's "yes".
    processor.index.delete_by_asset(items[0][1].asset_id)
    assert processor.process(ProcessingOptions(detect_objects=False), items, StageClock()) == 0


# --- ranking --------------------------------------------------------------------------------------


def _point(asset: str, score: float, text: str = "", n: int = 0) -> ScoredPoint:
    return ScoredPoint(f"{asset}-{n}", score, {"asset_id": asset, "text": text})


def test_roll_up_keeps_each_assets_best_sample() -> None:
    points = [_point("a", 0.9, n=1), _point("b", 0.8), _point("a", 0.7, n=2), _point("c", 0.1)]
    assert [p.id for p in roll_up(points)] == ["a-1", "b-0", "c-0"]


def test_keyword_ranking_prefers_all_words_and_one_line() -> None:
    words = query_words("Book Ta .K (Taman Daya) SDN BHD")
    assert words == ["book", "ta", "k", "taman", "daya", "sdn", "bhd"]
    lines = [
        _point("other", 0.9, "PERNIAGAAN ZHENG HUI SDN BHD"),
        _point("target", 0.2, "BOOK TA .K (TAMAN DAYA) SDN BHD", n=1),
        _point("split", 0.5, "BOOK TA .K (TAMAN", n=1),
        _point("split", 0.4, "DAYA) SDN BHD", n=2),
        _point("none", 0.99, "TOTAL 9.00"),
    ]
    ranking = keyword_ranking(words, lines)
    # Both "target" and "split" hold every word; the one reading it as one line comes first.
    assert [m.asset_id for m in ranking] == ["target", "split", "other"]
    assert ranking[0].score == 1.0 and ranking[2].score == pytest.approx(2 / 7)
    assert ranking[1].point.id == "split-1"


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "d"]], k=60)
    assert [item for item, _ in fused] == ["c", "a", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)


def test_a_deployment_whose_detector_cannot_load_fails_at_worker_start(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """What `ordo up` / `ordo worker` call before consuming tasks (and exit 2 on): the enabled models load now."""
    from ordo.app import AppContext
    from ordo.config import Settings

    settings = Settings(data_dir=tmp_path, model=str(tiny_clip_dir), detect_objects=True, detector="torchvision")
    ctx = AppContext(settings)
    try:
        with pytest.raises(ModelUnavailable, match="torchvision detector cannot be loaded") as err:
            ctx.load_image_processor()
        assert err.value.reason == "DETECTOR_UNAVAILABLE"
    finally:
        ctx.close()
    off = AppContext(settings.model_copy(update={"detect_objects": False}))
    try:
        off.load_image_processor()  # the same broken detector, not enabled: nothing loads, nothing fails
    finally:
        off.close()
