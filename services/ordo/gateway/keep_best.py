"""Which image of a near-duplicate group to keep: the user's rule, with fixed tie-breaks so the choice is the
same on every run (the dry run shows exactly what applying will delete).

Rules: ``resolution`` (most pixels), ``size`` (largest file), ``earliest`` (earliest capture; images without a
capture date come after dated ones, since "earliest" cannot be claimed for them). Ties fall to the next rule in
the order resolution → size → earliest, then to the asset id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ordo.v1 import common_pb2

KeepRule = Literal["resolution", "size", "earliest"]
_NO_DATE = float("inf")


def _pixels(a: common_pb2.Asset) -> int:
    return a.width * a.height


def _captured(a: common_pb2.Asset) -> float:
    return a.capture_time.ToSeconds() if a.HasField("capture_time") else _NO_DATE


def choose_keeper(assets: Sequence[common_pb2.Asset], rule: KeepRule) -> str:
    """The asset id to keep (``assets`` must not be empty)."""
    keys = {
        "resolution": lambda a: (-_pixels(a), -a.size_bytes, _captured(a), a.asset_id),
        "size": lambda a: (-a.size_bytes, -_pixels(a), _captured(a), a.asset_id),
        "earliest": lambda a: (_captured(a), -_pixels(a), -a.size_bytes, a.asset_id),
    }
    if rule not in keys:
        raise ValueError(f"unknown keep rule {rule!r}")
    return min(assets, key=keys[rule]).asset_id
