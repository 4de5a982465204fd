"""ListAssets in date order (``ordo.core.catalog_order``): real paging over marker keys in a real store.

What could go wrong and is checked: a page boundary that skips or repeats an asset, undated images mixed
into the dated ones, a deleted asset still listed, a library written before the index missing from an order
(or a request blocked by its build, or a build killed midway), a token replayed with another order, a hostile
``order_by``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ordo.adapters.local_store import LocalDirectoryStore
from ordo.core import catalog_order
from ordo.core.catalog import AssetCatalog, _to_json, record_key  # the record format itself
from ordo.domain import Asset
from ordo.errors import InvalidInput, Reason, Unavailable

START = datetime(2024, 5, 31, 23, 59, 58, tzinfo=UTC)


def _asset(n: int, *, captured: bool) -> Asset:
    asset_id = f"{n:064x}"[::-1]  # id order is not date order
    return Asset(
        asset_id=asset_id,
        source_uri=f"upload://{n}.jpg",
        file_name=f"{n}.jpg",
        mime_type="image/jpeg",
        size_bytes=10,
        width=1,
        height=1,
        ingested_at=START + timedelta(milliseconds=700 * n),  # crosses a second, a day and a month
        original_key=f"assets/{asset_id}/original",
        captured_at=START - timedelta(days=40 * n) if captured else None,
    )


def _all(catalog: AssetCatalog, order_by: str, page_size: int) -> list[Asset]:
    out: list[Asset] = []
    token = ""
    for _ in range(1000):
        page, token = catalog.list(page_size, token, order_by)
        out.extend(page)
        if not token:
            return out
    raise AssertionError("paging did not end")


@pytest.fixture
def catalog(tmp_path: Path) -> AssetCatalog:
    return AssetCatalog(LocalDirectoryStore(tmp_path, fsync=False))


def test_every_order_pages_without_gaps_or_repeats(catalog: AssetCatalog) -> None:
    assets = [_asset(n, captured=n % 3 != 0) for n in range(23)]
    for a in assets:
        catalog.put(a)
    by_ingest = [a.asset_id for a in assets]
    dated = [a for a in assets if a.captured_at]
    undated = sorted(a.asset_id for a in assets if not a.captured_at)
    oldest_capture = [a.asset_id for a in sorted(dated, key=lambda a: a.captured_at or START)]
    for size in (1, 4, 50):
        assert [a.asset_id for a in _all(catalog, "ingest_time", size)] == by_ingest
        assert [a.asset_id for a in _all(catalog, "ingest_time desc", size)] == by_ingest[::-1]
        # Undated after the dated ones in both directions, in id order.
        assert [a.asset_id for a in _all(catalog, "capture_time asc", size)] == oldest_capture + undated
        assert [a.asset_id for a in _all(catalog, "capture_time desc", size)] == oldest_capture[::-1] + undated
    assert sorted(a.asset_id for a in _all(catalog, "", 7)) == sorted(by_ingest)  # id order still there


def test_deleted_assets_leave_every_order(catalog: AssetCatalog) -> None:
    assets = [_asset(n, captured=True) for n in range(6)]
    for a in assets:
        catalog.put(a)
    catalog.delete(assets[2].asset_id)
    # A crash between the markers and the record of a put: a marker without a record is skipped.
    orphan = _asset(99, captured=True)
    catalog.orders.add(orphan)
    expected = [a.asset_id for a in assets if a is not assets[2]]
    assert [a.asset_id for a in _all(catalog, "ingest_time", 2)] == expected
    assert [a.asset_id for a in _all(catalog, "capture_time desc", 2)] == expected


def test_a_library_from_before_the_index_is_indexed_once(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path, fsync=False)
    assets = [_asset(n, captured=False) for n in range(5)]
    for a in assets:  # records only, as an older Ordo wrote them
        store.put(record_key(a.asset_id), _to_json(a), "application/json")
    catalog = AssetCatalog(store)
    assert [a.asset_id for a in _all(catalog, "ingest_time desc", 2)] == [a.asset_id for a in assets][::-1]
    assert store.exists(catalog_order.BUILT_KEY)


def test_a_big_build_runs_in_the_background_and_listings_say_how_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalDirectoryStore(tmp_path, fsync=False)
    assets = [_asset(n, captured=n % 2 == 0) for n in range(400)]
    for a in assets:
        store.put(record_key(a.asset_id), _to_json(a), "application/json")
    monkeypatch.setattr(catalog_order, "BUILD_WAIT_S", 0.0)  # as if the library were far bigger than 2 s of work
    catalog = AssetCatalog(store)
    with pytest.raises(Unavailable) as caught:
        catalog.list(10, "", "ingest_time desc")
    assert caught.value.reason == Reason.ORDER_INDEX_BUILDING
    assert re.search(r"\d[\d,]* of [\d,]+ images indexed", caught.value.message)
    assert len(_all(catalog, "", 50)) == 400  # id order is served meanwhile
    builder = catalog.orders._builder
    assert builder is not None
    builder.join(30)
    assert catalog.orders.progress == (400, 400)
    assert [a.asset_id for a in _all(catalog, "ingest_time desc", 64)] == [a.asset_id for a in assets][::-1]
    assert store.exists(catalog_order.BUILT_KEY)


def test_a_build_killed_midway_is_finished_by_the_next_start(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path, fsync=False)
    assets = [_asset(n, captured=True) for n in range(30)]
    for a in assets:
        store.put(record_key(a.asset_id), _to_json(a), "application/json")
    for a in assets[:12]:  # what a killed build had written: some markers, no built marker
        catalog_order.OrderIndex(store).add(a)
    catalog = AssetCatalog(store)  # the next start
    catalog.start_order_index()
    assert catalog.orders._builder is not None
    catalog.orders._builder.join(30)
    assert [a.asset_id for a in _all(catalog, "capture_time asc", 7)] == [a.asset_id for a in assets][::-1]
    assert [a.asset_id for a in _all(catalog, "ingest_time asc", 7)] == [a.asset_id for a in assets]


def test_a_new_library_is_born_indexed(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path, fsync=False)
    catalog = AssetCatalog(store)
    catalog.start_order_index()  # what `ordo up` does at start
    assert catalog.orders._builder is not None
    catalog.orders._builder.join(30)
    assert store.exists(catalog_order.BUILT_KEY)
    catalog.put(_asset(1, captured=True))  # later puts write their own markers
    assert [a.asset_id for a in _all(catalog, "ingest_time desc", 5)] == [_asset(1, captured=True).asset_id]


@pytest.mark.parametrize(
    "order_by",
    ["ingest", "ingest_time sideways", "capture_time desc asc", "file_name", "x" * 65, "ingest_time; drop", "\x00"],
)
def test_hostile_order_by_is_invalid_argument(catalog: AssetCatalog, order_by: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        catalog.list(10, "", order_by)
    assert caught.value.reason == Reason.BAD_ORDER_BY


def test_tokens_are_bound_to_the_order(catalog: AssetCatalog) -> None:
    for n in range(4):
        catalog.put(_asset(n, captured=True))
    _, token = catalog.list(2, "", "ingest_time desc")
    assert token
    assert catalog.list(2, token, "INGEST_TIME DESC".lower())[0]  # same order, same token
    for other in ("ingest_time asc", "capture_time desc", ""):
        with pytest.raises(InvalidInput) as caught:
            catalog.list(2, token, other)
        assert caught.value.reason == Reason.BAD_PAGE_TOKEN


def test_a_new_assets_record_is_flushed_after_its_original_and_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power-loss order of an upload (issue 12 + 18): the original and the date-order markers are one durable
    group, and the record is written and flushed only after it, so a record on disk always has both."""
    import os

    from ordo.adapters import local_store

    store = LocalDirectoryStore(tmp_path / "objects")
    catalog = AssetCatalog(store)
    store.put("first", b"x")
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(f"rename {dst}")
        real_replace(src, dst)

    monkeypatch.setattr(local_store.os, "fsync", fsync)
    monkeypatch.setattr(local_store.os, "replace", replace)
    asset = _asset(1, captured=True)
    catalog.put_new(asset, b"jpeg bytes")
    record_rename = events.index(f"rename {store.root / record_key(asset.asset_id)}")
    assert events[record_rename - 1].startswith("fsync ") and "/.ordo-tmp-" in events[record_rename - 1]
    group = events[: record_rename - 1]  # everything before the record's own temp file is flushed
    assert f"rename {store.root / asset.original_key}" in group
    assert sum(e.startswith("rename ") and "/index/" in e for e in group) == 4  # the four order markers
    assert group[-1].startswith("fsync ") and ".ordo-tmp-" not in group[-1]  # the group's folders, last
    assert catalog.get(asset.asset_id) == asset
    assert store.get(asset.original_key) == b"jpeg bytes"
