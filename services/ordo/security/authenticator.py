"""One authenticator per process: turns a presented credential into a principal and checks it against
the policy table. The gRPC interceptor and the HTTP dependency are thin adapters around it."""

from __future__ import annotations

from functools import cached_property

from ordo.config import Settings
from ordo.errors import PermissionDenied, Reason, Unauthenticated
from ordo.security.policy import Access
from ordo.security.principal import LOCAL_ADMIN, Principal, Role

MAX_CREDENTIAL_CHARS = 512


def bearer(value: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` value ('' when absent or another scheme)."""
    if not value:
        return ""
    scheme, _, token = value[:MAX_CREDENTIAL_CHARS].partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def required(self) -> bool:
        return self.settings.auth == "required"

    @cached_property
    def keys(self):
        from ordo.app import create_object_store
        from ordo.security.keys import KeyStore

        return KeyStore(create_object_store(self.settings), self.settings.auth_cache_seconds)

    def principal(self, token: str) -> Principal:
        """Who presents ``token``. With auth off everyone is the local admin (loopback only)."""
        if not self.required:
            return LOCAL_ADMIN
        if not token:
            raise Unauthenticated(
                "this server requires an API key: send 'authorization: Bearer ordo_…' (ORDO_API_KEY for the CLI)",
                reason=Reason.MISSING_KEY,
            )
        return self.keys.verify(token)

    def check(self, principal: Principal, access: Access | None, target: str) -> None:
        """Raise unless ``principal`` may call ``target``. With auth on, a target without a policy entry is
        refused (fail closed); with auth off everyone is the local admin anyway, and the coverage test
        (tests/security/test_policy_coverage.py) is what catches the missing entry."""
        if access is None:
            if not self.required:
                return
            raise PermissionDenied(f"{target} has no entry in the access policy; refused", reason=Reason.NO_POLICY)
        if access == "public":
            return
        needed = Role.parse(access)
        if principal.role < needed:
            raise PermissionDenied(
                f"{target} needs a {needed.label} key; key {principal.key_id} is {principal.role.label}",
                reason=Reason.ROLE_TOO_LOW,
            )
