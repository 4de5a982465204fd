"""Keep-best rules for near-duplicate groups and safe member names for the zip download (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ordo.gateway.keep_best import choose_keeper
from ordo.gateway.zip_stream import zip_name
from ordo.v1 import common_pb2


def asset(asset_id: str, w: int, h: int, size: int, captured: datetime | None = None) -> common_pb2.Asset:
    a = common_pb2.Asset(asset_id=asset_id, width=w, height=h, size_bytes=size)
    if captured:
        a.capture_time.FromDatetime(captured)
    return a


GROUP = [
    asset("a", 4000, 3000, 2_000_000, datetime(2021, 5, 1, tzinfo=UTC)),
    asset("b", 2000, 1500, 3_000_000, datetime(2020, 1, 1, tzinfo=UTC)),
    asset("c", 4000, 3000, 2_500_000),  # undated
]


@pytest.mark.parametrize(("rule", "keep"), [("resolution", "c"), ("size", "b"), ("earliest", "b")])
def test_each_rule_keeps_its_best(rule: str, keep: str) -> None:
    assert choose_keeper(GROUP, rule) == keep  # type: ignore[arg-type]


def test_undated_images_never_win_earliest_and_ties_are_deterministic() -> None:
    undated = [asset("z", 10, 10, 5), asset("y", 10, 10, 5)]
    assert choose_keeper([*undated, asset("x", 1, 1, 1, datetime(2030, 1, 1, tzinfo=UTC))], "earliest") == "x"
    assert choose_keeper(undated, "earliest") == "y"  # equal in every way: the smaller id
    with pytest.raises(ValueError):
        choose_keeper(undated, "newest")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("/abs/path/x.png", "x.png"),
        ("", "0123456789ab"),
        ("..", "0123456789ab"),
        (".hidden.jpg", "hidden.jpg"),
        ("bad:na*me?.jpg", "bad_na_me_.jpg"),
        ("x" * 500 + ".jpg", "x" * 120),
    ],
)
def test_zip_names_stay_inside_the_archive(name: str, expected: str) -> None:
    assert zip_name(name, "0123456789abcdef" * 4, set()) == expected


def test_zip_names_are_unique() -> None:
    taken: set[str] = set()
    first = zip_name("a.jpg", "1" * 64, taken)
    second = zip_name("dir/a.jpg", "2" * 64, taken)
    assert (first, second) == ("a.jpg", "a-22222222.jpg")
