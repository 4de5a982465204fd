"""THE access policy: which role every gRPC method and every REST route needs. Nothing else decides.

The gRPC interceptor (``grpc_auth``) looks up the full method name, the HTTP dependency (``http_auth``)
looks up the route's method and path template; ``tests/security/test_policy_coverage.py`` walks the
service descriptors and the gateway's routes and fails naming every entry missing here. A method without
an entry is refused (fail closed), so a new RPC is unusable with auth on until it is classified.

Roles: ``read`` (search, get, list, jobs), ``write`` (upload, ingest from configured buckets, analysis runs,
rename, resume), ``admin`` (keys, model switch, delete, server-side paths, ops); ``public`` needs no key
(health, sign-in, the API schema). Library scoping is applied on top by the servicers (``libraries``).
"""

from __future__ import annotations

from typing import Literal

Access = Literal["public", "read", "write", "admin"]

GRPC_POLICY: dict[str, Access] = {
    # --- ordo.v1.IngestService ---
    "/ordo.v1.IngestService/UploadImages": "write",
    "/ordo.v1.IngestService/IngestUris": "write",  # s3:// of configured buckets; local paths need admin too
    "/ordo.v1.IngestService/GetJob": "read",
    "/ordo.v1.IngestService/ListJobs": "read",
    "/ordo.v1.IngestService/WatchJob": "read",
    "/ordo.v1.IngestService/GetAsset": "read",
    "/ordo.v1.IngestService/GetAssetContent": "read",
    "/ordo.v1.IngestService/ListAssets": "read",
    "/ordo.v1.IngestService/DeleteAsset": "admin",
    "/ordo.v1.IngestService/GetStats": "read",
    "/ordo.v1.IngestService/ListModelVersions": "read",
    "/ordo.v1.IngestService/ActivateModel": "admin",
    "/ordo.v1.IngestService/ResumeJob": "write",
    # --- ordo.v1.SearchService ---
    "/ordo.v1.SearchService/SearchText": "read",
    "/ordo.v1.SearchService/SearchImage": "read",
    "/ordo.v1.SearchService/EmbedTexts": "read",
    "/ordo.v1.SearchService/GetImageVectors": "read",
    # --- ordo.v1.AnalysisService ---
    "/ordo.v1.AnalysisService/CreateClusteringRun": "write",
    "/ordo.v1.AnalysisService/CreateProjectionRun": "write",
    "/ordo.v1.AnalysisService/GetRun": "read",
    "/ordo.v1.AnalysisService/ListRuns": "read",
    "/ordo.v1.AnalysisService/GetClusters": "read",
    "/ordo.v1.AnalysisService/RenameCluster": "write",
    "/ordo.v1.AnalysisService/GetProjection": "read",
    "/ordo.v1.AnalysisService/FindDuplicates": "read",
    "/ordo.v1.AnalysisService/ListClusterMembers": "read",
    "/ordo.v1.AnalysisService/CompareRuns": "read",
    "/ordo.v1.AnalysisService/MoveToCluster": "write",
    # --- infrastructure ---
    "/grpc.health.v1.Health/Check": "public",  # load balancers and `ordo` probe without a key
    "/grpc.health.v1.Health/Watch": "public",
    "/grpc.health.v1.Health/List": "public",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "read",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": "read",
}

# (HTTP method, path template exactly as the route declares it).
REST_POLICY: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): "public",
    ("GET", "/api/status"): "read",
    ("POST", "/api/uploads"): "write",
    ("POST", "/api/ingest-uris"): "write",
    ("GET", "/api/jobs"): "read",
    ("GET", "/api/jobs/{job_id}"): "read",
    ("GET", "/api/jobs/{job_id}/events"): "read",
    ("GET", "/api/assets"): "read",
    ("GET", "/api/assets/{asset_id}"): "read",
    ("DELETE", "/api/assets/{asset_id}"): "admin",
    ("GET", "/api/assets/{asset_id}/thumbnail"): "read",
    ("GET", "/api/assets/{asset_id}/original"): "read",
    ("GET", "/api/search"): "read",
    ("POST", "/api/search"): "read",
    ("POST", "/api/search/image"): "read",
    ("GET", "/api/runs"): "read",
    ("GET", "/api/runs/{run_id}"): "read",
    ("POST", "/api/runs/clustering"): "write",
    ("POST", "/api/runs/projection"): "write",
    ("GET", "/api/runs/{run_id}/clusters"): "read",
    ("PATCH", "/api/runs/{run_id}/clusters/{cluster_id}"): "write",
    ("GET", "/api/runs/{run_id}/projection"): "read",
    ("GET", "/api/runs/{run_id}/clusters/{cluster_id}/members"): "read",
    ("POST", "/api/runs/{run_id}/moves"): "write",
    ("GET", "/api/compare-runs"): "read",
    ("GET", "/api/duplicates"): "read",
    # --- library (ordo.gateway.library_routes, issue 16) ---
    ("GET", "/api/library/capabilities"): "read",
    ("POST", "/api/assets/batch-delete"): "admin",  # as DeleteAsset
    ("POST", "/api/assets/zip"): "read",  # a download: POST only because the id list is long
    ("GET", "/api/duplicate-groups"): "read",  # a dry run; applying it is a batch delete
    ("GET", "/api/runs/{run_id}/map-attributes"): "read",  # gateway/map_routes.py (issue 16)
    # --- security (ordo.security.routes) ---
    ("POST", "/api/session"): "public",  # sign in: the key is in the body
    ("GET", "/api/session"): "public",  # who am I (401 when signed out)
    ("DELETE", "/api/session"): "public",  # sign out
    ("GET", "/api/keys"): "admin",
    ("POST", "/api/keys"): "admin",
    ("DELETE", "/api/keys/{key_id}"): "admin",
    ("POST", "/api/keys/{key_id}/rotate"): "admin",
    ("GET", "/api/ops"): "admin",
    # --- FastAPI's own documentation ---
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("HEAD", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("HEAD", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("HEAD", "/redoc"): "public",
    ("HEAD", "/openapi.json"): "public",
    ("GET", "/"): "public",  # only when the web UI is not built (a page saying so)
}

# The ops listener (``/metrics``, ``/ops`` on ORDO_METRICS_PORT), checked when it binds a non-loopback address.
OPS_POLICY: dict[str, Access] = {"/metrics": "admin", "/ops": "admin", "/healthz": "public", "/": "public"}


def grpc_access(method: str) -> Access | None:
    return GRPC_POLICY.get(method)


def rest_access(method: str, path_template: str) -> Access | None:
    return REST_POLICY.get((method.upper(), path_template))
