"""Headless Chromium from Debian (not a downloaded browser) driven by Playwright, against the real embedded
stack with its gateway serving the built web UI. Screenshots go to $ORDO_TEST_ARTIFACTS (default
tests/browser/artifacts/, gitignored; CI keeps them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordo.config import Settings
from ordo.gateway.app import STATIC_DIR
from ordo.gateway.server import GatewayThread
from ordo.launch import free_port
from tests.e2e.conftest import stop_stack
from tests.fixtures.gateway_stack import GatewayStack, start_gateway_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update"]
# CI keeps the screenshots: it points ORDO_TEST_ARTIFACTS at the folder it uploads.
ARTIFACTS = Path(os.environ.get("ORDO_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (CI's .ci/run does)")
    if not (STATIC_DIR / "index.html").exists():
        pytest.fail("the web UI is not built: run `make web`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[GatewayStack]:
    g = start_gateway_stack(tmp_path_factory.mktemp("browser-data"), tiny_clip_dir)
    yield g
    if g.stack.process.poll() is not None:  # died under the tests: its log says why
        print(f"ordo up exited with {g.stack.process.returncode}:\n{g.stack.log.read_text()[-4000:]}")
    stop_stack(g.stack)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def ui_only() -> Iterator[str]:
    """The gateway alone, with no services behind it: enough to serve the UI to tests that answer its API calls
    themselves (synthetic 100k maps and libraries) or that need every call to the services to find nobody."""
    port = free_port()
    gateway = GatewayThread(Settings(address=f"127.0.0.1:{free_port()}"), "127.0.0.1", port)
    assert gateway.start(), "the gateway did not start"
    yield f"http://127.0.0.1:{port}"
    gateway.stop()
