"""S3 failures as ``ordo.errors``, with messages a person can act on.

minio raises ``S3Error`` (with the server's error code), ``ServerError``, ``InvalidResponseError`` and
``ValueError`` (its own argument checks); urllib3 raises when a connection fails. Each becomes the Ordo
error a caller can act on, naming the endpoint: ``NotFound`` for a missing key, ``Unavailable`` for an
unreachable server (``S3_UNREACHABLE``), rejected credentials (``S3_AUTH``) or a missing bucket
(``S3_NO_BUCKET``), ``InvalidInput`` for a request the server refused as malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from ordo.errors import InvalidInput, NotFound, OrdoError, Reason, Unavailable

_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AuthorizationHeaderMalformed",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidSecurity",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "ResourceNotFound"})
_BAD_INPUT_CODES = frozenset({"InvalidArgument", "InvalidObjectName", "KeyTooLongError", "InvalidURI"})
_SERVER_BUSY_CODES = frozenset({"InternalError", "RequestTimeout", "ServiceUnavailable", "SlowDown"})


@contextmanager
def s3_errors(
    endpoint: str, bucket: str, action: str, key: str | None, *, on_missing_bucket: Callable[[], None]
) -> Iterator[None]:
    """Turn whatever minio/urllib3 raise while doing ``action`` (on object ``key``, or on the bucket
    when None) into ``ordo.errors``; ``on_missing_bucket`` is called when the bucket turns out gone."""
    try:
        yield
    except S3Error as e:
        raise from_s3_error(e, endpoint, bucket, action, key, on_missing_bucket) from e
    except ServerError as e:
        raise Unavailable(
            f"S3 server {endpoint} failed to {action} (HTTP {e.status_code})", reason=Reason.S3_SERVER_ERROR
        ) from e
    except InvalidResponseError as e:
        raise Unavailable(
            f"{endpoint} gave a non-S3 answer while trying to {action}: {e}", reason=Reason.S3_BAD_RESPONSE
        ) from e
    except ValueError as e:  # minio's own argument checks (e.g. a blank key)
        raise InvalidInput(f"cannot {action}: {e or 'invalid argument'}", reason=Reason.BAD_OBJECT_KEY) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        cause = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason else e
        raise Unavailable(
            f"S3 endpoint {endpoint} is unreachable (while trying to {action}): {cause}",
            reason=Reason.S3_UNREACHABLE,
        ) from e


def from_s3_error(
    e: S3Error, endpoint: str, bucket: str, action: str, key: str | None, on_missing_bucket: Callable[[], None]
) -> OrdoError:
    """The Ordo error for an S3 error response, chosen by its code."""
    code = e.code or ""
    if code in _NOT_FOUND_CODES and key is not None:
        return NotFound(f"object {key!r} not found in bucket {bucket!r}", reason=Reason.OBJECT_NOT_FOUND)
    if code == "NoSuchBucket" or (code in _NOT_FOUND_CODES and key is None):
        on_missing_bucket()
        return Unavailable(f"S3 bucket {bucket!r} does not exist on {endpoint}", reason=Reason.S3_NO_BUCKET)
    if code in _AUTH_CODES:
        return Unavailable(
            f"S3 credentials rejected by {endpoint} ({code}) while trying to {action}: "
            "check the access key and secret key",
            reason=Reason.S3_AUTH,
        )
    if code in _BAD_INPUT_CODES:
        return InvalidInput(f"S3 refused to {action}: {code}: {e.message}", reason=Reason.S3_INVALID_REQUEST)
    if code in _SERVER_BUSY_CODES:
        return Unavailable(f"S3 server {endpoint} could not {action}: {code}", reason=Reason.S3_SERVER_ERROR)
    return OrdoError(f"S3 server {endpoint} refused to {action}: {code}: {e.message}", reason=Reason.S3_ERROR)
