"""Date orders for the asset catalog: ``ListAssets`` by ingest or capture time, newest or oldest first.

Why marker keys in the object store: the catalog has no database (the records beside the bytes are the one
source of truth, in both modes), and every store lists keys in byte order with ``start_after``. So each order
is a key space of empty *marker* objects whose names sort in that order::

    index/<field>-<dir>/<YYYYMM>/<DDHH>/<MMSS>/<microseconds>_<asset_id>

For a descending order every digit is replaced by 9 minus itself, so byte order is newest first. The key is
split into folders (month, day+hour, minute+second) so no folder on a local disk holds more than the images of
one second, and listing one page reads a few small folders, never a directory of 100k entries. An image without
a capture date has the marker ``index/capture-<dir>/undated/<asset_id>``: ``u`` sorts after every digit, so
undated images come **after** the dated ones in both directions, in id order.

Markers are hints, the record is the truth: a page reads each marker's record and keeps it only when the
record still maps to that marker (a deleted asset, a record never written after a crash). Stale markers are
skipped, not removed on read: a marker is written just before its record, so a reader cannot tell a stale one
from one whose record is being written. Markers are removed before the record on delete, so a retried delete
still knows them. A library written before the orders existed is indexed once, in a background thread that
the first ordered listing (or ``ordo up``'s start) begins, then ``index/built-v1`` records that. A request
never waits for a big build: it waits at most ``BUILD_WAIT_S`` (so a small library is seamless), then gets
``UNAVAILABLE``/``ORDER_INDEX_BUILDING`` with the progress; id order works meanwhile. A kill mid-build loses
nothing: ``built-v1`` is written last, so the next start builds again, skipping the markers already there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ordo.domain import Asset
from ordo.errors import InvalidInput, Reason, Unavailable
from ordo.ports.object_store import ObjectStore, synced_together

log = logging.getLogger(__name__)

INDEX_PREFIX: Final = "index/"
BUILD_WAIT_S: Final = 2.0  # how long an ordered listing waits for a build before answering ORDER_INDEX_BUILDING
BUILT_KEY: Final = "index/built-v1"
MAX_ORDER_BY_CHARS: Final = 64
#: Accepted spellings, AIP-132 style: a field and an optional direction (ascending when left out).
FIELDS: Final = {"ingest_time": "ingest", "capture_time": "capture"}
UNDATED: Final = "undated"
_INVERT: Final = str.maketrans("0123456789", "9876543210")


@dataclass(frozen=True)
class Order:
    """A parsed ``order_by``: the field's marker name and the direction."""

    field: str  # "ingest" or "capture"
    descending: bool

    @property
    def prefix(self) -> str:
        return f"{INDEX_PREFIX}{self.field}-{'desc' if self.descending else 'asc'}/"

    @property
    def canonical(self) -> str:
        """The normal spelling (what page tokens are bound to, so "ingest_time" and "ingest_time asc" agree)."""
        name = next(k for k, v in FIELDS.items() if v == self.field)
        return f"{name} {'desc' if self.descending else 'asc'}"


def parse(order_by: str) -> Order | None:
    """The order ``order_by`` names, None for the empty string (id order); INVALID_ARGUMENT otherwise."""
    text = order_by.strip()
    if not text:
        return None
    if len(order_by) > MAX_ORDER_BY_CHARS:
        raise InvalidInput(f"order_by is at most {MAX_ORDER_BY_CHARS} characters", reason=Reason.BAD_ORDER_BY)
    parts = text.split()
    direction = parts[1].lower() if len(parts) == 2 else "asc"
    if len(parts) > 2 or parts[0] not in FIELDS or direction not in ("asc", "desc"):
        raise InvalidInput(
            f"order_by {text[:64]!r} is not one of: ingest_time, capture_time, each optionally followed by"
            " 'asc' or 'desc' (e.g. 'capture_time desc')",
            reason=Reason.BAD_ORDER_BY,
        )
    return Order(field=FIELDS[parts[0]], descending=direction == "desc")


def _stamp(moment: datetime, descending: bool) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    digits = utc.strftime("%Y%m/%d%H/%M%S/%f")  # fixed width: byte order is time order
    return digits.translate(_INVERT) if descending else digits


