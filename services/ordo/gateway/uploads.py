"""Streams a multipart/form-data upload into the UploadImages client stream as the bytes arrive.

The body is parsed incrementally (python-multipart's push parser), each file part becomes a header message
followed by chunk messages, and a small bounded queue hands them to the gRPC call running on a thread. So a
gigabyte of photos never sits in the gateway's memory or on its disk: at most ``QUEUE_DEPTH`` chunks do."""

from __future__ import annotations

import asyncio
import posixpath
import queue
from collections.abc import AsyncIterator, Iterator
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ordo.errors import InvalidInput, Reason
from ordo.grpc_api.status import error_reason
from ordo.v1 import ingest_pb2

CHUNK_BYTES = 256 * 1024
QUEUE_DEPTH = 16
_END = object()
_ABORT = object()


class MultipartToUpload:
    """Push parser: ``feed`` bytes of the body, get back the UploadImagesRequest messages they complete.

    Parts with a ``filename`` are files; other form fields are ignored. A file picked from a folder keeps
    its relative path in the source URI (``upload://holiday/beach.jpg``)."""

    def __init__(self, content_type: str, request_id: str = "") -> None:
        kind, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise InvalidInput(
                "send the images as multipart/form-data (one part per file, field name 'files')",
                reason=Reason.NOT_MULTIPART,
            )
        self.request_id = request_id
        self.files = 0
        self._out: list[ingest_pb2.UploadImagesRequest] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._in_file = False
        self._buffer = bytearray()
        callbacks: Any = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }
        self._parser = MultipartParser(boundary, callbacks)

    def feed(self, data: bytes) -> list[ingest_pb2.UploadImagesRequest]:
        try:
            self._parser.write(data)
        except MultipartParseError as exc:
            raise InvalidInput(f"the multipart body is malformed ({exc})", reason=Reason.BAD_MULTIPART) from None
        if self._in_file and self._buffer:
            # What arrived goes on at once: the server's idle timeout then measures the client's silence,
            # not this buffer's (a slow client's 256 KiB would otherwise look idle to the server).
            self._out.append(ingest_pb2.UploadImagesRequest(chunk=bytes(self._buffer)))
            self._buffer.clear()
        return self._take()

    def finish(self) -> list[ingest_pb2.UploadImagesRequest]:
        try:
            self._parser.finalize()
        except MultipartParseError as exc:
            raise InvalidInput(f"the multipart body is malformed ({exc})", reason=Reason.BAD_MULTIPART) from None
        return self._take()

    def _take(self) -> list[ingest_pb2.UploadImagesRequest]:
        out, self._out = self._out, []
        return out

    # --- parser callbacks ----------------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""
        self._in_file = False
        self._buffer.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw_name = params.get(b"filename")
        if not raw_name:
            return  # a plain form field
        path = raw_name.decode("utf-8", "replace").replace("\\", "/").lstrip("/")
        name = posixpath.basename(path) or "upload"
        mime = self._headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
        header = ingest_pb2.UploadFileHeader(
            file_name=name,
            mime_type="" if mime == "application/octet-stream" else mime,
            source_uri=f"upload://{path}",
        )
        self._out.append(ingest_pb2.UploadImagesRequest(header=header, request_id=self.request_id))
        self._in_file = True
        self.files += 1

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self._buffer += data[start:end]
        while len(self._buffer) >= CHUNK_BYTES:
            self._out.append(ingest_pb2.UploadImagesRequest(chunk=bytes(self._buffer[:CHUNK_BYTES])))
            del self._buffer[:CHUNK_BYTES]

    def _part_end(self) -> None:
        if self._in_file and self._buffer:
            self._out.append(ingest_pb2.UploadImagesRequest(chunk=bytes(self._buffer)))
        self._buffer.clear()
        self._in_file = False


class UploadIdle(Exception):
    """The client sent no body bytes for the idle timeout: the upload was cut. ``response`` holds the job and
    the outcomes of the files completed before the silence (None when no file had started)."""

    def __init__(self, message: str, response: ingest_pb2.UploadImagesResponse | None) -> None:
        super().__init__(message)
        self.message = message
        self.response = response


