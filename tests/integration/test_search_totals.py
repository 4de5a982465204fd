"""Search totals (``include_total_size`` → ``total_size``, ``total_size_capped``).

Similarity ranks every image, so a total only means something against a score cut: it counts the images
scoring at least ``min_score`` (all the filter admits without one), no deeper than the paging depth. Two
halves: SearchCore over a real Qdrant Edge index whose vectors are known (so the expected count is computed
independently, by brute force), and the real stack (`ordo up`, tiny CLIP, real ingestion) over gRPC and REST.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.core import search as search_module
from ordo.core.search import SearchCore
from ordo.domain import Filter, SampleKind, VectorPoint
from ordo.embedding.hf_dual_encoder import HFDualEncoder
from ordo.errors import InvalidInput, Reason
from ordo.ids import sample_id_for
from ordo.imaging import ImageLimits
from ordo.paging import Position, encode_token
from ordo.v1 import search_pb2
from tests.e2e.conftest import stop_stack
from tests.fixtures.gateway_stack import GatewayStack, start_gateway_stack

DIM = 16
ASSETS = 30


def _point(asset: str, kind: SampleKind, index: int, vector: np.ndarray) -> VectorPoint:
    payload = {
        "asset_id": asset,
        "kind": kind.value,
        "index": index,
        "file_name": f"{asset}.jpg",
        "ingested_at": datetime(2024, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        "library": "default",
    }
    return VectorPoint(sample_id_for(asset, kind, index), vector.tolist(), payload)


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def core(tmp_path: Path, tiny_clip_dir: Path) -> Iterator[tuple[SearchCore, dict[str, list[np.ndarray]]]]:
    """30 images, every third with two object crops as well (crops roll up into their image's slot)."""
    rng = np.random.default_rng(7)
    index = EdgeVectorIndex(tmp_path / "vectors")
    index.ensure_collection(DIM)
    samples: dict[str, list[np.ndarray]] = {}
    points = []
    for i in range(ASSETS):
        asset = f"{i:064x}"
        samples[asset] = [_unit(rng)]
        points.append(_point(asset, SampleKind.IMAGE, 0, samples[asset][0]))
        if i % 3 == 0:
            for j in range(2):
                samples[asset].append(_unit(rng))
                points.append(_point(asset, SampleKind.OBJECT, j, samples[asset][-1]))
    index.upsert(points)
    embedder = HFDualEncoder(str(tiny_clip_dir), device="cpu")
    yield SearchCore(index=index, embedder=embedder, limits=ImageLimits()), samples
    index.close()


def _passing(samples: dict[str, list[np.ndarray]], query: str, min_score: float, exclude: str = "") -> int:
    """Brute force: images whose best sample scores at least ``min_score`` against ``query``'s image vector."""
    q = samples[query][0]
    return sum(1 for a, vs in samples.items() if a != exclude and max(float(v @ q) for v in vs) >= min_score)


def test_without_a_cut_every_image_the_filter_admits_counts(core) -> None:
    search, samples = core
    query = next(iter(samples))
    page = search.search_asset(query, page_size=5, with_total=True)
    assert page.total is not None and (page.total.size, page.total.capped) == (ASSETS, False)
    mine = search.search_asset(query, page_size=5, with_total=True, exclude_self=True)
    assert mine.total is not None and mine.total.size == ASSETS - 1
    assert search.search_asset(query, page_size=5).total is None  # not asked: not counted


@pytest.mark.parametrize("kinds", [(), (SampleKind.OBJECT,)])
def test_with_a_cut_the_total_is_the_images_above_it(core, kinds: tuple[SampleKind, ...]) -> None:
    search, samples = core
    query = next(iter(samples))
    flt = Filter(kinds=kinds)
    for min_score in (0.1, 0.3, 0.5):
        expected = (
            _passing(samples, query, min_score)
            if not kinds
            else sum(
                1
                for vs in samples.values()
                if len(vs) > 1 and max(float(v @ samples[query][0]) for v in vs[1:]) >= min_score
            )
        )
        page = search.search_asset(query, filter=flt, page_size=2, min_score=min_score, with_total=True)
        assert page.total is not None and (page.total.size, page.total.capped) == (expected, False), min_score
        # Paging to the end serves exactly that many results.
        served, token = len(page.hits), page.next_page_token
        while token:
            more = search.search_asset(query, filter=flt, page_size=2, min_score=min_score, page_token=token)
            served, token = served + len(more.hits), more.next_page_token
        assert served == expected


def test_later_pages_carry_the_first_pages_count(core) -> None:
    search, samples = core
    query = next(iter(samples))
    first = search.search_asset(query, page_size=4, with_total=True)
    extra = "f" * 64  # an image arrives after the first page: the count is the first page's, not recounted
    search.index.upsert([_point(extra, SampleKind.IMAGE, 0, samples[query][0])])
    second = search.search_asset(query, page_size=4, page_token=first.next_page_token, with_total=True)
    assert second.total == first.total and [h.rank for h in second.hits] == [5, 6, 7, 8]
    assert search.search_asset(query, page_size=4, with_total=True).total.size == ASSETS + 1  # type: ignore[union-attr]


def test_the_count_stops_at_the_paging_depth(core, monkeypatch: pytest.MonkeyPatch) -> None:
    search, samples = core
    query = next(iter(samples))
    objects = (SampleKind.OBJECT,)  # 10 images have crops: exactly the depth is not "more"
    for depth, min_score, kinds, expected in (
        (10, 0.0, (), (10, True)),  # the count path
        (10, -1.0, (), (10, True)),  # the ranking path
        (10, -1.0, objects, (10, False)),
        (9, -1.0, objects, (9, True)),
    ):
        monkeypatch.setattr(search_module, "MAX_OFFSET", depth)
        flt = Filter(kinds=kinds)
        page = search.search_asset(query, filter=flt, min_score=min_score, page_size=3, with_total=True)
        assert page.total is not None and (page.total.size, page.total.capped) == expected, (depth, min_score, kinds)


def test_a_forged_total_in_a_token_is_refused(core) -> None:
    search, samples = core
    query = next(iter(samples))
    request = (f"asset:{query}", Filter(), 0.0)
    forged: list[Position] = [[3, 10**9, 0], [3, 5], [-1, 5, 0], [3, 5, "x"]]
    for position in forged:
        with pytest.raises(InvalidInput) as caught:
            search.search_asset(query, page_token=encode_token(position, *request), with_total=True)
        assert caught.value.reason is Reason.BAD_PAGE_TOKEN
    ok = search.search_asset(query, page_size=2, page_token=encode_token([3, 12, 0], *request), with_total=True)
    assert ok.total is not None and ok.total.size == 12 and ok.hits[0].rank == 4


# --- the real stack over gRPC and REST -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path, coco_images: list[Path]
) -> Iterator[GatewayStack]:
    g = start_gateway_stack(tmp_path_factory.mktemp("totals-data"), tiny_clip_dir)
    with httpx.Client(base_url=g.base_url, timeout=60) as http:
        files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in coco_images[:6]]
        job = http.post("/api/uploads", files=files).json()["job"]["job_id"]
        with http.stream("GET", f"/api/jobs/{job}/events") as events:
            for _ in events.iter_lines():
                pass  # the stream ends with the job
    yield g
    stop_stack(g.stack)


