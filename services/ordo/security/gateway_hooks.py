"""Installs the security layer on the gateway app: the policy dependency on every route, the
Host/Origin guard, and the security routes. One call from ``gateway.app.create_app``."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from ordo.config import Settings
from ordo.security.http_auth import GatewaySecurity, OriginGuard
from ordo.security.routes import add_security_routes


def install(app: FastAPI, settings: Settings) -> GatewaySecurity:
    """Call before any route is added: routes pick up the router's dependencies when they are added."""
    security = GatewaySecurity(settings)
    app.router.dependencies.append(Depends(security.dependency))
    app.add_middleware(OriginGuard, settings=settings)
    add_security_routes(app, security)
    app.state.security = security
    return security
