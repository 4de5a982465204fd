"""One way to page every list and search, after Google's AIP-158.

Why one module: Ordo had six token formats and three default page sizes, over-max page sizes were errors and a
changed page size was refused. AIP-158 says otherwise, and clients written against Google-style APIs expect it:

- ``page_size`` 0 means the default; above the maximum it is *coerced* to the maximum (not an error); negative
  is INVALID_ARGUMENT (``BAD_PAGE_SIZE``).
- ``page_token`` is opaque: base64url of a small JSON document holding the position (an offset or a cursor)
  and a digest of the request's other parameters. A token presented with different parameters is
  INVALID_ARGUMENT (``BAD_PAGE_TOKEN``); a different ``page_size`` is allowed (it is not part of the digest).
- The last page answers an empty ``next_page_token``.

Positions are whatever the store pages by: an integer offset, or a cursor (a string or a list of strings and
integers, e.g. ``[created_us, job_id]``) that keeps pages stable while new items arrive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Final

from ordo.errors import InvalidInput, Reason

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
MAX_TOKEN_CHARS: Final = 1024  # a token we issue is < 200 characters; this bounds what a client can send
MAX_OFFSET: Final = 10**9

Position = int | str | list[int | str]


def page_size(requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The page size to serve: the default for 0, at most ``maximum`` (coerced, as AIP-158 asks)."""
    if requested < 0:
        raise InvalidInput(f"page_size must not be negative (got {requested})", reason=Reason.BAD_PAGE_SIZE)
    if requested == 0:
        return min(default, maximum)
    return min(requested, maximum)


def _digest(params: tuple[object, ...]) -> str:
    return hashlib.sha256(repr(params).encode()).hexdigest()[:12]


def encode_token(position: Position, *request: object) -> str:
    """An opaque token for ``position``, valid only with the same ``request`` parameters (page size aside)."""
    raw = json.dumps({"p": position, "q": _digest(request)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, *request: object) -> Position | None:
    """The position a token of ours holds, or None for an empty token (the first page)."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidInput(f"page_token is at most {MAX_TOKEN_CHARS} characters", reason=Reason.BAD_PAGE_TOKEN)
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, digest = data["p"], data["q"]
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN) from exc
    if digest != _digest(request):
        raise InvalidInput(
            "page_token belongs to a request with other parameters; send them unchanged (page_size may change)",
            reason=Reason.BAD_PAGE_TOKEN,
        )
    if not _valid_position(position):
        raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
    return position


def decode_offset(token: str, *request: object) -> int:
    """An offset token's offset (0 for the first page)."""
    position = decode_token(token, *request)
    if position is None:
        return 0
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= MAX_OFFSET:
        raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
    return position


def next_offset_token(offset: int, served: int, total: int | None, *request: object, more: bool = False) -> str:
    """The token after ``served`` items from ``offset``.

    Empty when that was the last page: ``total`` says so when known, else ``more`` (False: nothing follows)."""
    end = offset + served
    has_more = more if total is None else end < total
    return encode_token(end, *request) if has_more and served else ""


def _valid_position(position: object) -> bool:
    if isinstance(position, bool):
        return False
    if isinstance(position, int | str):
        return not isinstance(position, str) or len(position) <= 512
    if isinstance(position, list):
        return len(position) <= 8 and all(_valid_position(p) and not isinstance(p, list) for p in position)
    return False
