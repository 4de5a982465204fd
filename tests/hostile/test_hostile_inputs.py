"""The hostile corpus through every entry point of one real `ordo up` (gRPC, REST gateway, CLI, server-side
ingest): each entry gets its outcome and reason, nothing else in the batch is lost, nothing hangs, and the
server answers health checks and searches afterwards. Plus the stream-level attacks: bad headers in the middle
of an upload stream, open streams past the caps, oversized and malformed REST bodies on every route."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from ordo.grpc_api.status import error_reason
from ordo.v1 import common_pb2, ingest_pb2, search_pb2
from tests.e2e.conftest import stop_stack
from tests.fixtures.gateway_stack import GatewayStack, start_gateway_stack
from tests.hostile.corpus import MAX_IMAGE_BYTES, Case, build, regular_files

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
FINAL = {common_pb2.JOB_STATE_SUCCEEDED, common_pb2.JOB_STATE_PARTIALLY_SUCCEEDED, common_pb2.JOB_STATE_FAILED}
STREAMS_PER_CLIENT = 3


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[GatewayStack]:
    import os

    saved = {k: os.environ.get(k) for k in ("ORDO_MAX_IMAGE_BYTES", "ORDO_MAX_STREAMS_PER_CLIENT")}
    os.environ["ORDO_MAX_IMAGE_BYTES"] = str(MAX_IMAGE_BYTES)
    os.environ["ORDO_MAX_STREAMS_PER_CLIENT"] = str(STREAMS_PER_CLIENT)
    try:
        # Server-side ingest reads only under the configured roots: the session's temp folder holds the corpus.
        roots = {"ORDO_INGEST_ROOTS": str(tmp_path_factory.getbasetemp())}
        g = start_gateway_stack(tmp_path_factory.mktemp("hostile-data"), tiny_clip_dir, roots)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield g
    stop_stack(g.stack)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    root = tmp_path_factory.mktemp("hostile") / "corpus"
    return root, build(root)


def wait_job(gw: GatewayStack, job_id: str, timeout: float = 120) -> common_pb2.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = gw.stack.client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id)).job
        if job.state in FINAL and job.pending == 0:
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.2)


def name_of(uri: str, root: Path) -> str:
    path = urllib.parse.unquote(uri.removeprefix("file://").removeprefix("upload://"))
    prefix = str(root) + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def assert_healthy(gw: GatewayStack) -> None:
    client = gw.stack.client
    assert client.health("ingest") == "SERVING"
    search = client.search.SearchText(search_pb2.SearchTextRequest(query="a photo", page_size=3), timeout=30)
    assert search.model_id
    assert httpx.get(f"{gw.base_url}/api/status", timeout=30).status_code == 200


def check_failures(failures: dict[str, str], cases: list[Case], accepted: set[str]) -> None:
    """Every failing case is reported under its own name with its reason; every good one is not."""
    problems = []
    for case in cases:
        if case.outcome == "fail":
            if failures.get(case.name) != case.reason:
                problems.append(f"{case.name!r}: expected {case.reason}, got {failures.get(case.name)}")
        elif case.name in failures:
            problems.append(f"{case.name!r}: expected to be ingested, failed with {failures[case.name]}")
        elif case.name not in accepted:
            problems.append(f"{case.name!r}: expected to be ingested, not reported at all")
    assert not problems, "\n".join(problems)


def test_corpus_has_at_least_50_kinds(corpus: tuple[Path, list[Case]]) -> None:
    _, cases = corpus
    assert len(cases) >= 50
    assert len({c.reason for c in cases if c.outcome == "fail"}) >= 10


def test_server_side_ingest_reports_every_entry_and_loses_nothing(
    gw: GatewayStack, corpus: tuple[Path, list[Case]]
) -> None:
    root, cases = corpus
    started = time.monotonic()
    job = gw.stack.client.ingest.IngestUris(ingest_pb2.IngestUrisRequest(uris=[str(root)])).job
    job = wait_job(gw, job.job_id)
    assert time.monotonic() - started < 90  # the FIFO and /dev/zero did not hang it
    failures = {name_of(f.source_uri, root): f.reason for f in job.failures}
    good = [c for c in cases if c.outcome == "ok"]
    # Links resolve to their target, so the link's success shows as the target's; the rest by name.
    check_failures(failures, cases, {c.name for c in good})
    assert job.failed == len([c for c in cases if c.outcome == "fail"])
    assert job.succeeded + job.duplicates == len(good)
    assert job.duplicates >= 3  # two copies and a link of plain.jpg
    assert_healthy(gw)


def test_cli_ingest_reports_every_entry(gw: GatewayStack, corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    started = time.monotonic()
    result = gw.stack.cli("ingest", str(root), "--json", timeout=180)
    assert time.monotonic() - started < 150
    assert result.returncode == 1, result.stderr[-2000:]  # some files failed: reported, not fatal
    report = json.loads(result.stdout[result.stdout.index("{") :])
    (job,) = report["jobs"]  # one job: the stream was never aborted
    failures = {name_of(f["sourceUri"], root): f["reason"] for f in job.get("failures", [])}
    local = {name_of(f["source_uri"], root): f["reason"] for f in report["local_failures"]}
    assert not set(failures) & set(local)
    failures.update(local)
    good = [c for c in cases if c.outcome == "ok"]
    check_failures(failures, cases, {c.name for c in good})
    assert int(job.get("succeeded", 0)) + int(job.get("duplicates", 0)) == len(good)
    assert_healthy(gw)


def test_grpc_upload_of_every_path_keeps_the_batch(gw: GatewayStack, corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    paths = [root / c.name for c in cases if c.name not in (".thumbnails", "link_to_sub", "link_to_root")]
    unreadable: list[tuple[Path, str]] = []
    response = gw.stack.client.upload(paths, unreadable=unreadable, timeout=120)
    assert response.job.job_id
    # One result per file sent, in order (the server records its own upload:// source, so results are
    # matched to paths by position, not by the client's path).
    refused = {p for p, _ in unreadable}
    sent_paths = [str(p.relative_to(root)) for p in paths if p not in refused]
    assert len(response.results) == len(sent_paths)
    results = list(zip(sent_paths, response.results, strict=True))
    failures = {name: r.failure.reason for name, r in results if r.failure.reason}
    failures.update({str(p.relative_to(root)): text.split(":")[0] for p, text in unreadable})
    accepted = {name for name, r in results if r.asset_id}
    sent = [c for c in cases if c.name not in (".thumbnails", "link_to_sub", "link_to_root", ".hidden.jpg")]
    # A named hidden file is sent like any other file named explicitly.
    check_failures({k: v for k, v in failures.items()}, [c for c in sent if c.stage != "embed"], accepted)
    job = wait_job(gw, response.job.job_id)
    worker_failures = {name_of(f.source_uri, root): f.reason for f in job.failures}
    for case in cases:
        if case.stage == "embed":
            assert worker_failures.get(case.name) == case.reason, case.name
    assert_healthy(gw)


def test_rest_upload_of_every_file_reports_each(gw: GatewayStack, corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    files = [
        ("files", (c.name, (root / c.name).read_bytes(), "application/octet-stream"))
        for c in regular_files(root, cases)
    ]
    response = httpx.post(f"{gw.base_url}/api/uploads", files=files, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert len(results) == len(files)
    for (_, (name, _, _)), result in zip(files, results, strict=True):
        case = next(c for c in cases if c.name == name)
        if case.outcome == "ok" or case.stage == "embed":
            assert result["outcome"] in ("FILE_OUTCOME_NEW", "FILE_OUTCOME_DUPLICATE"), (name, result)
        else:
            assert result["failure"]["reason"] == case.reason, (name, result)
    assert_healthy(gw)


def _messages(*items: ingest_pb2.UploadImagesRequest) -> Iterator[ingest_pb2.UploadImagesRequest]:
    yield from items


def test_bad_headers_mid_stream_fail_one_file_not_the_stream(gw: GatewayStack, corpus: tuple[Path, list[Case]]) -> None:
    root, _ = corpus
    good = (root / "plain.jpg").read_bytes()
    other = (root / "sub" / "nested.jpg").read_bytes()
    header = ingest_pb2.UploadFileHeader
    request = ingest_pb2.UploadImagesRequest
    response = gw.stack.client.ingest.UploadImages(
        _messages(
            request(chunk=b"stray bytes before any header"),
            request(header=header(file_name="first.jpg")),
            request(chunk=good),
            request(header=header(file_name="")),  # no name
            request(chunk=good),
            request(header=header(file_name="x" * 5000)),  # name over the limit
            request(chunk=other),
            request(header=header(file_name="meta.jpg", metadata={f"k{i}": "v" for i in range(100)})),
            request(chunk=other),
            request(header=header(file_name="liar.jpg", size_bytes=len(other) + 10)),  # announced more
            request(chunk=other),
            request(header=header(file_name="last.jpg")),
            request(chunk=other),
        ),
        timeout=60,
    )
    outcomes = [(r.outcome, r.failure.reason) for r in response.results]
    assert outcomes == [
        (ingest_pb2.FILE_OUTCOME_DUPLICATE, ""),  # plain.jpg's bytes are in the collection already
        (ingest_pb2.FILE_OUTCOME_FAILED, "MISSING_FILE_NAME"),
        (ingest_pb2.FILE_OUTCOME_FAILED, "FIELD_TOO_LONG"),
        (ingest_pb2.FILE_OUTCOME_FAILED, "TOO_MANY_ITEMS"),
        (ingest_pb2.FILE_OUTCOME_FAILED, "SIZE_MISMATCH"),
        (ingest_pb2.FILE_OUTCOME_DUPLICATE, ""),
    ]
    assert response.stream_error.reason == "CHUNK_BEFORE_HEADER"
    assert "x" * 100 not in response.results[2].failure.message  # the long name is not echoed
    assert response.job.job_id


def test_open_streams_are_capped_and_never_starve_unary_calls(gw: GatewayStack) -> None:
    """Client-paced upload streams hold their slot; one more is RESOURCE_EXHAUSTED with a retry hint,
    while health checks, searches and REST keep answering."""
    client = gw.stack.client
    gates: list[queue.Queue[object]] = []
    calls = []

    def held(gate: queue.Queue[object]) -> Iterator[ingest_pb2.UploadImagesRequest]:
        yield ingest_pb2.UploadImagesRequest(header=ingest_pb2.UploadFileHeader(file_name="slow.jpg"))
        gate.get()  # hold the stream open until the test lets go

    try:
        for _ in range(STREAMS_PER_CLIENT):
            gate: queue.Queue[object] = queue.Queue()
            gates.append(gate)
            calls.append(client.ingest.UploadImages.future(held(gate), timeout=60))
        time.sleep(1.0)
        with pytest.raises(grpc.RpcError) as caught:
            client.ingest.UploadImages(held(queue.Queue()), timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(caught.value) == "TOO_MANY_STREAMS"
        started = time.monotonic()
        assert_healthy(gw)
        assert time.monotonic() - started < 20
    finally:
        for gate in gates:
            gate.put(None)
    for call in calls:
        call.result(timeout=30)  # released: each finished its (empty) file and its job
    client.ingest.UploadImages(held(_done_queue()), timeout=30)  # slots came back


def _done_queue() -> queue.Queue[object]:
    gate: queue.Queue[object] = queue.Queue()
    gate.put(None)
    return gate


def test_sse_streams_are_capped_per_client(gw: GatewayStack, corpus: tuple[Path, list[Case]]) -> None:
    """An SSE watch of a job that is still running holds a slot; past the per-client cap it is 429."""
    client = gw.stack.client
    gate: queue.Queue[object] = queue.Queue()

    def held() -> Iterator[ingest_pb2.UploadImagesRequest]:
        yield ingest_pb2.UploadImagesRequest(header=ingest_pb2.UploadFileHeader(file_name="a.jpg"))
        gate.get()

    upload = client.ingest.UploadImages.future(held(), timeout=60)  # a job that stays open (1 stream)
    try:
        deadline = time.monotonic() + 10
        jobs = []
        while not jobs and time.monotonic() < deadline:
            jobs = [j for j in client.ingest.ListJobs(ingest_pb2.ListJobsRequest()).jobs if j.state not in FINAL]
            time.sleep(0.1)
        assert jobs
        url = f"{gw.base_url}/api/jobs/{jobs[0].job_id}/events"
        statuses: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            with httpx.stream("GET", url, timeout=30) as response:
                statuses.append(response.status_code)
                for _ in response.iter_lines():
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=watch, daemon=True) for _ in range(STREAMS_PER_CLIENT + 1)]
        for thread in threads:
            thread.start()
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while len(statuses) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(statuses) == [200] * (len(threads) - 1) + [429] or 429 in statuses, statuses
        assert httpx.get(f"{gw.base_url}/api/status", timeout=10).status_code == 200
        stop.set()
    finally:
        gate.put(None)
    upload.result(timeout=30)


# --- REST: every route, malformed -------------------------------------------------------------------

BAD_SEGMENTS = ["x" * 5000, "..%2F..%2Fetc", "%00", "%F0%28%8C%28", "nope"]
BAD_QUERY = [
    {"k": "0"},
    {"k": "-1"},
    {"k": "1e9"},
    {"page_size": "-5"},
    {"page_size": "99999999999999999999"},
    {"page_token": "!!!" * 500},
    {"q": "x" * 20000},
    {"min_similarity": "nan"},
    {"kind": "banana"},
    {"recursive": "maybe"},
]
BAD_BODIES: list[tuple[bytes, str]] = [
    (b"{not json", "application/json"),
    (b"[]", "application/json"),
    (b'{"query": "cat", "top_k": 0}', "application/json"),
    (b'{"query": "cat", "min_score": NaN}', "application/json"),
    (b'{"query": "cat", "filter": {"kinds": ["banana"]}}', "application/json"),
    (b'{"asset_id": "' + b"a" * 5000 + b'"}', "application/json"),
    (b'{"algorithm": "hdbscan", "min_cluster_size": 2147483647}', "application/json"),
    (
        b"--x\r\nContent-Disposition: form-data; name=files; filename=a.jpg\r\n\r\nabc",
        "multipart/form-data; boundary=x",
    ),
    (b"\xff\xfe garbage", "multipart/form-data"),
    (b"garbage", "text/plain"),
]


def _route_urls(gw: GatewayStack) -> list[tuple[str, str]]:
    spec = httpx.get(f"{gw.base_url}/openapi.json", timeout=30).json()
    routes = []
    for path, methods in spec["paths"].items():
        for method in methods:
            routes.append((method.upper(), path))
    return routes


def _fill(path: str, segment: str) -> str:
    out = []
    for part in path.split("/"):
        out.append(segment if part.startswith("{") else part)
    return "/".join(out)


def test_every_route_answers_malformed_input_with_a_4xx_and_ordo_body(gw: GatewayStack) -> None:
    routes = _route_urls(gw)
    assert len(routes) >= 15
    server_errors = []
    with httpx.Client(base_url=gw.base_url, timeout=30) as http:
        for method, path in routes:
            attempts: list[dict] = []
            for segment in BAD_SEGMENTS if "{" in path else ["-"]:
                url = _fill(path, segment)
                for query in BAD_QUERY:
                    attempts.append({"method": method, "url": url, "params": query})
                if method in ("POST", "PATCH", "PUT"):
                    for body, content_type in BAD_BODIES:
                        attempts.append(
                            {"method": method, "url": url, "content": body, "headers": {"content-type": content_type}}
                        )
            for attempt in attempts:
                if path.endswith("/events") and attempt.get("params") is not None:
                    attempt["timeout"] = 5
                try:
                    response = http.request(**attempt)
                except httpx.TransportError as exc:
                    server_errors.append(
                        (attempt["method"], attempt["url"][:80], str(attempt.get("params"))[:80], repr(exc))
                    )
                    continue
                if response.status_code >= 500 and response.status_code != 503:
                    server_errors.append(
                        (attempt["method"], attempt["url"][:80], response.status_code, response.text[:200])
                    )
                elif response.status_code >= 400:
                    body = response.json()
                    assert set(body) >= {"detail", "reason", "code"}, (attempt["url"][:80], body)
                    assert "object at 0x" not in body["detail"] and "Traceback" not in body["detail"]
    assert not server_errors, server_errors
    assert_healthy(gw)


def test_search_k_out_of_range_is_400(gw: GatewayStack) -> None:
    for k in ("0", "-1", "1e9", "1001"):
        response = httpx.get(f"{gw.base_url}/api/search", params={"q": "cat", "k": k}, timeout=30)
        assert response.status_code == 400, (k, response.text)
        assert response.json()["code"] == "INVALID_ARGUMENT"


def test_oversized_bodies_are_refused_before_they_are_read(gw: GatewayStack) -> None:
    # Announced: refused from the header, with nothing read (a raw socket: clients refuse to lie).
    host, port = gw.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 209715200\r\n\r\n{}"
        )
        received = b""
        while b"BODY_TOO_LARGE" not in received:  # headers and body may come in separate packets
            piece = sock.recv(65536)
            if not piece:
                break
            received += piece
        answer = received.decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "BODY_TOO_LARGE" in answer

    # Not announced (chunked): cut off once the limit passes.
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(64):
            yield b"a" * 65536
        yield b'"}'

    response = httpx.post(
        f"{gw.base_url}/api/search", content=chunks(), headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 413
    # A search image over its limit, streamed as multipart: refused before it is spooled.
    big = b"\xff\xd8\xff" + b"\0" * (33 * 1024 * 1024)
    response = httpx.post(
        f"{gw.base_url}/api/search/image", files={"image": ("big.jpg", big, "image/jpeg")}, timeout=60
    )
    assert response.status_code == 413
    assert_healthy(gw)


def test_grpc_request_fields_are_bounded_with_reasons(gw: GatewayStack) -> None:
    client = gw.stack.client
    cases = [
        (lambda: client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id="j" * 10_000)), "FIELD_TOO_LONG"),
        (lambda: client.search.SearchText(search_pb2.SearchTextRequest(query="q" * 10_000)), "FIELD_TOO_LONG"),
        (
            lambda: client.search.SearchText(search_pb2.SearchTextRequest(query="cat", min_score=float("nan"))),
            "NOT_FINITE",
        ),
        (
            lambda: client.search.SearchText(
                search_pb2.SearchTextRequest(query="cat", filter=common_pb2.Filter(kinds=[42]))
            ),
            "BAD_ENUM",
        ),
        (
            lambda: client.search.SearchText(
                search_pb2.SearchTextRequest(query="cat", filter=common_pb2.Filter(asset_ids=["a"] * 5000))
            ),
            "TOO_MANY_ITEMS",
        ),
        (lambda: client.ingest.IngestUris(ingest_pb2.IngestUrisRequest(uris=["/" + "d" * 5000])), "FIELD_TOO_LONG"),
    ]
    for call, reason in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == reason
        assert "jjjjjjjjjj" not in caught.value.details() and "qqqqqqqqqq" not in caught.value.details()
