"""Every List*/Search path pages through ``ordo.paging``: one token format, bound to its request, coerced sizes.

The job stores are covered by the conformance suite (``tests/conformance/test_job_store.py``); search by
``tests/integration/test_hybrid_search.py``. Here: the catalog, the run store and the wire's job kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordo import paging
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.analysis.runs import RunStore
from ordo.core.catalog import AssetCatalog, token_after
from ordo.domain import Job, JobState
from ordo.errors import InvalidInput, Reason
from ordo.grpc_api.convert import job_pb
from ordo.v1 import common_pb2

HOSTILE = "A" * 100_000


def _refused(call: Callable[[], object]) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.reason == Reason.BAD_PAGE_TOKEN


def test_catalog_tokens_are_ours_and_bound_to_the_listing(tmp_path: Path) -> None:
    catalog = AssetCatalog(LocalDirectoryStore(tmp_path, fsync=False))
    assets, token = catalog.list(page_size=5000)  # over the maximum: coerced, not refused
    assert assets == [] and token == ""
    assert paging.decode_token(token_after("a" * 64), "assets") == "a" * 64
    _refused(lambda: catalog.list(10, "a" * 64))  # a bare id is not a token any more
    _refused(lambda: catalog.list(10, HOSTILE))
    _refused(lambda: catalog.list(10, paging.encode_token("a" * 64, "jobs")))  # another listing's token
    _refused(lambda: catalog.list(10, paging.encode_token("../../etc", "assets")))  # not an asset id


def test_run_tokens_are_bound_to_the_kind(tmp_path: Path) -> None:
    runs = RunStore(LocalDirectoryStore(tmp_path, fsync=False))
    assert runs.list(10) == ([], "")
    token = paging.encode_token("r20200101t000000000000-abcdef", "runs", "clustering")
    assert runs.list(10, token, "clustering") == ([], "")
    _refused(lambda: runs.list(10, token, "projection"))  # a token from another request
    _refused(lambda: runs.list(10, HOSTILE))
    _refused(lambda: runs.list(10, paging.encode_token("../x", "runs", "")))


@pytest.mark.parametrize("kind", ["ingest", "reembed", "recover", "clustering", "projection"])
def test_every_job_kind_has_an_enum_value(kind: str) -> None:
    now = datetime.now(UTC)
    message = job_pb(Job(job_id="j", kind=kind, state=JobState.RUNNING, created_at=now, updated_at=now))
    assert message.job_kind != common_pb2.JOB_KIND_UNSPECIFIED
    assert common_pb2.JobKind.Name(message.job_kind) == f"JOB_KIND_{kind.upper()}"
    assert message.kind == kind  # the deprecated string is still filled
