"""Asset records in the object store.

Every asset owns one content-addressed folder, ``assets/<sha256>/``, holding the original, its
thumbnail and ``asset.json``. Keeping the records beside the bytes means the object store is the
single source of truth in both modes (no extra database to run or keep consistent), and listing
folders in key order gives stable pagination on a local directory and on any S3 server alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ordo import paging
from ordo.core import catalog_order
from ordo.domain import Asset, AssetState
from ordo.errors import InvalidInput, NotFound, Reason
from ordo.ids import is_asset_id
from ordo.ports.object_store import ObjectStore, synced_together

ASSETS_PREFIX = "assets/"


def original_key(asset_id: str) -> str:
    return f"{ASSETS_PREFIX}{asset_id}/original"


def thumbnail_key(asset_id: str) -> str:
    return f"{ASSETS_PREFIX}{asset_id}/thumb.jpg"


def record_key(asset_id: str) -> str:
    return f"{ASSETS_PREFIX}{asset_id}/asset.json"


def _to_json(asset: Asset) -> bytes:
    data = asdict(asset)
    for key in ("ingested_at", "captured_at"):
        value = data[key]
        data[key] = value.isoformat() if value else None
    data["state"] = asset.state.value
    return json.dumps(data, sort_keys=True).encode()


def _from_json(raw: bytes) -> Asset:
    data: dict[str, Any] = json.loads(raw)
    data["ingested_at"] = datetime.fromisoformat(data["ingested_at"])
    data["captured_at"] = datetime.fromisoformat(data["captured_at"]) if data.get("captured_at") else None
    data["state"] = AssetState(data["state"])
    return Asset(**data)


class AssetCatalog:
    """Reads and writes asset records; knows the key layout so nothing else has to."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.orders = catalog_order.OrderIndex(store)

    @staticmethod
    def check_id(asset_id: str) -> str:
        if not is_asset_id(asset_id):
            raise InvalidInput(
                f"'{asset_id}' is not an asset id (64 lower-case hex characters)", reason=Reason.BAD_ASSET_ID
            )
        return asset_id

    @staticmethod
    def is_id(asset_id: str) -> bool:
        return is_asset_id(asset_id)

    def get(self, asset_id: str) -> Asset:
        self.check_id(asset_id)
        try:
            return _from_json(self.store.get(record_key(asset_id)))
        except NotFound:
            raise NotFound(f"asset {asset_id} not found", reason=Reason.ASSET_NOT_FOUND) from None

    def find(self, asset_id: str) -> Asset | None:
        try:
            return self.get(asset_id)
        except NotFound:
            return None

    def put(self, asset: Asset) -> None:
        """Writes the record, after its date-order markers (``catalog_order``: a crash in between leaves a
        marker without a record, which listings skip, never a record missing from an order)."""
        self.orders.add(asset)
        self.store.put(record_key(asset.asset_id), _to_json(asset), "application/json")

    def put_original(self, asset_id: str, data: bytes, mime_type: str) -> str:
        key = original_key(asset_id)
        self.store.put(key, data, mime_type)
        return key

    def put_new(self, asset: Asset, data: bytes, on_stored: Callable[[], object] | None = None) -> None:
        """One new asset: see :meth:`put_new_many`."""
        self.put_new_many([(asset, data)], on_stored)

    def put_new_many(
        self, assets: Sequence[tuple[Asset, bytes]], on_stored: Callable[[], object] | None = None
    ) -> None:
        """New assets: their originals and date-order markers as one durable group (their order among them
        does not matter: a marker without a record is skipped), then the records as another, so a record on
        disk always has its original and its markers. On a local disk that is about four journal commits for
        the lot, where each object fsynced on its own took two (issue 18: the upload path was the stack's
        bottleneck)."""
        with synced_together(self.store):
            for asset, data in assets:
                self.store.put(asset.original_key or original_key(asset.asset_id), data, asset.mime_type)
                self.orders.add(asset)
        if on_stored is not None:  # the chaos harness's kill point between the originals and the records
            on_stored()
        with synced_together(self.store):
            for asset, _ in assets:
                self.store.put(record_key(asset.asset_id), _to_json(asset), "application/json")

    def put_all(self, assets: list[Asset], beside: Sequence[tuple[str, bytes, str]] = ()) -> None:
        """Several records whose order among them does not matter (a task's READY records, all written after
        its vectors): their missing markers as one durable group (usually none: the upload wrote them), then
        the records as another, two fsync rounds in all instead of two fsyncs per record.

        ``beside``: other objects (key, bytes, content type) made durable in the records' group, e.g. the
        task's thumbnails: they live in the records' folders, so they share the folders' fsyncs, and a READY
        record never shows without its thumbnail."""
        with synced_together(self.store):
            for asset in assets:
                self.orders.add(asset)
        with synced_together(self.store):
            for key, data, content_type in beside:
                self.store.put(key, data, content_type)
            for asset in assets:
                self.store.put(record_key(asset.asset_id), _to_json(asset), "application/json")

    def list(self, page_size: int, page_token: str = "", order_by: str = "") -> tuple[list[Asset], str]:
        """Assets in id order, or in the date order ``order_by`` names (``catalog_order``), paged as
        ``ordo.paging`` says; the token's position is a cursor (the last id, or the last marker, of the previous
        page), so assets added meanwhile do not shift the pages. Tokens are bound to the order."""
        order = catalog_order.parse(order_by)
        if order is not None:
            return self._list_ordered(order, page_size, page_token)
        size = paging.page_size(page_size)
        after = paging.decode_token(page_token, _ASSETS_LISTING)
        if after is not None and not (isinstance(after, str) and self.is_id(after)):
            raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
        ids = self.store.list_children(ASSETS_PREFIX, start_after=after or "", limit=size + 1)
        assets = [a for a in (self.find(i) for i in ids[:size]) if a is not None]
        next_token = token_after(ids[size - 1]) if len(ids) > size else ""
        return assets, next_token

    def _list_ordered(self, order: catalog_order.Order, page_size: int, page_token: str) -> tuple[list[Asset], str]:
        size = paging.page_size(page_size)
        after = paging.decode_token(page_token, _ASSETS_LISTING, order.canonical)
        if after is not None and not (isinstance(after, str) and 64 < len(after) <= 128):
            raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
        self.orders.require_built(self._every_asset, self.count)
        assets, last = self.orders.page(order, after or "", size, self.find)
        return assets, paging.encode_token(last, _ASSETS_LISTING, order.canonical) if last else ""

    def _every_asset(self) -> Iterator[Asset]:
        token = ""
        while True:
            page, token = self.list(paging.MAX_PAGE_SIZE, token)
            yield from page
            if not token:
                return

    def start_order_index(self) -> None:
        """Begins indexing the date orders of a library written before they existed (a background thread;
        nothing when indexed already), so the first library view after an upgrade does not wait for it."""
        self.orders.start_building(self._every_asset, self.count)

    def count(self) -> int:
        total, token = 0, ""
        while True:
            ids = self.store.list_children(ASSETS_PREFIX, start_after=token, limit=1000)
            total += len(ids)
            if len(ids) < 1000:
                return total
            token = ids[-1]

    def delete(self, asset_id: str) -> None:
        """Removes every object of the asset, the record last so a crash midway can be retried."""
        self.check_id(asset_id)
        record = self.find(asset_id)
        if record is not None:
            self.orders.remove(record)  # before the record: a retry still knows which markers to remove
        for key in (original_key(asset_id), thumbnail_key(asset_id)):
            self.store.delete(key)
        self.store.delete(record_key(asset_id))


_ASSETS_LISTING = "assets"  # what a ListAssets token is bound to (the listing has no other parameters)


def token_after(asset_id: str) -> str:
    """The id-order ListAssets page token that continues after ``asset_id`` (for a caller that sends fewer)."""
    return paging.encode_token(asset_id, _ASSETS_LISTING)


def token_after_asset(asset: Asset, order_by: str) -> str:
    """The ListAssets page token that continues after ``asset`` in the order ``order_by`` names."""
    order = catalog_order.parse(order_by)
    if order is None:
        return token_after(asset.asset_id)
    key = catalog_order.marker(order, asset)[len(order.prefix) :]
    return paging.encode_token(key, _ASSETS_LISTING, order.canonical)
