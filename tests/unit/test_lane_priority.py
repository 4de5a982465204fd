"""A serving process's threads run as SCHED_BATCH and its inference lane keeps SCHED_OTHER (``lane_priority``).

Each case runs in a child interpreter: scheduling policies belong to threads, and the test process's own must
stay as they are. The child reports what ``sched_getscheduler`` says of each thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ordo.embedding import lane_priority

pytestmark = pytest.mark.skipif(not lane_priority.supported(), reason="needs Linux scheduling policies")

CHILD = textwrap.dedent(
    """
    import json, os, threading
    from ordo.config import Settings
    from ordo.embedding.inference_lane import InferenceLane
    from ordo.grpc_api.server import prepare_serving_process

    early = []  # a thread that exists before the process is prepared
    started, stop = threading.Event(), threading.Event()
    def idle():
        early.append(threading.get_native_id()); started.set(); stop.wait()
    threading.Thread(target=idle, daemon=True).start()
    started.wait()
    prepare_serving_process(Settings(lane_priority={enabled}))
    later = []
    worker = threading.Thread(target=lambda: later.append(os.sched_getscheduler(0)))
    worker.start(); worker.join()
    lane = InferenceLane("lane")
    print(json.dumps({{
        "main": os.sched_getscheduler(0),
        "early": os.sched_getscheduler(early[0]),
        "later": later[0],
        "lane": lane.submit(0, os.sched_getscheduler, 0).result(),
    }}))
    stop.set()
    """
)


def _policies(enabled: bool, prefix: list[str] | None = None) -> dict[str, int]:
    out = subprocess.run(
        [*(prefix or []), sys.executable, "-c", CHILD.format(enabled=enabled)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_thread_but_the_lane_runs_as_batch() -> None:
    policies = _policies(True)
    assert policies == {
        "main": os.SCHED_BATCH,
        "early": os.SCHED_BATCH,  # threads that existed before
        "later": os.SCHED_BATCH,  # threads created afterwards inherit it
        "lane": os.SCHED_OTHER,  # the lane switched itself back
    }


def test_the_setting_turns_it_off() -> None:
    assert set(_policies(False).values()) == {os.SCHED_OTHER}


@pytest.mark.parametrize("policy", ["SCHED_IDLE", "SCHED_BATCH"])
def test_a_process_started_under_another_policy_is_left_alone(policy: str) -> None:
    """`chrt --idle 0 ordo up` or systemd's `CPUSchedulingPolicy=batch` was someone's choice: no thread leaves it,
    the lane included."""
    policies = _policies(True, prefix=[sys.executable, "-c", _UNDER_POLICY.format(policy=policy)])
    assert set(policies.values()) == {getattr(os, policy)}


# Puts itself under a policy (unprivileged), then execs the child with the rest of argv.
_UNDER_POLICY = (
    "import os, sys; os.sched_setscheduler(0, os.{policy}, os.sched_param(0)); os.execv(sys.argv[1], sys.argv[1:])"
)


def test_it_refuses_nothing_where_the_platform_has_no_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lane_priority, "_BATCH", None)
    assert lane_priority.demote_process_threads() == 0
    assert lane_priority.promote_current_thread() is False
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
