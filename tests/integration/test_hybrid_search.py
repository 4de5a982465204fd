"""Object crops and OCR text through the real pipeline, then search over them: ingestion with processing
asked per request → the Celery filesystem queue → the embedding pipeline with the image processor (real
SSD and PP-OCR models, a tiny random CLIP) → Qdrant Edge → SearchCore.

The tiny CLIP's vectors are meaningless, so semantic ranking is only checked for its shape (roll-up,
paging); what the keyword half and the fusion promise is checked on real OCR output of real receipts.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from ordo.adapters.celery_queue import CeleryTaskQueue, decode_task
from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.adapters.qdrant_index import QdrantServerIndex
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.config import Settings
from ordo.core.catalog import AssetCatalog
from ordo.core.embedding_pipeline import EmbeddingPipeline
from ordo.core.ingestion import IngestCore
from ordo.core.search import SearchCore
from ordo.domain import Filter, JobState, ProcessingOptions, SampleKind, SearchMode
from ordo.errors import InvalidInput
from ordo.imaging import ImageLimits
from ordo.processing.ocr import RapidTextReader
from ordo.processing.ssd_detector import SsdMobileNetDetector
from ordo.processing.stage import ImageProcessor, ProcessorConfig
from ordo.worker.celery_app import EMBED_QUEUE, create_celery_app
from tests.fixtures.datasets import DATASETS

RECEIPTS = DATASETS / "sroie-receipts" / "images"
BEAR = DATASETS / "coco-captions-mini" / "images" / "000000000285.jpg"


def _header(path: Path) -> bytes:
    """A receipt's top (shop name, address): real OCR input at a fraction of a full receipt's cost."""
    image = Image.open(path).convert("RGB")
    buf = io.BytesIO()
    image.crop((0, 0, image.width, 260)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path):
    from ordo.embedding.hf_dual_encoder import HFDualEncoder

    root = tmp_path_factory.mktemp("hybrid")
    store = LocalDirectoryStore(root / "objects", fsync=False)
    jobs = SqliteJobStore(root / "jobs.db")
    queue = CeleryTaskQueue(create_celery_app(Settings(data_dir=root)))
    ingest = IngestCore(
        catalog=AssetCatalog(store), jobs=jobs, queue=queue, limits=ImageLimits(), collection="c", model_id="m"
    )
    embedder = HFDualEncoder(str(tiny_clip_dir), device="cpu", batch_size=16)
    embedder.load()
    index = EdgeVectorIndex(root / "vectors")
    processor = ImageProcessor(
        store=store,
        index=index,
        embedder=embedder,
        limits=ImageLimits(),
        detector=SsdMobileNetDetector(0.5),
        reader=RapidTextReader(0.5),
        config=ProcessorConfig(),  # off by default: the request turns it on
    )
    pipeline = EmbeddingPipeline(
        store=store, index=index, jobs=jobs, embedder=embedder, limits=ImageLimits(), processor=processor
    )
    inputs = {name: _header(RECEIPTS / name) for name in ("000.jpg", "001.jpg", "002.jpg", "014.jpg")}
    inputs["bear.jpg"] = BEAR.read_bytes()
    job = ingest.start_job(processing=ProcessingOptions(detect_objects=True, read_text=True))
    ids = {name: ingest.ingest_bytes(job.job_id, data, file_name=name).asset_id for name, data in inputs.items()}
    ingest.finish_enumeration(job.job_id)
    with queue.app.connection_for_read() as conn:
        q = conn.SimpleQueue(EMBED_QUEUE)
        while True:
            try:
                message = q.get(block=True, timeout=0.5)
            except q.Empty:
                break
            message.ack()
            task = decode_task(message.decode()[0][0])
            assert task.processing == ProcessingOptions(detect_objects=True, read_text=True)  # survived the queue
            pipeline.run(task)
    assert jobs.get(job.job_id).state is JobState.SUCCEEDED
    search = SearchCore(index=index, embedder=embedder, limits=ImageLimits())
    yield search, ids
    pipeline.close()
    index.close()


def test_keyword_search_finds_the_receipt_by_its_shop_name(world) -> None:
    search, ids = world
    for mode in (SearchMode.KEYWORD, SearchMode.HYBRID):
        page = search.search_text("Indah Gift & Home Deco", mode=mode)
        top = page.hits[0]
        assert top.asset.asset_id == ids["001.jpg"], mode
        assert top.sample.kind is SampleKind.TEXT and "INDAH GIFT" in top.sample.text.upper()
        assert top.keyword_score == 1.0 and len(top.sample.polygon) == 4
    # "sdn bhd" is on two receipts; "mr d.i.y." only on one: all words on one line ranks it first.
    page = search.search_text("MR D.I.Y. (JOHOR) SDN BHD", mode=SearchMode.KEYWORD)
    assert page.hits[0].asset.asset_id == ids["002.jpg"]
    assert ids["000.jpg"] in [h.asset.asset_id for h in page.hits]  # partial match (SDN BHD), ranked lower
    assert page.hits[0].keyword_score > page.hits[-1].keyword_score


def test_results_are_images_with_the_matching_sample(world) -> None:
    search, ids = world
    page = search.search_text("anything at all", page_size=100, mode=SearchMode.SEMANTIC)
    assets = [h.asset.asset_id for h in page.hits]
    assert sorted(assets) == sorted(ids.values())  # every image once, however many samples it has
    assert [h.rank for h in page.hits] == list(range(1, len(assets) + 1))
    # The kind filter: object crops only → the bear photo, its crop's box and label returned.
    objects = search.search_text("animal", filter=Filter(kinds=(SampleKind.OBJECT,)), mode=SearchMode.SEMANTIC)
    assert [h.asset.asset_id for h in objects.hits] == [ids["bear.jpg"]]
    assert objects.hits[0].sample.label == "bear" and objects.hits[0].sample.bbox is not None
    # Keywords only look at text: restricting to whole images leaves the keyword half empty.
    assert search.search_text("indah", filter=Filter(kinds=(SampleKind.IMAGE,)), mode=SearchMode.KEYWORD).hits == []


def test_hybrid_without_keyword_matches_is_semantic_and_pages_work(world) -> None:
    search, _ = world
    semantic = search.search_text("zzzz qqqq", page_size=100, mode=SearchMode.SEMANTIC)
    hybrid = search.search_text("zzzz qqqq", page_size=100, mode=SearchMode.HYBRID)
    assert [(h.asset.asset_id, h.score) for h in hybrid.hits] == [(h.asset.asset_id, h.score) for h in semantic.hits]
    # Paging through hybrid results two at a time gives the same images as one big page, once each.
    everything = [h.asset.asset_id for h in search.search_text("jalan sdn bhd", page_size=100).hits]
    seen, token = [], ""
    while True:
        page = search.search_text("jalan sdn bhd", page_size=2, page_token=token)
        seen += [h.asset.asset_id for h in page.hits]
        token = page.next_page_token
        if not token:
            break
    assert seen == everything and len(set(seen)) == len(seen)
    # AIP-158: the page size may change from one page to the next; the token still continues the same list.
    seen, token, sizes = [], "", iter([2, 5, 1, 3000] * 100)
    while True:
        page = search.search_text("jalan sdn bhd", page_size=next(sizes), page_token=token)
        seen += [h.asset.asset_id for h in page.hits]
        token = page.next_page_token
        if not token:
            break
    assert seen == everything
    with pytest.raises(InvalidInput, match="other parameters"):  # a token is bound to its mode too
        search.search_text("jalan sdn bhd", page_size=2, page_token=search.search_text("jalan sdn bhd", page_size=2)
                           .next_page_token, mode=SearchMode.KEYWORD)  # fmt: skip


def test_server_adapter_ranks_keywords_the_same(world) -> None:
    """qdrant-client (local mode here) gets the same points and must answer keyword search identically."""
    search, ids = world
    server = QdrantServerIndex.connect("hybrid", path=":memory:")
    try:
        server.ensure_collection(search.index.dim)
        server.upsert(list(search.index.scroll()))
        other = SearchCore(index=server, embedder=search.embedder, limits=ImageLimits())
        for query in ("Indah Gift & Home Deco", "MR D.I.Y. (JOHOR) SDN BHD", "asia mart"):
            edge = search.search_text(query, mode=SearchMode.KEYWORD)
            qdrant = other.search_text(query, mode=SearchMode.KEYWORD)
            assert [h.asset.asset_id for h in qdrant.hits] == [h.asset.asset_id for h in edge.hits], query
        assert other.search_text("asia mart", mode=SearchMode.KEYWORD).hits[0].asset.asset_id == ids["014.jpg"]
    finally:
        server.close()


def test_keyword_filter_converts_to_the_servers_grpc_messages() -> None:
    """A Qdrant server gets filters over gRPC (local mode never converts): ``text_any`` must survive it."""
    from qdrant_client.conversions.conversion import RestToGrpc

    from ordo.adapters.qdrant_filters import build_filter
    from ordo.adapters.qdrant_index import MODELS

    flt = RestToGrpc.convert_filter(build_filter(Filter(kinds=(SampleKind.TEXT,), text_any="johor bahru"), MODELS))
    assert [c.field.match.text_any for c in flt.must if c.field.key == "text"] == ["johor bahru"]
