"""The session guard (``tests/fixtures/session_guard.py``) really catches what a test session leaves running.

Real processes, not mocks: a ``sleep`` child, a daemon re-parented to init (what ``celery multi``/Flower-style
launchers leave), and an inner pytest session that leaks both and must fail, naming and killing them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.fixtures import session_guard
from tests.fixtures.datasets import REPO_ROOT


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_for_pid_file(path: Path) -> int:
    deadline = time.monotonic() + 10
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.02)
    return int(path.read_text())


@pytest.fixture
def marker() -> str:
    """A marker of our own: the session's real one must not be disturbed by what this test finds or kills."""
    return uuid.uuid4().hex


def test_the_guard_sees_children_and_reparented_daemons_with_the_marker(marker: str, tmp_path: Path) -> None:
    env = {**os.environ, session_guard.SESSION_VAR: marker}
    child = subprocess.Popen(["sleep", "60"], env=env)
    daemon_pid_file = tmp_path / "daemon.pid"
    # `sh` starts a sleep in the background and exits: the sleep is re-parented, nobody holds a handle to it.
    subprocess.run(["sh", "-c", f"sleep 60 >/dev/null 2>&1 & echo $! > {daemon_pid_file}"], env=env, check=True)
    daemon = _wait_for_pid_file(daemon_pid_file)
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, session_guard.SESSION_VAR: uuid.uuid4().hex})
    try:
        found = dict(session_guard._marked_processes(marker))
        assert set(found) == {child.pid, daemon}  # not `other` (another session), not this process
        assert found[child.pid] == "sleep 60"
        for pid in (child.pid, daemon):
            _kill(pid)
        deadline = time.monotonic() + 10  # the child stays a zombie until we wait; init reaps the daemon
        while (_alive(child.pid) or _alive(daemon)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Path(f"/proc/{child.pid}").exists()  # not reaped yet: a zombie
        assert session_guard._marked_processes(marker) == []  # a dead process is not reported, zombie or not
    finally:
        for pid in (child.pid, daemon, other.pid):
            _kill(pid)
        child.wait()
        other.wait()


_INNER_CONFTEST = """
from tests.fixtures import session_guard

def pytest_configure(config):
    session_guard.configure(config)

def pytest_sessionfinish(session, exitstatus):
    session_guard.finish(session)
"""


def _inner_session(tmp_path: Path, test_body: str) -> subprocess.CompletedProcess[str]:
    """A pytest session of its own (its own marker) over one test, wired to the guard as tests/conftest.py is."""
    (tmp_path / "conftest.py").write_text(_INNER_CONFTEST)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(test_body))
    env = {k: v for k, v in os.environ.items() if k != session_guard.SESSION_VAR}  # never our session's marker
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "services")])
    env[session_guard.REDIS_VAR] = "redis://127.0.0.1:1"  # given, so the inner session starts no Redis of its own
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "test_inner.py"]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_session_that_leaves_processes_behind_fails_naming_and_killing_them(tmp_path: Path) -> None:
    result = _inner_session(
        tmp_path,
        f"""
        import subprocess
        from pathlib import Path

        def test_leaks():
            child = subprocess.Popen(["sleep", "301"], start_new_session=True)
            Path({str(tmp_path / "child.pid")!r}).write_text(str(child.pid))
            subprocess.run(["sh", "-c", "sleep 302 >/dev/null 2>&1 & echo $! > {tmp_path / "daemon.pid"}"], check=True)
        """,
    )
    child, daemon = (_wait_for_pid_file(tmp_path / name) for name in ("child.pid", "daemon.pid"))
    try:
        output = result.stdout + result.stderr
        assert result.returncode == pytest.ExitCode.TESTS_FAILED, output
        assert "1 passed" in output  # the test passed: it is the session that fails
        assert "processes started by the test session outlived it (now killed)" in output
        assert f"pid {child}: sleep 301" in output
        assert f"pid {daemon}: sleep 302" in output
        deadline = time.monotonic() + 10
        while (_alive(child) or _alive(daemon)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child) and not _alive(daemon)
    finally:
        _kill(child)
        _kill(daemon)


def test_a_session_that_stops_what_it_starts_passes(tmp_path: Path) -> None:
    result = _inner_session(
        tmp_path,
        """
        import subprocess

        def test_tidy():
            child = subprocess.Popen(["sleep", "303"])
            child.terminate()
            child.wait()
            subprocess.run(["true"], check=True)
        """,
    )
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.OK, output
    assert "outlived" not in output
