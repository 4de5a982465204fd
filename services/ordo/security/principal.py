"""Who is calling: roles, library grants and the per-request principal (a context variable).

Roles are ordered (read < write < admin). A key may also be limited to some libraries, each with read
or read-write access (Qdrant's per-collection access is the model); a key without library grants reaches
every library. What a key may do in a library is the lesser of its role and its grant there.
"""

from __future__ import annotations

import contextvars
import enum
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from ordo.errors import InvalidInput, Reason

DEFAULT_LIBRARY = "default"
LIBRARY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Role(enum.IntEnum):
    """Ordered so that ``a >= b`` means "a may do what b may"."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise InvalidInput(f"unknown role '{value}'; choose read, write or admin", reason=Reason.BAD_ROLE) from None

    @property
    def label(self) -> str:
        return self.name.lower()


def check_library(name: str) -> str:
    """Library names are short slugs: they appear in ids, payload filters and URLs."""
    if not LIBRARY_NAME.match(name):
        raise InvalidInput(
            f"'{name[:80]}' is not a library name (lower-case letters, digits, '-' and '_', at most 63)",
            reason=Reason.BAD_LIBRARY,
        )
    return name


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``libraries`` maps a library to the role granted there (read or write);
    empty means every library at the key's role."""

    key_id: str
    name: str
    role: Role
    libraries: Mapping[str, Role] = field(default_factory=dict)

    @property
    def all_libraries(self) -> bool:
        return not self.libraries

    def role_in(self, library: str) -> Role | None:
        """What this caller may do in ``library``; None when it may not see it at all."""
        if self.all_libraries:
            return self.role
        granted = self.libraries.get(library)
        return None if granted is None else min(granted, self.role)

    def can_read(self, library: str) -> bool:
        return self.role_in(library) is not None

    def can_write(self, library: str) -> bool:
        role = self.role_in(library)
        return role is not None and role >= Role.WRITE

    def readable_libraries(self) -> tuple[str, ...] | None:
        """The libraries to restrict reads to, or None for "no restriction"."""
        return None if self.all_libraries else tuple(sorted(self.libraries))

    def covers(self, role: Role, libraries: Mapping[str, Role]) -> bool:
        """True when a key with ``role`` and ``libraries`` has no right this principal lacks
        (the rule for creating keys: never more rights than your own)."""
        if role > self.role:
            return False
        if self.all_libraries:
            return True
        if not libraries:  # every library is more than a limited set
            return False
        return all((mine := self.role_in(lib)) is not None and granted <= mine for lib, granted in libraries.items())

    def describe(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role.label,
            "libraries": {lib: r.label for lib, r in sorted(self.libraries.items())},
        }


# Auth off (loopback only): every caller is this principal, so code paths stay the same.
LOCAL_ADMIN = Principal(key_id="local", name="auth off (loopback)", role=Role.ADMIN)
# Callers of public methods (health, sign-in) with auth on: no library, the lowest role.
ANONYMOUS = Principal(key_id="anonymous", name="anonymous", role=Role.READ, libraries={"-": Role.READ})

_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("ordo_principal", default=None)


def current_principal() -> Principal:
    """The caller of the request being served. Outside any request (CLI, workers, tests that call the
    core directly) it is the local admin: those run with the rights of whoever could start them."""
    return _current.get() or LOCAL_ADMIN


def principal_or_none() -> Principal | None:
    """The caller, or None outside a request (what a rate limiter keys on)."""
    return _current.get()


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


def parse_grants(values: list[str] | tuple[str, ...]) -> dict[str, Role]:
    """``["photos", "shared:read"]`` → {"photos": WRITE, "shared": READ} (a bare name is read-write)."""
    grants: dict[str, Role] = {}
    for value in values:
        name, _, access = value.partition(":")
        access = access or "write"
        if access not in ("read", "write"):
            raise InvalidInput(f"library access '{access}' must be read or write", reason=Reason.BAD_LIBRARY)
        grants[check_library(name.strip())] = Role.parse(access)
    return grants
