"""Every gRPC method and every REST route has an entry in the one policy table (ordo.security.policy)."""

from __future__ import annotations

from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from ordo.config import Settings
from ordo.gateway.app import create_app
from ordo.security.policy import GRPC_POLICY, REST_POLICY
from ordo.v1 import analysis_pb2, ingest_pb2, search_pb2, tasks_pb2

MODULES = (ingest_pb2, search_pb2, analysis_pb2, tasks_pb2, health_pb2, reflection_pb2)


def grpc_methods() -> list[str]:
    return [
        f"/{service.full_name}/{method.name}"
        for module in MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


def rest_routes() -> list[tuple[str, str]]:
    """The app's routes, plus every operation of its OpenAPI document (which also lists routes that
    arrive through included routers)."""
    app = create_app(Settings())
    found = {
        (method, route.path)
        for route in app.routes
        for method in sorted(getattr(route, "methods", None) or ())
        if getattr(route, "path", None)
    }
    for path, operations in app.openapi()["paths"].items():
        found |= {(method.upper(), path) for method in operations}
    return sorted(found)


def test_every_rpc_has_a_policy_entry() -> None:
    missing = [m for m in grpc_methods() if m not in GRPC_POLICY]
    assert not missing, (
        "gRPC methods without an access-policy entry (add them to GRPC_POLICY in "
        "services/ordo/security/policy.py with 'read', 'write', 'admin' or 'public'):\n  " + "\n  ".join(missing)
    )


def test_every_route_has_a_policy_entry() -> None:
    missing = [f"{m} {p}" for m, p in rest_routes() if (m, p) not in REST_POLICY]
    assert not missing, (
        "REST routes without an access-policy entry (add (method, path template) to REST_POLICY in "
        "services/ordo/security/policy.py):\n  " + "\n  ".join(missing)
    )


def test_the_table_names_nothing_that_does_not_exist() -> None:
    """Stale entries hide typos (a misspelt method would be refused, fail closed, but silently)."""
    methods = set(grpc_methods()) | {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"}
    assert sorted(set(GRPC_POLICY) - methods) == []
    routes = set(rest_routes())
    optional = {("GET", "/")}  # only when the web UI is not built
    assert sorted(set(REST_POLICY) - routes - optional - {(m, p) for m, p in REST_POLICY if m == "HEAD"}) == []


def test_a_method_without_an_entry_is_refused_when_auth_is_on() -> None:
    import pytest

    from ordo.errors import PermissionDenied
    from ordo.security.authenticator import Authenticator
    from ordo.security.principal import LOCAL_ADMIN

    with pytest.raises(PermissionDenied) as err:
        Authenticator(Settings(auth="required")).check(LOCAL_ADMIN, None, "/ordo.v1.New/Thing")
    assert err.value.reason == "NO_POLICY"
    Authenticator(Settings()).check(LOCAL_ADMIN, None, "/ordo.v1.New/Thing")  # auth off: everyone is admin
