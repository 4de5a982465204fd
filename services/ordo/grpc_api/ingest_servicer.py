"""IngestService: uploads, server-side URIs, jobs and assets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from ordo import limits
from ordo.app import AppContext
from ordo.core import catalog
from ordo.errors import InvalidInput, NotFound, Reason
from ordo.grpc_api import convert
from ordo.grpc_api.status import abort, handle_errors, handle_stream_errors, invalid
from ordo.grpc_api.stream_idle import StreamIdle, with_idle_timeout
from ordo.grpc_api.upload_session import UploadSession
from ordo.security import ingest_rules
from ordo.security.libraries import visible
from ordo.v1 import ingest_pb2, ingest_pb2_grpc

log = logging.getLogger(__name__)

# GetAssetContent streams bytes in pieces this size (well under any gRPC message limit).
CONTENT_CHUNK_BYTES = 256 * 1024
WATCH_POLL_SECONDS = 0.05
# A WatchJob stream also sends the job every this many seconds while nothing changes, so clients see
# the ETA move and load balancers do not cut an idle stream.
WATCH_HEARTBEAT_SECONDS = 5.0


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, ctx: AppContext, background: ThreadPoolExecutor) -> None:
        self.ctx = ctx
        self.background = background

    @handle_errors
    def UploadImages(
        self, request_iterator: Iterator[ingest_pb2.UploadImagesRequest], context: grpc.ServicerContext
    ) -> ingest_pb2.UploadImagesResponse:
        """Streamed files, each ingested as it completes (see ``UploadSession``); one job for the stream."""
        session = UploadSession(self.ctx.ingest, self.ctx.limits.max_bytes)
        idle_s = self.ctx.settings.upload_idle_timeout_s
        try:
            for message in with_idle_timeout(request_iterator, idle_s, "ordo-upload-reader"):
                session.receive(message)
            session.end_of_stream()
        except StreamIdle:
            # The client went silent: end the upload here. Files completed before it keep their outcomes.
            if session.job is None:
                abort(
                    context,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the upload sent nothing for {idle_s:g} s and was closed",
                    Reason.UPLOAD_IDLE_TIMEOUT,
                )
            session.went_idle(idle_s)
        finally:
            session.close()
        if session.job is None:
            invalid(context, "the upload stream held no files", Reason.EMPTY_UPLOAD)
        response = ingest_pb2.UploadImagesResponse(
            job=convert.job_pb(self.ctx.jobs.get(session.job.job_id, convert.MAX_LISTED_SENT)),
            results=[convert.file_result_pb(r) for r in session.outcomes()],
        )
        if session.stream_error is not None:
            response.stream_error.CopyFrom(convert.failure_pb(session.stream_error))
        return response

    @handle_errors
    def IngestUris(
        self, request: ingest_pb2.IngestUrisRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestUrisResponse:
        uris = [u.strip() for u in request.uris if u.strip()]
        if not uris:
            invalid(context, "give at least one path or s3:// URI", Reason.NO_URIS)
        for uri in uris:
            if uri.startswith("s3://") and len(uri) <= len("s3://"):
                invalid(context, f"'{uri}' names no bucket", Reason.BAD_URI)
            if "://" in uri and not uri.startswith(("s3://", "file://")):
                invalid(context, f"'{uri}': only local paths, file:// and s3:// URIs are supported", Reason.BAD_URI)
        library = ingest_rules.target_library(request.library)
        guard = ingest_rules.check_uris(uris, self.ctx.settings)  # roots, buckets, admin for paths: before any read
        job = self.ctx.ingest.start_job(request.request_id, convert.processing_from_pb(request.processing))
        self.background.submit(self.ctx.ingest.run_uri_job, job.job_id, uris, not request.non_recursive, library, guard)
        return ingest_pb2.IngestUrisResponse(job=convert.job_pb(job))

    @handle_errors
    def GetJob(self, request: ingest_pb2.GetJobRequest, context: grpc.ServicerContext) -> ingest_pb2.GetJobResponse:
        if not request.job_id:
            invalid(context, "job_id is required", Reason.MISSING_JOB_ID)
        return ingest_pb2.GetJobResponse(job=convert.job_pb(self.ctx.jobs.get(request.job_id, convert.MAX_LISTED_SENT)))

    @handle_errors
    def ListJobs(
        self, request: ingest_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.ListJobsResponse:
        jobs, token = self.ctx.jobs.list(request.page_size, request.page_token, convert.MAX_LISTED_SENT)
        return ingest_pb2.ListJobsResponse(jobs=[convert.job_pb(j) for j in jobs], next_page_token=token)

    @handle_stream_errors
    def WatchJob(
        self, request: ingest_pb2.WatchJobRequest, context: grpc.ServicerContext
    ) -> Iterator[ingest_pb2.WatchJobResponse]:
        """Polls the job store's cheap version counter; sends the job whenever it changed."""
        if not request.job_id:
            invalid(context, "job_id is required", Reason.MISSING_JOB_ID)
        jobs = self.ctx.jobs
        last_version = -1
        last_sent = 0.0
        while context.is_active():
            version = jobs.version(request.job_id)
            now = time.monotonic()
            if version != last_version or now - last_sent >= WATCH_HEARTBEAT_SECONDS:
                job = jobs.get(request.job_id, convert.MAX_LISTED_SENT)
                last_version, last_sent = version, now
                yield ingest_pb2.WatchJobResponse(job=convert.job_pb(job))
                if job.state.is_final:
                    return
            time.sleep(WATCH_POLL_SECONDS)

    @handle_errors
    def GetAsset(
        self, request: ingest_pb2.GetAssetRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.GetAssetResponse:
        asset = visible(self.ctx.catalog.get(request.asset_id))
        samples = self.ctx.samples_of(asset)
        return ingest_pb2.GetAssetResponse(
            asset=convert.asset_pb(asset), samples=[convert.sample_pb(s) for s in samples]
        )

    @handle_stream_errors
    def GetAssetContent(
        self, request: ingest_pb2.GetAssetContentRequest, context: grpc.ServicerContext
    ) -> Iterator[ingest_pb2.GetAssetContentResponse]:
        """The object store port reads whole objects, so this chunks them for the wire: messages stay
        under the gRPC size limit and gateways can start answering before the last byte arrives."""
        if not request.asset_id:
            invalid(context, "asset_id is required", Reason.MISSING_ASSET_ID)
        asset = visible(self.ctx.catalog.get(request.asset_id))
        if request.variant == ingest_pb2.ASSET_CONTENT_VARIANT_THUMBNAIL:
            if not asset.thumbnail_key:
                raise NotFound(
                    f"asset {asset.asset_id} has no thumbnail yet (it is {asset.state.name.lower()})",
                    reason=Reason.THUMBNAIL_NOT_READY,
                )
            key, mime_type = asset.thumbnail_key, "image/jpeg"
        else:
            key, mime_type = asset.original_key, asset.mime_type or "application/octet-stream"
        data = self.ctx.store.get(key)
        yield ingest_pb2.GetAssetContentResponse(
            mime_type=mime_type, size_bytes=len(data), chunk=data[:CONTENT_CHUNK_BYTES]
        )
        for start in range(CONTENT_CHUNK_BYTES, len(data), CONTENT_CHUNK_BYTES):
            yield ingest_pb2.GetAssetContentResponse(chunk=data[start : start + CONTENT_CHUNK_BYTES])

    @handle_errors
    def ListAssets(
        self, request: ingest_pb2.ListAssetsRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.ListAssetsResponse:
        assets, token = self.ctx.catalog.list(request.page_size, request.page_token, request.order_by)
        assets = ingest_rules.readable(assets)  # pages may come back short; the token still moves on
        messages = [convert.asset_pb(a) for a in assets]
        fits = limits.within_budget(messages)  # bounded by bytes as well as by page_size
        if fits < len(messages):
            messages, token = messages[:fits], catalog.token_after_asset(assets[fits - 1], request.order_by)
        return ingest_pb2.ListAssetsResponse(assets=messages, next_page_token=token)

    @handle_errors
    def DeleteAsset(
        self, request: ingest_pb2.DeleteAssetRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.DeleteAssetResponse:
        ingest_rules.before_delete(self.ctx, request.asset_id)  # library rights + audit log
        self.ctx.delete_asset(request.asset_id)
        return ingest_pb2.DeleteAssetResponse()

    @handle_errors
    def GetStats(
        self, request: ingest_pb2.GetStatsRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.GetStatsResponse:
        ctx = self.ctx
        version = ctx.active_version()
        index = ctx.index_for(version.collection)
        embedder = ctx.embedder_for(version.model, load=False)  # loaded here (search, worker) or not at all
        return ingest_pb2.GetStatsResponse(
            asset_count=ctx.catalog.count(),
            vector_count=index.count() if index.dim else 0,
            model_id=version.model_id,
            embedding_dim=index.dim or embedder.dim,
            mode=ctx.settings.mode,
            vector_backend=index.backend,
            object_backend=ctx.store.backend,
            queue_backend=ctx.queue.backend,
            device=embedder.device if embedder.is_loaded else "",
            model=version.model,
            collection=version.collection,
            model_reason=version.reason,
        )

    @handle_errors
    def ListModelVersions(
        self, request: ingest_pb2.ListModelVersionsRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.ListModelVersionsResponse:
        ctx = self.ctx
        ctx.active_version()  # a new data directory records its first model here
        versions = []
        for version in ctx.model_versions.list():
            index = ctx.index_for(version.collection)
            versions.append(convert.model_version_pb(version, index.count() if index.dim else 0))
        return ingest_pb2.ListModelVersionsResponse(versions=versions)

    @handle_errors
    def ResumeJob(
        self, request: ingest_pb2.ResumeJobRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.ResumeJobResponse:
        from ordo.worker.resume import resume_job

        if not request.job_id:
            raise InvalidInput("job_id is required", reason=Reason.MISSING_JOB_ID)
        result = resume_job(self.ctx, request.job_id)
        job = self.ctx.jobs.get(request.job_id, convert.MAX_LISTED_SENT)
        return ingest_pb2.ResumeJobResponse(job=convert.job_pb(job), requeued=result.requeued, tasks=result.tasks)

    @handle_errors
    def ActivateModel(
        self, request: ingest_pb2.ActivateModelRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.ActivateModelResponse:
        model = ingest_rules.activation_target(self.ctx, request.model)  # registered ids, models folder; audited
        version, job = self.ctx.activate_model(model)
        index = self.ctx.index_for(version.collection)
        return ingest_pb2.ActivateModelResponse(
            version=convert.model_version_pb(version, index.count() if index.dim else 0), job=convert.job_pb(job)
        )
