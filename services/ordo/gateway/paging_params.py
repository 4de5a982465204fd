"""The query parameters every REST list shares, with the one default page size of ``ordo.paging``.

Why here: the routes used to default to 20 or 50 items each; now an absent ``page_size`` is
``ordo.paging.DEFAULT_PAGE_SIZE`` everywhere, and both parameters go to the RPC unchanged, so the services'
AIP-158 rules (0 = default, over the maximum coerced, opaque tokens) are the only rules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from ordo.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_TOKEN_CHARS

__all__ = ["DEFAULT_PAGE_SIZE", "PageSize", "PageToken"]

PageSize = Annotated[
    int, Query(description=f"Items per page: 0 is the default ({DEFAULT_PAGE_SIZE}); at most {MAX_PAGE_SIZE}.")
]
PageToken = Annotated[
    str,
    Query(
        max_length=MAX_TOKEN_CHARS,
        description="The previous page's `next_page_token`; empty for the first page.",
    ),
]
