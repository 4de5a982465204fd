"""Shared fixtures live in tests/fixtures/*; each is registered here once.

The session sets up what it needs itself (a private Redis unless ``ORDO_TEST_REDIS_URL`` is given;
SeaweedFS per ``tests/fixtures/seaweedfs.py``) and fails if any process it started outlives it
(``tests/fixtures/session_guard.py``).
"""

import pytest

from tests.fixtures import session_guard

pytest_plugins = [
    "tests.fixtures.datasets",
    "tests.fixtures.seaweedfs",
    "tests.fixtures.tiny_clip",
    "tests.fixtures.images",
]


def pytest_configure(config: pytest.Config) -> None:
    session_guard.configure(config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session_guard.finish(session)
