"""Shared fixtures live in tests/fixtures/*; each is registered here once.

The session sets up what it needs itself (a private Redis unless ``ORDO_TEST_REDIS_URL`` is given;
SeaweedFS per ``tests/fixtures/seaweedfs.py``) and fails if any process it started outlives it
(``tests/fixtures/session_guard.py``).
"""

import os
import shutil

import pytest

from tests.fixtures import session_guard

# Model loads in tests do not measure the machine (seconds each; tests/unit/test_cpu_tuning.py tunes the tiny
# CLIP on purpose) and never write the user's tuning cache or register as CPU peers of real Ordo processes.
os.environ.setdefault("ORDO_AUTOTUNE", "false")
os.environ.setdefault("ORDO_CPU_PEERS_DIR", os.path.join("/tmp", f"ordo-test-cpu-peers-{os.getpid()}"))
# The naming vocabulary's prompt embeddings (~60 s of CPU per model on a slow 2-core machine) are shared by the
# session's stacks, as the machine's cache shares them between a user's libraries, and never written to theirs.
_NAMING_CACHE = os.path.join("/tmp", f"ordo-test-naming-{os.getpid()}")
os.environ.setdefault("ORDO_NAMING_CACHE", _NAMING_CACHE)

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
    shutil.rmtree(_NAMING_CACHE, ignore_errors=True)
