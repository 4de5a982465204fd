"""The JSON shapes of the gateway's answers, for the OpenAPI document (and so for the web UI's generated types).

Why documentation-only models: the routes answer the proto3 JSON mapping of ``ordo.v1`` messages (or small
dicts of their own) exactly as before; these models are attached with ``responses={200: {"model": ...}}`` and
``response_model=None``, so nothing is validated or re-serialised on the way out, yet ``/openapi.json`` and
``web/src/api-types.ts`` carry the shapes the UI reads. int64 fields are strings (proto3 JSON); fields a
message may lack (unset timestamps, sub-messages) are optional.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Asset(BaseModel):
    asset_id: str
    source_uri: str
    file_name: str
    mime_type: str
    size_bytes: str
    width: int
    height: int
    capture_time: str | None = None
    ingest_time: str | None = None
    state: str
    error: str
    metadata: dict[str, str]
    model_id: str


class Sample(BaseModel):
    sample_id: str
    kind: str
    label: str
    text: str


class Hit(BaseModel):
    asset: Asset
    sample: Sample
    score: float
    rank: int


class SearchResponse(BaseModel):
    """``total_size`` only when the request set ``include_total_size`` (capped at 10,000: see the flag)."""

    hits: list[Hit]
    next_page_token: str
    model_id: str
    total_size: int | None = None
    total_size_capped: bool


class AssetPage(BaseModel):
    assets: list[Asset]
    next_page_token: str


class FileFailure(BaseModel):
    source_uri: str
    reason: str
    message: str


class Job(BaseModel):
    job_id: str
    kind: str
    state: str
    total: str
    enumeration_done: bool
    succeeded: str
    duplicates: str
    failed: str
    pending: str
    failures: list[FileFailure]
    create_time: str | None = None
    end_time: str | None = None
    eta_seconds: float
    rate_per_second: float
    error: str


class JobPage(BaseModel):
    jobs: list[Job]
    next_page_token: str


class FileResult(BaseModel):
    file_name: str
    source_uri: str
    outcome: str
    asset_id: str
    failure: FileFailure | None = None


class UploadResponse(BaseModel):
    job: Job
    results: list[FileResult]


class ServiceStatus(BaseModel):
    """``services``: each service's gRPC health ("SERVING"...); ``stats``: GetStats, null while ingest is down."""

    services: dict[str, str]
    stats: dict[str, Any] | None
    queue_dashboard_url: str
    ops_url: str


class Projection(BaseModel):
    """A projection's points as columns (index i of each list is point i)."""

    run_id: str
    count: int
    x: list[float]
    y: list[float]
    asset_ids: list[str]
    sample_ids: list[str]
    cluster_ids: list[str]


class MapAttributes(BaseModel):
    """Columns aligned with the projection's: each point's sample kind and its image's dates (epoch ms)."""

    run_id: str
    count: int
    kinds: list[str]
    captured: list[int | None]
    ingested: list[int | None]


class Capabilities(BaseModel):
    detect_objects: bool
    read_text: bool
    max_batch_ids: int
    max_zip_bytes: int


class DeleteFailure(BaseModel):
    asset_id: str
    detail: str
    reason: str
    code: str


class BatchDeleteResult(BaseModel):
    deleted: list[str]
    failed: list[DeleteFailure]


class DuplicateGroupPlan(BaseModel):
    min_similarity: float
    keep: str
    assets: list[Asset]


class DuplicateSummary(BaseModel):
    groups: int
    delete: int
    bytes_freed: int


class DuplicatePlan(BaseModel):
    rule: str
    groups: list[DuplicateGroupPlan]
    next_page_token: str
    summary: DuplicateSummary


def documented(model: type[BaseModel], description: str = "Successful Response") -> dict[str, Any]:
    """Route keyword arguments that document ``model`` as the 200 answer without validating the answer."""
    return {"response_model": None, "responses": {200: {"model": model, "description": description}}}
