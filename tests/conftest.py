"""Shared fixtures live in tests/fixtures/*; each is registered here once."""

pytest_plugins = [
    "tests.fixtures.datasets",
    "tests.fixtures.seaweedfs",
    "tests.fixtures.tiny_clip",
    "tests.fixtures.images",
]
