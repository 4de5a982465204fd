"""A silent or stalled upload is cut after ORDO_UPLOAD_IDLE_TIMEOUT_S, over a real gRPC channel and real HTTP:
the client gets a clear reason, its stream slot comes back, and the files completed before it keep their job
and outcomes. The stack allows one stream per client, so a slot that was not released shows as
RESOURCE_EXHAUSTED on the next upload."""

from __future__ import annotations

import io
import json
import queue
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from PIL import Image

from ordo.grpc_api.status import error_reason
from ordo.v1 import ingest_pb2
from tests.e2e.conftest import stop_stack
from tests.fixtures.gateway_stack import GatewayStack, start_gateway_stack

IDLE_S = 1.5


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[GatewayStack]:
    env = {"ORDO_UPLOAD_IDLE_TIMEOUT_S": str(IDLE_S), "ORDO_MAX_STREAMS_PER_CLIENT": "1"}
    g = start_gateway_stack(tmp_path_factory.mktemp("idle-data"), tiny_clip_dir, env)
    yield g
    stop_stack(g.stack)


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 40), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)).save(out, "JPEG")
    return out.getvalue()


def _then_silence(items: list[ingest_pb2.UploadImagesRequest], gate: queue.Queue[object]):
    yield from items
    gate.get()  # the client stays connected and says nothing more


def _upload_works(gw: GatewayStack, seed: int) -> None:
    """A fresh upload from the same client is admitted (the cut stream gave its slot back)."""
    request = ingest_pb2.UploadImagesRequest
    response = gw.stack.client.ingest.UploadImages(
        iter([request(header=ingest_pb2.UploadFileHeader(file_name="next.jpg")), request(chunk=_jpeg(seed))]),
        timeout=30,
    )
    assert response.results[0].outcome == ingest_pb2.FILE_OUTCOME_NEW


def test_a_silent_grpc_upload_is_cut_and_its_slot_released(gw: GatewayStack) -> None:
    gate: queue.Queue[object] = queue.Queue()
    started = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            gw.stack.client.ingest.UploadImages(_then_silence([], gate), timeout=30)
    finally:
        gate.put(None)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_reason(caught.value) == "UPLOAD_IDLE_TIMEOUT"
    assert IDLE_S <= time.monotonic() - started < IDLE_S + 10
    _upload_works(gw, 1)


def test_a_grpc_upload_stalled_mid_file_keeps_the_files_before(gw: GatewayStack) -> None:
    request, header = ingest_pb2.UploadImagesRequest, ingest_pb2.UploadFileHeader
    whole, partial = _jpeg(2), _jpeg(3)
    messages = [
        request(header=header(file_name="whole.jpg")),
        request(chunk=whole),
        request(header=header(file_name="cut.jpg")),
        request(chunk=partial[: len(partial) // 2]),
    ]
    gate: queue.Queue[object] = queue.Queue()
    try:
        response = gw.stack.client.ingest.UploadImages(_then_silence(messages, gate), timeout=30)
    finally:
        gate.put(None)
    assert response.stream_error.reason == "UPLOAD_IDLE_TIMEOUT"
    assert [(r.file_name, r.outcome, r.failure.reason) for r in response.results] == [
        ("whole.jpg", ingest_pb2.FILE_OUTCOME_NEW, ""),
        ("cut.jpg", ingest_pb2.FILE_OUTCOME_FAILED, "UPLOAD_IDLE_TIMEOUT"),
    ]
    job = gw.stack.client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=response.job.job_id)).job
    assert job.job_id == response.job.job_id  # the job and its outcomes are kept
    _upload_works(gw, 4)


def _raw_upload(gw: GatewayStack, body_prefix: bytes, boundary: str) -> tuple[int, dict[str, object], float]:
    """POST /api/uploads announcing a 1 MB body, send ``body_prefix`` only, then wait for the answer."""
    url = urllib.parse.urlsplit(gw.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        head = (
            f"POST /api/uploads HTTP/1.1\r\nHost: {url.hostname}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 1000000\r\n\r\n"
        )
        started = time.monotonic()
        sock.sendall(head.encode() + body_prefix)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
        elapsed = time.monotonic() - started
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1][: _length(data)]), elapsed


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def test_a_stalled_rest_upload_is_408_with_the_files_before(gw: GatewayStack) -> None:
    boundary = "idleboundary"
    whole, partial = _jpeg(5), _jpeg(6)

    def part(name: str, data: bytes) -> bytes:
        return (
            f"--{boundary}\r\nContent-Disposition: form-data; name=files; filename={name}\r\n"
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode() + data

    prefix = part("whole.jpg", whole) + b"\r\n" + part("cut.jpg", partial[:300])
    status, body, elapsed = _raw_upload(gw, prefix, boundary)
    assert status == 408, body
    assert body["reason"] == "UPLOAD_IDLE_TIMEOUT" and body["code"] == "DEADLINE_EXCEEDED"
    results = body["results"]
    assert isinstance(results, list)
    assert [(r["file_name"], r["outcome"]) for r in results] == [
        ("whole.jpg", "FILE_OUTCOME_NEW"),
        ("cut.jpg", "FILE_OUTCOME_FAILED"),
    ]
    assert body["job"]["job_id"]  # type: ignore[index]
    assert elapsed < IDLE_S * 1.5 + 10
    _upload_works(gw, 7)


def test_a_silent_rest_upload_is_408(gw: GatewayStack) -> None:
    status, body, _ = _raw_upload(gw, b"", "silent")
    assert status == 408 and body["reason"] == "UPLOAD_IDLE_TIMEOUT", body
    _upload_works(gw, 8)
