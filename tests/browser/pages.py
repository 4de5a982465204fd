"""A browser page that fails its test on any uncaught JavaScript error.

Why one helper: every UI test must notice a script error the page swallowed (a broken render still shows *some*
DOM), and each module used to wire the same listener and final assertion by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def watched_page(browser: Any, **context_options: Any) -> Iterator[Any]:
    """A new context and page; on exit the context closes (also when the test failed) and a test that passed
    fails if the page raised."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
