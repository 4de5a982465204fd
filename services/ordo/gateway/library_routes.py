"""REST routes the library UI needs (issue 16): bulk delete, a streamed zip download, near-duplicate groups with
a keep-best suggestion, and the capabilities that decide which filters the search page offers.

Each route is composed of existing RPCs (``GetAsset``, ``GetAssetContent``, ``DeleteAsset``, ``FindDuplicates``)
called with the caller's own credentials, so access and library scoping stay where they are decided: in the
policy table and the servicers. What this module adds are the HTTP-level bounds: at most ``MAX_BATCH_IDS`` ids
per call, at most ``MAX_ZIP_BYTES`` of originals per zip (checked from the catalog's sizes before a byte is
sent), ids that must look like asset ids, and a zip built while it streams (``zip_stream``).

Durability: a bulk delete is a series of single ``DeleteAsset`` calls; a kill midway leaves the ones answered
deleted and the rest untouched, and the answer lists both, so a retry of the same ids finishes the job
(``ASSET_NOT_FOUND`` for the ones already gone).
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ordo.client import OrdoClient
from ordo.errors import InvalidInput, Reason
from ordo.gateway.deps import AppSettings, Client
from ordo.gateway.errors import error_body
from ordo.gateway.keep_best import KeepRule, choose_keeper
from ordo.gateway.paging_params import DEFAULT_PAGE_SIZE, PageToken
from ordo.gateway.shapes import BatchDeleteResult, Capabilities, DuplicatePlan, documented
from ordo.gateway.streams import to_json
from ordo.gateway.zip_stream import zip_originals
from ordo.v1 import analysis_pb2, common_pb2, ingest_pb2

MAX_BATCH_IDS = 500
MAX_ZIP_BYTES = 1024 * 1024 * 1024  # 1 GiB of originals per download
MAX_DUPLICATE_GROUPS = 50  # groups per page; each member costs one GetAsset
MAX_GROUP_MEMBERS = 1000  # members described per page, over all its groups
ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
AssetIds = list[str]

router = APIRouter(tags=["library"])


class AssetIdsBody(BaseModel):
    """Up to ``MAX_BATCH_IDS`` asset ids (64 lower-case hex characters each), no repeats."""

    asset_ids: AssetIds = Field(min_length=1, max_length=MAX_BATCH_IDS)

    def checked(self) -> list[str]:
        bad = [i for i in self.asset_ids if not ASSET_ID.match(i)]
        if bad:
            shown = bad[0][:80]
            raise InvalidInput(
                f"{len(bad)} id(s) are not asset ids (64 lower-case hex characters), e.g. '{shown}'",
                reason=Reason.BAD_ASSET_ID,
            )
        return list(dict.fromkeys(self.asset_ids))  # order kept, repeats dropped


@router.get(
    "/api/library/capabilities",
    summary="What this deployment derives from images, and the UI's limits.",
    **documented(Capabilities),
)
def capabilities(settings: AppSettings) -> dict[str, Any]:
    """The search page disables the Objects / Text kinds when no processor makes such samples (an empty
    result would otherwise look like "nothing matched"), and states the bulk limits up front."""
    return {
        "detect_objects": settings.detect_objects,
        "read_text": settings.read_text,
        "max_batch_ids": MAX_BATCH_IDS,
        "max_zip_bytes": MAX_ZIP_BYTES,
    }


@router.post(
    "/api/assets/batch-delete",
    summary="Delete up to 500 assets; says which were deleted and why not.",
    **documented(BatchDeleteResult),
)
def batch_delete(body: AssetIdsBody, client: Client) -> dict[str, Any]:
    """One DeleteAsset per id, in order; a failure (not found, not allowed in that library) is reported
    for that id and the others go on, so the answer always says exactly what changed."""
    deleted: list[str] = []
    failed: list[dict[str, str]] = []
    for asset_id in body.checked():
        try:
            client.ingest.DeleteAsset(ingest_pb2.DeleteAssetRequest(asset_id=asset_id))
            deleted.append(asset_id)
        except grpc.RpcError as exc:
            status, info = error_body(exc)
            if status >= 500 or info["reason"] in {"SERVICE_UNAVAILABLE"}:
                raise  # the service is down: say so for the whole call, not per id
            failed.append({"asset_id": asset_id, **info})
    return {"deleted": deleted, "failed": failed}


@router.post(
    "/api/assets/zip",
    summary="The originals of up to 500 assets as one zip, streamed (at most 1 GiB in all).",
    response_class=StreamingResponse,
)
def download_zip(body: AssetIdsBody, client: Client) -> StreamingResponse:
    """Sizes come from the catalog first, so an oversized request is a 400 before any byte is sent; the
    zip is then written member by member while each original streams from GetAssetContent (stored, not
    deflated: photos do not compress)."""
    ids = body.checked()
    assets = [client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=i)).asset for i in ids]
    total = sum(a.size_bytes for a in assets)
    if total > MAX_ZIP_BYTES:
        raise InvalidInput(
            f"the {len(ids)} originals add up to {total} bytes; a zip may hold at most {MAX_ZIP_BYTES}",
            reason=Reason.ZIP_TOO_LARGE,
        )
    headers = {"Content-Disposition": f'attachment; filename="ordo-{len(ids)}-images.zip"'}
    return StreamingResponse(zip_originals(client, assets), media_type="application/zip", headers=headers)


@router.get(
    "/api/duplicate-groups",
    summary="Near-duplicate groups with their assets and which one a keep-best rule would keep (a dry run).",
    **documented(DuplicatePlan),
)
def duplicate_groups(
    client: Client,
    rule: KeepRule = "resolution",
    min_similarity: float = Query(0.95, gt=0.0, le=1.0),
    page_size: int = Query(min(DEFAULT_PAGE_SIZE, MAX_DUPLICATE_GROUPS), ge=1, le=MAX_DUPLICATE_GROUPS),
    page_token: PageToken = "",
) -> dict[str, Any]:
    """Nothing is deleted here: the answer says what applying the rule would delete and free, per group
    and for the page; the UI then deletes through ``/api/assets/batch-delete``."""
    request = analysis_pb2.FindDuplicatesRequest(
        min_similarity=min_similarity, page_size=page_size, page_token=page_token
    )
    found = client.analysis.FindDuplicates(request)
    groups: list[dict[str, Any]] = []
    described = to_delete = freed = 0
    for group in found.groups:
        ids = list(group.asset_ids)[: max(0, MAX_GROUP_MEMBERS - described)]
        if len(ids) < 2:
            break
        described += len(ids)
        assets = _still_there(client, ids)
        if len(assets) < 2:
            continue  # deleted since the analysis: no longer a group
        keep = choose_keeper(assets, rule)
        others = [a for a in assets if a.asset_id != keep]
        to_delete += len(others)
        freed += sum(a.size_bytes for a in others)
        groups.append(
            {"min_similarity": round(group.min_similarity, 4), "keep": keep, "assets": [to_json(a) for a in assets]}
        )
    return {
        "rule": rule,
        "groups": groups,
        "next_page_token": found.next_page_token,
        "summary": {"groups": len(groups), "delete": to_delete, "bytes_freed": freed},
    }


def _still_there(client: OrdoClient, ids: list[str]) -> list[common_pb2.Asset]:
    """The assets of ``ids`` that still exist (one may have been deleted since the analysis ran)."""
    assets = []
    for asset_id in ids:
        try:
            assets.append(client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=asset_id)).asset)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                raise
    return assets
