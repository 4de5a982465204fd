"""Domain errors. Each carries a machine-readable ``reason``; ``ordo.grpc.status`` maps the class
to one canonical gRPC code in one place, so servicers never choose codes ad hoc."""

from __future__ import annotations


class OrdoError(Exception):
    """Base class; ``reason`` is a stable UPPER_SNAKE identifier clients may branch on."""

    reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class InvalidInput(OrdoError):
    """The caller sent something unusable (a bad argument, a file that is not an image...)."""

    reason = "INVALID_ARGUMENT"


class NotFound(OrdoError):
    reason = "NOT_FOUND"


class TooLarge(OrdoError):
    """An input exceeds a configured limit (bytes or pixels)."""

    reason = "TOO_LARGE"


class Unavailable(OrdoError):
    """A dependency (object store, vector index, queue, model) cannot be reached right now; retryable."""

    reason = "UNAVAILABLE"


class ModelUnavailable(OrdoError):
    """The configured model's weights cannot be had; the message says what to do."""

    reason = "MODEL_UNAVAILABLE"


class Conflict(OrdoError):
    """The operation contradicts the current state (e.g. a vector size that does not match the collection)."""

    reason = "FAILED_PRECONDITION"


class Unauthenticated(OrdoError):
    """No credential, or one that is unknown, revoked or expired (gRPC UNAUTHENTICATED, HTTP 401)."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(OrdoError):
    """A valid credential without the rights this call needs (gRPC PERMISSION_DENIED, HTTP 403)."""

    reason = "PERMISSION_DENIED"
