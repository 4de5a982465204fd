"""One UploadImages stream, file by file: what the servicer method used to do in one 97-line body.

Why a class: the stream's state (the job, the target library, the file being received, the results so far,
a stream-level failure) lives across messages, and three moments act on it: a message arrives, the client
goes silent (``StreamIdle``), the stream ends. Each is a method here, so each reads on its own.
"""

from __future__ import annotations

from ordo import limits
from ordo.core.ingestion import FileGroup, FileResult, IncomingFile, IngestCore
from ordo.domain import FileFailure, Job
from ordo.errors import InvalidInput, Reason
from ordo.grpc_api import convert
from ordo.security import ingest_rules
from ordo.v1 import ingest_pb2


class UploadedFile:
    """Collects one streamed file, refusing to buffer past the size limit; a header over the field
    limits (:mod:`ordo.limits`) makes this file fail alone (``refused``) and its chunks are dropped."""

    def __init__(self, header: ingest_pb2.UploadFileHeader, max_bytes: int) -> None:
        self.header = header
        self.max_bytes = max_bytes
        self.parts: list[bytes] = []
        self.size = 0
        self.too_large = header.size_bytes > max_bytes
        self.refused: InvalidInput | None = None
        try:
            limits.check_upload_header(header.file_name, header.source_uri, dict(header.metadata))
        except InvalidInput as exc:
            self.refused = exc

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.too_large = True
            self.parts.clear()
        elif not self.too_large and self.refused is None:
            self.parts.append(chunk)

    @property
    def name(self) -> str:
        return limits.clip(self.header.file_name, limits.MAX_FILE_NAME_BYTES) or "(no name)"


class UploadSession:
    """The state of one upload stream. The job starts with the first message (which names the library,
    the request id and the processing options) and every file becomes one ``FileResult``.

    Whole files are stored in groups (``ingestion.FileGroup``: eight at a time, made durable together), not
    one by one: nothing is acknowledged before the stream's response, which comes after the last group, so
    holding a few files changes no promise and saves the stream most of its waits on disk commits."""

    def __init__(self, core: IngestCore, max_bytes: int) -> None:
        self.core = core
        self.max_bytes = max_bytes
        self.job: Job | None = None
        self.library = ""
        self.current: UploadedFile | None = None
        self.results: list[FileResult | None] = []  # a slot per file, in order; None while its group fills
        self.stream_error: FileFailure | None = None
        self._group = FileGroup(self._store)
        self._slots: list[int] = []  # the result slots of the files the group holds

    def _store(self, files: list[IncomingFile]) -> list[FileResult]:
        slots, self._slots = self._slots, []
        stored = self.core.ingest_many(self._job_id(), files)
        for slot, result in zip(slots, stored, strict=True):
            self.results[slot] = result
        return stored

    def receive(self, message: ingest_pb2.UploadImagesRequest) -> None:
        """One message of the stream: a file header (ends the previous file) or a chunk of the current one."""
        if self.job is None:
            self.library = ingest_rules.target_library(message.library)
            request_id = limits.clip(message.request_id, limits.MAX_ID_BYTES)
            self.job = self.core.start_job(request_id, convert.processing_from_pb(message.processing))
        part = message.WhichOneof("part")
        if part == "header":
            if self.current is not None:
                self.finish(self.current)
            self.current = UploadedFile(message.header, self.max_bytes)
        elif part == "chunk":
            if self.current is None:
                if self.stream_error is None:
                    self.stream_error = FileFailure(
                        "", Reason.CHUNK_BEFORE_HEADER, "file data arrived before any file header; it was dropped"
                    )
                return
            self.current.add(message.chunk)

    def end_of_stream(self) -> None:
        if self.current is not None:
            self.finish(self.current)

    def went_idle(self, idle_s: float) -> None:
        """The client went silent (a job exists): files completed before it keep their outcomes; the one
        being received keeps its usual outcome when whole or failing anyway, else fails as cut short."""
        job_id = self._job_id()
        if self.current is not None:
            upload, h = self.current, self.current.header
            if 0 < h.size_bytes == upload.size or upload.too_large or upload.refused is not None:
                self.finish(upload)
            else:
                source_uri = limits.clip(ingest_rules.upload_source(h)[0], limits.MAX_URI_BYTES)
                message = f"{upload.name}: the upload stopped mid-file ({upload.size} bytes arrived)"
                self.results.append(self.core.fail_input(job_id, source_uri, Reason.UPLOAD_IDLE_TIMEOUT, message))
        self.stream_error = FileFailure(
            "",
            Reason.UPLOAD_IDLE_TIMEOUT,
            f"no data for {idle_s:g} s: the upload was closed; the files completed before it were kept",
        )

    def finish(self, upload: UploadedFile) -> None:
        """The outcome of one whole file: refused, too large, not the size announced, or ingested."""
        job_id, h, name = self._job_id(), upload.header, upload.name
        source_uri, metadata = ingest_rules.upload_source(h)  # server-recorded; the client's claim labelled
        source_uri = limits.clip(source_uri, limits.MAX_URI_BYTES)
        if upload.refused is not None:
            fail = self.core.fail_input(job_id, source_uri, upload.refused.reason, upload.refused.message)
            self.results.append(FileResult(name, source_uri, fail.outcome, failure=fail.failure))
        elif upload.too_large:
            size = max(upload.size, h.size_bytes)
            message = f"{name}: {size} bytes is over the limit of {self.max_bytes}"
            self.results.append(self.core.fail_input(job_id, source_uri, Reason.FILE_TOO_LARGE, message))
        elif 0 < h.size_bytes != upload.size:
            message = f"{name}: the header announced {h.size_bytes} bytes but {upload.size} arrived"
            self.results.append(self.core.fail_input(job_id, source_uri, Reason.SIZE_MISMATCH, message))
        else:
            self._slots.append(len(self.results))
            self.results.append(None)
            incoming = IncomingFile(b"".join(upload.parts), h.file_name, source_uri, metadata, self.library)
            upload.parts.clear()
            self._group.add(incoming)

    def outcomes(self) -> list[FileResult]:
        """Every file's result, in order (after ``close``)."""
        return [r for r in self.results if r is not None]

    def close(self) -> None:
        """Stores the files still held, then ends the job either way: complete once workers finish, or FAILED
        if the queue is down."""
        try:
            self._group.flush()
        finally:
            if self.job is not None:
                self.job = self.core.finish_enumeration(self.job.job_id)

    def _job_id(self) -> str:
        assert self.job is not None, "a file arrives only after the first message started the job"
        return self.job.job_id
