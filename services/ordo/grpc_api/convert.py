"""Conversions between Ordo's dataclasses and protobuf messages — the only place that knows both."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ordo import limits
from ordo.core.ingestion import FileResult, Outcome
from ordo.core.model_versions import ModelVersion
from ordo.domain import (
    Asset,
    AssetState,
    FileFailure,
    Filter,
    Job,
    JobState,
    ProcessingOptions,
    Sample,
    SearchHit,
    SearchMode,
)
from ordo.errors import InvalidInput, Reason
from ordo.v1 import common_pb2, ingest_pb2, search_pb2
from ordo.wire import KIND_TO_PB, PB_TO_KIND

# A job message stays small enough for every client's default receive limit (4 MiB) even for huge jobs.
MAX_ASSET_IDS_SENT = 10_000
MAX_FAILURES_SENT = 1_000
# What a job read for a client loads at most (each list): no more than a Job message carries.
MAX_LISTED_SENT = max(MAX_ASSET_IDS_SENT, MAX_FAILURES_SENT)

_ASSET_STATE = {
    AssetState.PENDING: common_pb2.ASSET_STATE_PENDING,
    AssetState.READY: common_pb2.ASSET_STATE_READY,
    AssetState.FAILED: common_pb2.ASSET_STATE_FAILED,
}
_JOB_STATE = {
    JobState.QUEUED: common_pb2.JOB_STATE_QUEUED,
    JobState.RUNNING: common_pb2.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: common_pb2.JOB_STATE_SUCCEEDED,
    JobState.PARTIALLY_SUCCEEDED: common_pb2.JOB_STATE_PARTIALLY_SUCCEEDED,
    JobState.FAILED: common_pb2.JOB_STATE_FAILED,
    JobState.CANCELLED: common_pb2.JOB_STATE_CANCELLED,
}
_OUTCOME = {
    Outcome.NEW: ingest_pb2.FILE_OUTCOME_NEW,
    Outcome.DUPLICATE: ingest_pb2.FILE_OUTCOME_DUPLICATE,
    Outcome.FAILED: ingest_pb2.FILE_OUTCOME_FAILED,
}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def from_timestamp(msg: Timestamp, present: bool) -> datetime | None:
    return msg.ToDatetime(tzinfo=UTC) if present else None


def asset_pb(asset: Asset) -> common_pb2.Asset:
    """Client-supplied text is clipped for the wire (ordo.limits), so no stored record can blow up a list."""
    return limits.clip_asset(_asset_pb(asset))  # type: ignore[return-value]


def _asset_pb(asset: Asset) -> common_pb2.Asset:
    return common_pb2.Asset(
        asset_id=asset.asset_id,
        source_uri=asset.source_uri,
        file_name=asset.file_name,
        mime_type=asset.mime_type,
        size_bytes=asset.size_bytes,
        width=asset.width,
        height=asset.height,
        capture_time=timestamp(asset.captured_at),
        ingest_time=timestamp(asset.ingested_at),
        state=_ASSET_STATE[asset.state],
        error=asset.error,
        original_key=asset.original_key,
        thumbnail_key=asset.thumbnail_key,
        metadata=asset.metadata,
        model_id=asset.model_id,
        library=asset.library,
    )


def sample_pb(sample: Sample) -> common_pb2.Sample:
    msg = common_pb2.Sample(
        sample_id=sample.sample_id,
        asset_id=sample.asset_id,
        kind=common_pb2.SampleKind.Name(KIND_TO_PB[sample.kind]),
        label=sample.label,
        score=sample.score,
        text=sample.text,
        index=sample.index,
        polygon=[common_pb2.Point(x=x, y=y) for x, y in sample.polygon],
    )
    if sample.bbox:
        b = sample.bbox
        msg.bbox.CopyFrom(common_pb2.BoundingBox(x=b.x, y=b.y, width=b.width, height=b.height))
    return msg


def failure_pb(failure: FileFailure) -> common_pb2.FileFailure:
    return common_pb2.FileFailure(source_uri=failure.source_uri, reason=failure.reason, message=failure.message)


# The domain's job kinds (strings, as the job stores keep them) on the wire.
_JOB_KIND = {
    "ingest": common_pb2.JOB_KIND_INGEST,
    "reembed": common_pb2.JOB_KIND_REEMBED,
    "recover": common_pb2.JOB_KIND_RECOVER,
    "clustering": common_pb2.JOB_KIND_CLUSTERING,
    "projection": common_pb2.JOB_KIND_PROJECTION,
}


def job_pb(job: Job) -> common_pb2.Job:
    return common_pb2.Job(
        job_id=job.job_id,
        kind=job.kind,
        job_kind=_JOB_KIND.get(job.kind, common_pb2.JOB_KIND_UNSPECIFIED),
        state=_JOB_STATE[job.state],
        total=job.total,
        enumeration_done=job.enumeration_done,
        succeeded=job.succeeded,
        duplicates=job.duplicates,
        failed=job.failed,
        pending=job.pending,
        failures=[failure_pb(f) for f in job.failures[:MAX_FAILURES_SENT]],
        create_time=timestamp(job.created_at),
        update_time=timestamp(job.updated_at),
        end_time=timestamp(job.ended_at),
        eta_seconds=job.eta_seconds,
        rate_per_second=job.rate_per_second,
        stage_timings=[
            common_pb2.StageTiming(stage=s, seconds=sec, items=job.stage_items.get(s, 0))
            for s, sec in sorted(job.stage_seconds.items())
        ],
        error=job.error,
        asset_ids=job.asset_ids[:MAX_ASSET_IDS_SENT],
    )


def model_version_pb(version: ModelVersion, vector_count: int = 0) -> ingest_pb2.ModelVersion:
    def ts(value: str) -> Timestamp | None:
        return timestamp(datetime.fromisoformat(value)) if value else None

    return ingest_pb2.ModelVersion(
        model=version.model,
        model_id=version.model_id,
        collection=version.collection,
        state=f"MODEL_VERSION_STATE_{version.state.value.upper()}",  # an enum field takes its value's name
        job_id=version.job_id,
        reason=version.reason,
        vector_count=vector_count,
        create_time=ts(version.created_at),
        activate_time=ts(version.activated_at),
        error=version.error,
    )


def file_result_pb(result: FileResult) -> ingest_pb2.FileResult:
    return ingest_pb2.FileResult(
        file_name=result.file_name,
        source_uri=result.source_uri,
        outcome=_OUTCOME[result.outcome],
        asset_id=result.asset_id,
        failure=failure_pb(result.failure) if result.failure else None,
    )


def hit_pb(hit: SearchHit) -> search_pb2.SearchHit:
    return search_pb2.SearchHit(
        asset=asset_pb(hit.asset),
        sample=sample_pb(hit.sample),
        score=hit.score,
        rank=hit.rank,
        semantic_score=hit.semantic_score,
        keyword_score=hit.keyword_score,
    )


_SEARCH_MODES: dict[int, SearchMode] = {
    search_pb2.SEARCH_MODE_UNSPECIFIED: SearchMode.HYBRID,
    search_pb2.SEARCH_MODE_SEMANTIC: SearchMode.SEMANTIC,
    search_pb2.SEARCH_MODE_KEYWORD: SearchMode.KEYWORD,
    search_pb2.SEARCH_MODE_HYBRID: SearchMode.HYBRID,
}


def search_mode_from_pb(value: int) -> SearchMode:
    """Unspecified means hybrid: without OCR text in the collection it ranks exactly like semantic."""
    mode = _SEARCH_MODES.get(value)
    if mode is None:
        raise InvalidInput(f"unknown search mode {value}", reason=Reason.BAD_SEARCH_MODE)
    return mode


def processing_from_pb(msg: common_pb2.ProcessingOptions) -> ProcessingOptions:
    """Unset fields stay None (the workers' defaults decide)."""
    return ProcessingOptions(
        detect_objects=msg.detect_objects if msg.HasField("detect_objects") else None,
        read_text=msg.read_text if msg.HasField("read_text") else None,
    )


def filter_from_pb(msg: common_pb2.Filter) -> Filter:
    return Filter(
        kinds=tuple(PB_TO_KIND[k] for k in msg.kinds if k in PB_TO_KIND),
        asset_ids=tuple(msg.asset_ids),
        mime_types=tuple(msg.mime_types),
        source_uri_prefix=msg.source_uri_prefix,
        captured_after=from_timestamp(msg.captured_after, msg.HasField("captured_after")),
        captured_before=from_timestamp(msg.captured_before, msg.HasField("captured_before")),
        ingested_after=from_timestamp(msg.ingested_after, msg.HasField("ingested_after")),
        ingested_before=from_timestamp(msg.ingested_before, msg.HasField("ingested_before")),
        min_width=msg.min_width,
        min_height=msg.min_height,
        model_id=msg.model_id,
        cluster_ids=tuple(msg.cluster_ids),
        libraries=tuple(msg.libraries),
    )
