"""The gateway's multipart → UploadImages converter: bytes arrive in arbitrary pieces, messages leave as
soon as a chunk is full, so a file is never held whole."""

from __future__ import annotations

import os

import httpx
import pytest

from ordo.errors import InvalidInput
from ordo.gateway.uploads import CHUNK_BYTES, MultipartToUpload


def multipart(files: list[tuple[str, bytes, str]], fields: dict[str, str] | None = None) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/", files=[("files", f) for f in files], data=fields or {})
    return request.headers["content-type"], request.read()


def test_files_become_headers_and_bounded_chunks_while_the_body_arrives() -> None:
    big = os.urandom(3 * CHUNK_BYTES + 123)
    small = b"\xff\xd8tiny"
    content_type, body = multipart(
        [("holiday/beach.jpg", big, "image/jpeg"), ("b.png", small, "application/octet-stream")], {"note": "x"}
    )
    converter = MultipartToUpload(content_type, request_id="r1")
    messages = []
    emitted_before_end = 0
    for start in range(0, len(body), 7919):  # odd-sized pieces, as a network delivers them
        got = converter.feed(body[start : start + 7919])
        messages += got
        if start + 7919 < len(body) // 2:
            emitted_before_end += len(got)
    messages += converter.finish()
    assert emitted_before_end > 1  # chunks left before the body was complete

    parts = [m.WhichOneof("part") for m in messages]
    # every piece of a file goes on as it arrives (the server's idle timeout must see the client's bytes)
    headers = [i for i, part in enumerate(parts) if part == "header"]
    assert len(headers) == 2 and headers[0] == 0
    first, second = messages[0].header, messages[headers[1]].header
    assert (first.file_name, first.mime_type) == ("beach.jpg", "image/jpeg")
    assert first.source_uri == "upload://holiday/beach.jpg"
    assert messages[0].request_id == "r1"
    assert (second.file_name, second.mime_type) == ("b.png", "")  # octet-stream: let the server sniff
    assert all(len(m.chunk) <= CHUNK_BYTES for m in messages if m.WhichOneof("part") == "chunk")
    assert b"".join(m.chunk for m in messages[1 : headers[1]]) == big
    assert b"".join(m.chunk for m in messages[headers[1] + 1 :]) == small
    assert converter.files == 2


def test_a_body_that_is_not_multipart_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="multipart/form-data") as info:
        MultipartToUpload("image/jpeg")
    assert info.value.reason == "NOT_MULTIPART"
