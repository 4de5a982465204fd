"""A small Python client over the gRPC contracts (what the CLI uses; other programs may too)."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordo import retry_policy
from ordo.config import Settings
from ordo.errors import OrdoError
from ordo.v1 import analysis_pb2_grpc, common_pb2, ingest_pb2, ingest_pb2_grpc, search_pb2_grpc

CHUNK_BYTES = 1024 * 1024


def _with_processing(
    messages: Iterator[ingest_pb2.UploadImagesRequest], processing: common_pb2.ProcessingOptions
) -> Iterator[ingest_pb2.UploadImagesRequest]:
    for i, message in enumerate(messages):
        if i == 0:
            message.processing.CopyFrom(processing)
        yield message


def _open_channel(address: str, settings: Settings) -> grpc.Channel:
    """A channel to ``address`` with TLS and the API key from settings (ordo.security.tls).

    The channel retries idempotent reads on UNAVAILABLE and reconnects quickly after a server restart
    (``ordo.retry_policy``). It keeps its own connections (a local subchannel pool) rather than sharing gRPC's
    process-wide ones: a shared connection to an address whose earlier server has gone sits in reconnect
    backoff, and a new client to a new server on that same port would inherit the refusal."""
    from ordo.security.tls import make_channel

    limit = settings.max_message_bytes
    options = [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        ("grpc.use_local_subchannel_pool", 1),
        *retry_policy.channel_options(),
    ]
    return make_channel(address, settings, options)


def _with_library(
    messages: Iterator[ingest_pb2.UploadImagesRequest], library: str
) -> Iterator[ingest_pb2.UploadImagesRequest]:
    """The target library travels on the first message."""
    for i, message in enumerate(messages):
        if i == 0:
            message.library = library
        yield message


class OrdoClient:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()  # pyright: ignore[reportCallIssue]: pydantic-settings fills fields from the environment
        s = self.settings
        self.addresses = {name: s.service_address(name) for name in ("ingest", "search", "analysis")}
        # One channel per address for this client's life; services on one address share it.
        self._channels: dict[str, grpc.Channel] = {}
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self._channel("ingest"))
        self.search = search_pb2_grpc.SearchServiceStub(self._channel("search"))
        self.analysis = analysis_pb2_grpc.AnalysisServiceStub(self._channel("analysis"))

    def _channel(self, service: str) -> grpc.Channel:
        address = self.addresses[service]
        if address not in self._channels:
            self._channels[address] = _open_channel(address, self.settings)
        return self._channels[address]

    def close(self) -> None:
        """Close this client's connections (a long-lived program that makes many clients calls this)."""
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def health(self, service: str, timeout: float = 2.0) -> str:
        """SERVING / NOT_SERVING / UNREACHABLE for one service."""
        stub = health_pb2_grpc.HealthStub(self._channel(service))
        try:
            response = stub.Check(  # pyright: ignore[reportAttributeAccessIssue]: grpc_health ships no stubs
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return "UNREACHABLE"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def wait_ready(self, timeout: float = 60.0) -> None:
        grpc.channel_ready_future(self._channel("ingest")).result(timeout=timeout)

    def upload(
        self,
        files: Iterable[Path],
        *,
        request_id: str = "",
        on_file: Callable[[Path, int], None] | None = None,
        unreadable: list[tuple[Path, str]] | None = None,
        timeout: float | None = None,
        processing: common_pb2.ProcessingOptions | None = None,
        library: str = "",
    ) -> ingest_pb2.UploadImagesResponse:
        """Streams files in 1 MiB chunks. Files that cannot be opened here never reach the server; they
        are appended to ``unreadable`` with the reason, and the rest of the batch goes on. ``processing``
        asks for object crops / OCR text (it travels on the first message)."""
        messages = self._upload_messages(files, request_id, on_file, unreadable if unreadable is not None else [])
        if processing is not None:
            messages = _with_processing(messages, processing)
        if library:
            messages = _with_library(messages, library)
        return self.ingest.UploadImages(messages, timeout=timeout)

    def _upload_messages(
        self,
        files: Iterable[Path],
        request_id: str,
        on_file: Callable[[Path, int], None] | None,
        unreadable: list[tuple[Path, str]],
    ) -> Iterator[ingest_pb2.UploadImagesRequest]:
        """Every read is bounded (regular files only, at most ``ORDO_MAX_IMAGE_BYTES``, see
        :mod:`ordo.core.local_files`): a FIFO, a device, a link loop or a file that grows past the limit
        is reported in ``unreadable`` with its reason and the stream goes on with the next file. A file
        that changes while it is sent is stopped; the server sees fewer bytes than ``size_bytes`` said and
        records it as SIZE_MISMATCH instead of ingesting half of it."""
        from ordo.core.local_files import BoundedFile

        max_bytes = self.settings.max_image_bytes
        for path in files:
            header = ingest_pb2.UploadFileHeader(
                file_name=path.name,
                mime_type=mimetypes.guess_type(path.name)[0] or "",
                source_uri=_source_uri(path),
            )
            try:
                handle = BoundedFile(path, max_bytes)
            except OrdoError as exc:
                unreadable.append((path, f"{exc.reason}: {exc.message}"))
                if on_file:
                    on_file(path, 0)
                continue
            header.size_bytes = handle.size
            sent = 0
            with handle:
                yield ingest_pb2.UploadImagesRequest(header=header, request_id=request_id)
                try:
                    for chunk in handle.chunks(CHUNK_BYTES):
                        sent += len(chunk)
                        yield ingest_pb2.UploadImagesRequest(chunk=chunk)
                except OrdoError:
                    # It grew past the limit while being sent: what arrived differs from the declared
                    # size_bytes, so the server records it as SIZE_MISMATCH, not half an image.
                    pass
            if on_file:
                on_file(path, sent)


def _source_uri(path: Path) -> str:
    try:
        return path.resolve(strict=True).as_uri()
    except (OSError, RuntimeError):
        return path.absolute().as_uri()