def test_grpc_search_text_answers_the_total_only_when_asked(gw: GatewayStack) -> None:
    search = gw.stack.client.search
    mode = search_pb2.SEARCH_MODE_SEMANTIC
    everything = search.SearchText(search_pb2.SearchTextRequest(query="a photo", page_size=100, mode=mode))
    assert len(everything.hits) == 6 and not everything.HasField("total_size")
    answer = search.SearchText(
        search_pb2.SearchTextRequest(query="a photo", page_size=2, mode=mode, include_total_size=True)
    )
    assert answer.HasField("total_size") and (answer.total_size, answer.total_size_capped) == (6, False)
    cut = everything.hits[2].score
    expected = sum(1 for h in everything.hits if h.score >= cut)
    for request_mode in (mode, search_pb2.SEARCH_MODE_HYBRID):
        request = search_pb2.SearchTextRequest(
            query="a photo", page_size=1, mode=request_mode, min_score=cut, include_total_size=True
        )
        cut_answer = search.SearchText(request)
        assert (cut_answer.total_size, cut_answer.total_size_capped) == (expected, False)
        assert expected >= 3
        request.page_token = cut_answer.next_page_token
        assert search.SearchText(request).total_size == expected  # carried by the token


def test_rest_search_totals_by_text_asset_and_uploaded_image(gw: GatewayStack, coco_images: list[Path]) -> None:
    with httpx.Client(base_url=gw.base_url, timeout=60) as http:
        plain = http.post("/api/search", json={"query": "a photo", "page_size": 2}).json()
        assert "total_size" not in plain and plain["total_size_capped"] is False
        text = http.post("/api/search", json={"query": "a photo", "page_size": 2, "include_total_size": True}).json()
        assert (text["total_size"], text["total_size_capped"]) == (6, False)
        asset = hashlib.sha256(coco_images[0].read_bytes()).hexdigest()
        like = http.post("/api/search", json={"asset_id": asset, "page_size": 2, "include_total_size": True}).json()
        assert like["total_size"] == 5  # the asset itself is left out (exclude_self defaults to true)

        image = {"image": (coco_images[1].name, coco_images[1].read_bytes())}
        first = http.post("/api/search/image", files=image, data={"page_size": "4", "include_total_size": "true"})
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["total_size"] == 6 and body["next_page_token"]
        form = {"page_size": "4", "page_token": body["next_page_token"], "include_total_size": "true"}
        rest = http.post("/api/search/image", files=image, data=form).json()
        assert [h["rank"] for h in rest["hits"]] == [5, 6] and rest["total_size"] == 6 and not rest["next_page_token"]
        seen = {h["asset"]["asset_id"] for h in body["hits"] + rest["hits"]}
        assert len(seen) == 6
        hostile = http.post("/api/search/image", files=image, data={"page_token": "x" * 5000})
        assert hostile.status_code == 400 or hostile.status_code == 422, hostile.text
