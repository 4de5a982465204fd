"""Every RPC and every route against the real stack: without a key, with a read key, with a revoked and
an expired key. The policy table is the oracle for what each role may call; "allowed" means the call got
past access control (its answer may still be a validation error for the empty request sent)."""

from __future__ import annotations

import grpc
import httpx
import pytest

from ordo.grpc_api.status import error_reason
from ordo.security.policy import GRPC_POLICY, REST_POLICY
from ordo.v1 import analysis_pb2, ingest_pb2, search_pb2
from tests.security.conftest import SecureStack

DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
ORDO_METHODS = [
    (f"/{service.full_name}/{method.name}", method.client_streaming, method.server_streaming)
    for module in (ingest_pb2, search_pb2, analysis_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
RANK = {"public": 0, "read": 1, "write": 2, "admin": 3}


def call(
    stack: SecureStack, kind: str | None, method: str, client_stream: bool, server_stream: bool
) -> grpc.StatusCode:
    """One empty request to ``method`` with the given key; the status it ends with."""
    key = stack.keys[kind] if kind else ""
    metadata = [("authorization", f"Bearer {key}")] if key else []
    with grpc.insecure_channel(stack.stack.address) as channel:
        kw = {"request_serializer": lambda m: m, "response_deserializer": lambda b: b}
        if client_stream and server_stream:
            rpc = channel.stream_stream(method, **kw)
        elif client_stream:
            rpc = channel.stream_unary(method, **kw)
        elif server_stream:
            rpc = channel.unary_stream(method, **kw)
        else:
            rpc = channel.unary_unary(method, **kw)
        request = iter([]) if client_stream else b""
        try:
            result = rpc(request, metadata=metadata, timeout=20)
            if server_stream:
                for _ in result:
                    break
                result.cancel()
        except grpc.RpcError as exc:
            if exc.code() in DENIED:
                assert error_reason(exc), f"{method}: a refusal must carry a reason"
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method, client_stream, server_stream", ORDO_METHODS, ids=[m[0] for m in ORDO_METHODS])
def test_every_rpc_by_key(secure: SecureStack, method: str, client_stream: bool, server_stream: bool) -> None:
    needed = RANK[GRPC_POLICY[method]]
    for kind in (None, "revoked", "expired"):
        assert call(secure, kind, method, client_stream, server_stream) == grpc.StatusCode.UNAUTHENTICATED, kind
    read = call(secure, "read", method, client_stream, server_stream)
    if needed > RANK["read"]:
        assert read == grpc.StatusCode.PERMISSION_DENIED
    else:
        assert read not in DENIED
    if needed == RANK["write"]:
        assert call(secure, "write", method, client_stream, server_stream) not in DENIED


def test_refusals_name_their_reason(secure: SecureStack) -> None:
    for kind, reason in [(None, "MISSING_KEY"), ("revoked", "KEY_REVOKED"), ("expired", "KEY_EXPIRED")]:
        with pytest.raises(grpc.RpcError) as err:
            secure.client(kind).ingest.GetStats(ingest_pb2.GetStatsRequest())
        assert (err.value.code(), error_reason(err.value)) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    with pytest.raises(grpc.RpcError) as err:
        secure.client("read").ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model="ordo-lite"))
    assert (err.value.code(), error_reason(err.value)) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_TOO_LOW")
    assert "admin" in err.value.details()


def _url(path: str) -> str:
    return (
        path.replace("{job_id}", "0" * 32)
        .replace("{asset_id}", "0" * 64)
        .replace("{run_id}", "r0")
        .replace("{cluster_id}", "c0")
        .replace("{key_id}", "0" * 16)
    )


ROUTES = [(m, p, a) for (m, p), a in REST_POLICY.items() if m != "HEAD" and p.startswith("/api/")]


@pytest.mark.parametrize("method, path, access", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_by_key(secure: SecureStack, method: str, path: str, access: str) -> None:
    url = secure.base_url + _url(path)
    body = {} if method in ("POST", "PATCH") else None

    def status(kind: str | None) -> int:
        return httpx.request(method, url, json=body, headers=secure.headers(kind), timeout=30).status_code

    if access == "public":
        return
    assert status(None) == 401 and status("revoked") == 401 and status("expired") == 401
    read = status("read")
    assert read == 403 if RANK[access] > RANK["read"] else read not in (401, 403)
    if access != "admin":
        assert status("write") not in (401, 403)
    # X-Api-Key works as well as a bearer token.
    if access == "read":
        assert httpx.request(method, url, json=body, headers={"X-Api-Key": secure.keys["read"]}).status_code != 401


def test_health_needs_no_key_and_refused_attempts_are_counted(secure: SecureStack) -> None:
    assert secure.client(None).health("ingest") == "SERVING"
    assert httpx.get(secure.base_url + "/api/status").status_code == 401
    log = secure.stack.log.read_text()
    assert "refused grpc" in log or "refused http" in log