def marker(order: Order, asset: Asset) -> str:
    """The marker key of ``asset`` in ``order``."""
    moment = asset.ingested_at if order.field == "ingest" else asset.captured_at
    if moment is None:
        return f"{order.prefix}{UNDATED}/{asset.asset_id}"
    return f"{order.prefix}{_stamp(moment, order.descending)}_{asset.asset_id}"


def asset_id_of(key: str) -> str:
    """The asset id a marker key names (its last 64 characters)."""
    return key[-64:]


ALL_ORDERS: Final = tuple(Order(f, d) for f in ("ingest", "capture") for d in (False, True))


class OrderIndex:
    """Writes, removes and pages the markers of one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._build_lock = threading.Lock()
        self._built = False
        self._builder: threading.Thread | None = None
        self.progress: tuple[int, int] = (0, 0)  # (indexed, total) of the build running in the background

    def add(self, asset: Asset) -> None:
        """Writes the asset's markers that are not there yet (a re-put writes nothing new); durable as one
        group (their order among them does not matter), before the caller writes the record."""
        with synced_together(self.store):
            for order in ALL_ORDERS:
                key = marker(order, asset)
                if not self.store.exists(key):
                    self.store.put(key, b"", "application/octet-stream")

    def remove(self, asset: Asset) -> None:
        for order in ALL_ORDERS:
            self.store.delete(marker(order, asset))

    def is_built(self) -> bool:
        if not self._built and self.store.exists(BUILT_KEY):
            self._built = True
        return self._built

    def start_building(self, assets: Callable[[], Iterable[Asset]], count: Callable[[], int]) -> None:
        """Begins indexing a library written before the orders existed, in a background thread, unless it is
        indexed or being indexed already; returns at once. ``assets`` yields every record, ``count`` their
        number (for the progress)."""
        with self._build_lock:
            if self.is_built() or (self._builder is not None and self._builder.is_alive()):
                return
            self._builder = threading.Thread(
                target=self._build, args=(assets, count), name="ordo-order-index", daemon=True
            )
            self._builder.start()

    def require_built(self, assets: Callable[[], Iterable[Asset]], count: Callable[[], int]) -> None:
        """Returns once the orders are complete; starts the build if needed and waits at most ``BUILD_WAIT_S``
        for it, then raises ``Unavailable`` (``ORDER_INDEX_BUILDING``) with the progress."""
        if self.is_built():
            return
        self.start_building(assets, count)
        builder = self._builder
        if builder is not None:
            builder.join(BUILD_WAIT_S)
        if self.is_built():
            return
        done, total = self.progress
        raise Unavailable(
            f"the library's date order is being built ({done:,} of {total:,} images indexed); try again in a few "
            "seconds, or list in id order meanwhile",
            reason=Reason.ORDER_INDEX_BUILDING,
        )

    def _build(self, assets: Callable[[], Iterable[Asset]], count: Callable[[], int]) -> None:
        try:
            total = count()
            self.progress = (0, total)
            log.info("indexing the date order of %d images (a library from before the orders existed)", total)
            for done, asset in enumerate(assets(), 1):
                self.add(asset)
                self.progress = (done, max(total, done))
            self.store.put(BUILT_KEY, b"1", "text/plain")
            self._built = True
            log.info("date order indexed: %d images", self.progress[0])
        except Exception:  # the store went away: the next ordered listing starts again, skipping what is done
            log.warning("indexing the date order failed; it starts again on the next ordered listing", exc_info=True)

    def page(
        self, order: Order, after: str, size: int, load: Callable[[str], Asset | None]
    ) -> tuple[list[Asset], str | None]:
        """Up to ``size`` assets after the marker ``after``, and the last marker read when more may follow.

        Stale markers (no record, or a record that now maps elsewhere) are skipped; at most
        ``4 * size`` markers are read per page, so a page may come back short with a token that moves on."""
        assets: list[Asset] = []
        last: str | None = None
        read = 0
        for info in self.store.list(order.prefix, start_after=order.prefix + after if after else ""):
            if len(assets) >= size or read >= 4 * size:
                return assets, last
            read += 1
            last = info.key[len(order.prefix) :]
            asset = load(asset_id_of(info.key))
            if asset is None or marker(order, asset) != info.key:
                continue
            assets.append(asset)
        return assets, None
