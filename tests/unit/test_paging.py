"""``ordo.paging`` follows AIP-158: what every list and search promises clients about page sizes and tokens.

Tokens are opaque to clients but not to an attacker: anything a client sends back must either be a position this
service gave out for the same request, or fail as INVALID_ARGUMENT with ``BAD_PAGE_TOKEN`` (never a 500, never a
position the service did not choose).
"""

from __future__ import annotations

import base64
import json

import pytest

from ordo.errors import InvalidInput, Reason
from ordo.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    MAX_TOKEN_CHARS,
    decode_offset,
    decode_token,
    encode_token,
    next_offset_token,
    page_size,
)

REQUEST = ("a red bicycle", "collection=holidays")  # a request's parameters other than page size and token


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forge(position: object, *request: object) -> str:
    """A token with a genuine digest for ``request`` but a ``position`` of the attacker's choosing."""
    genuine = encode_token(0, *request)
    document = json.loads(base64.urlsafe_b64decode(genuine + "=" * (-len(genuine) % 4)))
    return _b64(json.dumps({**document, "p": position}).encode())


def _refused(token: str, *request: object, offset: bool = False) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        (decode_offset if offset else decode_token)(token, *request)
    assert err.value.reason == Reason.BAD_PAGE_TOKEN
    return err.value


# --- page sizes ------------------------------------------------------------------------------------------------
def test_zero_means_the_default_page_size() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE == 50
    assert page_size(0, default=20) == 20
    assert page_size(0, default=5000, maximum=100) == 100  # a default is a page size too: never over the maximum


def test_an_over_max_page_size_is_coerced_not_refused() -> None:
    assert page_size(MAX_PAGE_SIZE + 1) == MAX_PAGE_SIZE == 1000
    assert page_size(10**9) == MAX_PAGE_SIZE
    assert page_size(500, maximum=200) == 200
    assert page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    assert page_size(7) == 7


@pytest.mark.parametrize("requested", [-1, -50, -(10**9)])
def test_a_negative_page_size_is_refused(requested: int) -> None:
    with pytest.raises(InvalidInput, match="page_size must not be negative") as err:
        page_size(requested)
    assert err.value.reason == Reason.BAD_PAGE_SIZE


# --- tokens ----------------------------------------------------------------------------------------------------
def test_an_empty_token_is_the_first_page() -> None:
    assert decode_token("", *REQUEST) is None
    assert decode_offset("", *REQUEST) == 0


@pytest.mark.parametrize("position", [0, 120, MAX_OFFSET, "asset-3f2a", [1_733_000_000_000_000, "job-17"], []])
def test_a_token_round_trips_its_position(position: int | str | list[int | str]) -> None:
    token = encode_token(position, *REQUEST)
    assert decode_token(token, *REQUEST) == position
    assert token.isascii() and "=" not in token and "+" not in token and "/" not in token  # URL-safe as it is
    assert len(token) < 200


def test_an_offset_token_round_trips_through_decode_offset() -> None:
    assert decode_offset(encode_token(120, *REQUEST), *REQUEST) == 120


def test_a_token_from_a_request_with_other_parameters_is_refused() -> None:
    token = encode_token(120, *REQUEST)
    error = _refused(token, "a blue bicycle", "collection=holidays")
    assert "page_size may change" in error.message
    _refused(token, *REQUEST, "one more")
    _refused(token)


def test_a_changed_page_size_is_accepted_and_pages_cover_every_item_once() -> None:
    items = [f"item-{i}" for i in range(23)]

    def list_items(requested_size: int, token: str) -> tuple[list[str], str]:
        """A list call as a servicer writes it: page size is not among the token's request parameters."""
        offset = decode_offset(token, *REQUEST)
        page = items[offset : offset + page_size(requested_size)]
        return page, next_offset_token(offset, len(page), len(items), *REQUEST)

    seen, token = [], ""
    for requested in (5, 10, 0, 3):  # the client changes its page size between calls
        page, token = list_items(requested, token)
        seen += page
        if not token:
            break
    assert seen == items
    assert token == ""  # the last page answers an empty next_page_token


def test_next_offset_token_is_empty_on_the_last_page() -> None:
    assert next_offset_token(0, 10, 10, *REQUEST) == ""
    assert decode_offset(next_offset_token(0, 10, 11, *REQUEST), *REQUEST) == 10
    assert next_offset_token(10, 0, None, *REQUEST, more=True) == ""  # nothing served: nothing to continue from
    assert decode_offset(next_offset_token(10, 5, None, *REQUEST, more=True), *REQUEST) == 15
    assert next_offset_token(10, 5, None, *REQUEST) == ""


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",  # not base64url
        "abc",  # base64 of bytes that are not UTF-8 JSON
        _b64(b"\xff\xfe\xfd"),  # not UTF-8
        _b64(b"{not json"),
        _b64(b"[1, 2]"),  # JSON, but not the document
        _b64(b'"p"'),
        _b64(b"null"),
        _b64(b'{"p": 5}'),  # no digest
        _b64(b'{"q": "x"}'),  # no position
        _b64(b'{"p": 5, "q": "000000000000"}'),  # a digest of nothing we issued
    ],
)
def test_a_malformed_token_is_refused(token: str) -> None:
    _refused(token, *REQUEST)


def test_a_100_kb_token_is_refused_before_it_is_decoded() -> None:
    huge = _forge(["x" * 100] * 1000, *REQUEST)
    assert len(huge) > 100_000
    error = _refused(huge, *REQUEST)
    assert f"at most {MAX_TOKEN_CHARS} characters" in error.message
    _refused("A" * (MAX_TOKEN_CHARS + 1), *REQUEST)


@pytest.mark.parametrize(
    "position",
    [
        True,  # a bool is an int to Python, not a position to us
        False,
        [True, "job-1"],
        [[1, 2]],  # nested lists
        [1, ["job-1"]],
        {"offset": 5},
        1.5,
        None,
        "x" * 513,
        list(range(9)),  # a cursor has at most 8 parts
    ],
)
def test_a_token_with_a_position_we_never_issue_is_refused(position: object) -> None:
    _refused(_forge(position, *REQUEST), *REQUEST)


@pytest.mark.parametrize("position", [-1, MAX_OFFSET + 1, "asset-3f2a", [5, "job-1"]])
def test_an_offset_token_must_hold_an_offset_in_range(position: object) -> None:
    token = _forge(position, *REQUEST)
    if not isinstance(position, int):
        assert decode_token(token, *REQUEST) == position  # a good cursor token, only not an offset one
    _refused(token, *REQUEST, offset=True)