IDLE_REASON = "UPLOAD_IDLE_TIMEOUT"
# The gateway's own limit, for a server configured with a longer idle timeout than the gateway's settings.
_GATEWAY_IDLE_FACTOR = 1.5


async def stream_upload(
    body: AsyncIterator[bytes],
    content_type: str,
    request_id: str,
    stub: Any,
    library: str = "",
    idle_timeout_s: float = 60.0,
) -> ingest_pb2.UploadImagesResponse:
    """Feeds the body to ``stub.UploadImages`` while it arrives; returns its response.

    If the client goes away mid-upload the gRPC call is cancelled rather than finished, so a half-sent
    file is never ingested as if it were whole. If the client stalls (no bytes for ``idle_timeout_s``), the
    server cuts the stream (its own idle timeout: it has seen nothing either, as every piece of the body is
    forwarded at once) and this raises :class:`UploadIdle` with what the server kept."""
    converter = MultipartToUpload(content_type, request_id)
    pipe: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)

    def messages() -> Iterator[ingest_pb2.UploadImagesRequest]:
        first = True
        while (message := pipe.get()) is not _END:
            if message is _ABORT:
                return
            if first and library:
                message.library = library  # the target library travels on the first message
            first = False
            yield message

    call = stub.UploadImages.future(messages())
    loop = asyncio.get_running_loop()
    answered = loop.create_future()
    call.add_done_callback(lambda _: loop.call_soon_threadsafe(lambda: answered.done() or answered.set_result(None)))

    async def put(item: Any) -> bool:
        while True:
            if call.done():
                return False  # the server answered early (an error): stop feeding it
            try:
                pipe.put_nowait(item)
                return True
            except queue.Full:
                await asyncio.sleep(0.002)

    pieces = body.__aiter__()
    try:
        feeding = True
        while True:
            piece = asyncio.ensure_future(pieces.__anext__())
            done, _ = await asyncio.wait(
                {piece, answered}, timeout=idle_timeout_s * _GATEWAY_IDLE_FACTOR, return_when=asyncio.FIRST_COMPLETED
            )
            if piece not in done:  # the client is silent, and the server cut the stream or we give up
                piece.cancel()
                raise _cut(call, idle_timeout_s)
            try:
                data = piece.result()
            except StopAsyncIteration:
                break
            for message in converter.feed(data):
                feeding = feeding and await put(message)
        for message in converter.finish():
            feeding = feeding and await put(message)
        if feeding:
            if converter.files == 0:
                call.cancel()
                raise InvalidInput("the upload held no files (send parts with a filename)", reason=Reason.EMPTY_UPLOAD)
            await put(_END)
    except BaseException:
        call.cancel()
        _drain_and_abort(pipe)
        raise
    # The call runs on gRPC's own threads; wait for its answer without holding a thread here.
    await answered
    return call.result()


def _cut(call: Any, idle_timeout_s: float) -> UploadIdle:
    """What to tell a client whose body stalled: the server's answer when it cut the stream (the job and the
    files completed before), else (the gateway gave up first) nothing but the reason."""
    silent = f"the upload sent no data for {idle_timeout_s:g} s and was closed"
    if not call.done():
        return UploadIdle(silent, None)
    error = call.exception()
    if error is not None:
        if _reason(error) == IDLE_REASON:  # cut before any file started: nothing was kept
            return UploadIdle(silent, None)
        raise error  # the server refused the upload (rights, stream caps...): its own status and reason
    response = call.result()
    return UploadIdle(response.stream_error.message or silent, response)


def _reason(error: BaseException) -> str:
    try:
        return error_reason(error)  # type: ignore[arg-type]
    except Exception:  # a status without details (a transport failure)
        return ""


def _drain_and_abort(pipe: queue.Queue[Any]) -> None:
    while True:
        try:
            pipe.get_nowait()
        except queue.Empty:
            break
    pipe.put_nowait(_ABORT)
