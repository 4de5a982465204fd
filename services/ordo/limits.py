"""Hard bounds on everything a client sends, checked once at the boundary, and on what Ordo sends back.

Why generic: Ordo's requests are protobuf messages, so one walk over a message's fields checks every RPC,
the ones that exist today and the ones added tomorrow, without each servicer remembering each field. The
gRPC interceptor (:mod:`ordo.grpc_api.guards`) runs :func:`check_message` on every request message, and
the REST gateway reaches the same services, so both doors share the same limits. Each refusal names the
field and the limit, never the value (a 10 000-character id is not echoed back), with a reason:

* ``FIELD_TOO_LONG``: a string or bytes field over its limit (UTF-8 bytes);
* ``TOO_MANY_ITEMS``: a repeated field or map over its item limit;
* ``NOT_FINITE``: a NaN or infinite float (``min_score``, ``eps``...);
* ``BAD_ENUM``: an enum number the contract does not define (an unknown filter kind...).

Responses are bounded too: every asset that goes out is clipped (:func:`clip_asset`), so a record stored
before these limits existed, or by an older version, cannot make ``ListAssets`` or a search answer grow
past the message limit for everyone; :func:`within_budget` trims lists to a byte budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ordo.errors import InvalidInput, Reason

# --- request fields (bytes of UTF-8, items) ------------------------------------------------------------
MAX_FILE_NAME_BYTES: Final = 1024  # 255 is the usual file-system limit; 1 KiB leaves room for UTF-8
MAX_URI_BYTES: Final = 4096  # source_uri, uris[], source_uri_prefix (PATH_MAX)
MAX_QUERY_BYTES: Final = 8000  # a 2 000-character query in any script (SearchCore caps characters)
MAX_ID_BYTES: Final = 256  # asset, job, run, cluster ids, request ids, page tokens are far shorter
MAX_TOKEN_BYTES: Final = 2048  # page tokens (opaque, base64 JSON)
MAX_NAME_BYTES: Final = 512  # cluster names, labels, model names, mime types
MAX_TEXT_BYTES: Final = 4096  # any other string field
MAX_METADATA_ENTRIES: Final = 64
MAX_METADATA_KEY_BYTES: Final = 128
MAX_METADATA_VALUE_BYTES: Final = 1024
MAX_REPEATED_ITEMS: Final = 1000  # asset_ids, cluster_ids, uris, texts...
MAX_BYTES_FIELD: Final = 64 * 1024 * 1024  # image bytes (the message limit is the real bound)

# --- responses -------------------------------------------------------------------------------------
MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024  # a list page or a search answer, whatever its item count
CLIP_FILE_NAME_BYTES: Final = 512
CLIP_URI_BYTES: Final = 1024
CLIP_METADATA_BYTES: Final = 4096  # all keys and values of one asset together
CLIP_ERROR_BYTES: Final = 1024

_BY_NAME: Final[dict[str, int]] = {
    "file_name": MAX_FILE_NAME_BYTES,
    "source_uri": MAX_URI_BYTES,
    "source_uri_prefix": MAX_URI_BYTES,
    "uris": MAX_URI_BYTES,
    "query": MAX_QUERY_BYTES,
    "texts": MAX_QUERY_BYTES,
    "page_token": MAX_TOKEN_BYTES,
    "order_by": MAX_ID_BYTES,  # "capture_time desc"; ordo.core.catalog_order allows 64 characters
    "request_id": MAX_ID_BYTES,
    "name": MAX_NAME_BYTES,
    "model": MAX_NAME_BYTES,
    "mime_type": MAX_NAME_BYTES,
    "mime_types": MAX_NAME_BYTES,
    "label_field": MAX_NAME_BYTES,
}


def _string_limit(name: str) -> int:
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.endswith(("_id", "_ids")):
        return MAX_ID_BYTES
    return MAX_TEXT_BYTES


def _too_long(path: str, size: int, limit: int) -> InvalidInput:
    return InvalidInput(f"{path} is {size} bytes long; the limit is {limit}", reason=Reason.FIELD_TOO_LONG)


def check_message(message: Message, prefix: str = "") -> None:
    """Raise InvalidInput (with a reason above) for the first field of ``message`` over its limit."""
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            _check_map(path, value)
        elif field.is_repeated:
            if len(value) > MAX_REPEATED_ITEMS:
                raise InvalidInput(
                    f"{path} has {len(value)} items; the limit is {MAX_REPEATED_ITEMS}", reason=Reason.TOO_MANY_ITEMS
                )
            for i, item in enumerate(value):
                _check_value(field, item, f"{path}[{i}]", field.name)
        else:
            _check_value(field, value, path, field.name)


def _check_value(field: FieldDescriptor, value: object, path: str, name: str) -> None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
            return  # Timestamps and the like: bounded by construction
        check_message(value, f"{path}.")  # type: ignore[arg-type]
    elif kind == FieldDescriptor.TYPE_STRING:
        size = len(value.encode("utf-8", "surrogatepass"))  # type: ignore[attr-defined]
        limit = _string_limit(name)
        if size > limit:
            raise _too_long(path, size, limit)
    elif kind == FieldDescriptor.TYPE_BYTES:
        if len(value) > MAX_BYTES_FIELD:  # type: ignore[arg-type]
            raise _too_long(path, len(value), MAX_BYTES_FIELD)  # type: ignore[arg-type]
    elif kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise InvalidInput(f"{path} must be a finite number", reason=Reason.NOT_FINITE)
    elif kind == FieldDescriptor.TYPE_ENUM:
        enum_type = field.enum_type
        if enum_type is not None and enum_type.values_by_number.get(value) is None:  # type: ignore[call-overload]
            raise InvalidInput(f"{path}: {value} is not a known {enum_type.name}", reason=Reason.BAD_ENUM)


def _check_map(path: str, value: object) -> None:
    entries: dict[str, str] = dict(value)  # type: ignore[call-overload]  # a map<string, string> field
    check_metadata(entries, path)


def check_metadata(entries: dict[str, str], path: str = "metadata") -> None:
    """Client metadata: at most 64 entries, keys up to 128 bytes, values up to 1 KiB."""
    if len(entries) > MAX_METADATA_ENTRIES:
        raise InvalidInput(
            f"{path} has {len(entries)} entries; the limit is {MAX_METADATA_ENTRIES}", reason=Reason.TOO_MANY_ITEMS
        )
    for key, item in entries.items():
        key_size = len(str(key).encode("utf-8", "surrogatepass"))
        if key_size > MAX_METADATA_KEY_BYTES:
            raise _too_long(f"a key of {path}", key_size, MAX_METADATA_KEY_BYTES)
        size = len(item.encode("utf-8", "surrogatepass")) if isinstance(item, str) else 0
        if size > MAX_METADATA_VALUE_BYTES:
            raise _too_long(f"{path}[{str(key)[:40]!r}]", size, MAX_METADATA_VALUE_BYTES)


def check_upload_header(file_name: str, source_uri: str, metadata: dict[str, str]) -> None:
    """One UploadImages file header (checked per file, so one bad header fails one file)."""
    if not file_name:
        raise InvalidInput("every file header needs a file_name", reason=Reason.MISSING_FILE_NAME)
    for path, value, limit in (
        ("file_name", file_name, MAX_FILE_NAME_BYTES),
        ("source_uri", source_uri, MAX_URI_BYTES),
    ):
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise _too_long(path, size, limit)
    check_metadata(metadata)


# --- responses -------------------------------------------------------------------------------------

_OBJECT_REPR: Final = re.compile(r"<[^<>]{0,200} at 0x[0-9a-fA-F]+>")
_STORE_KEY: Final = re.compile(r"'?assets/([0-9a-f]{8,64})/(original|thumb\.jpg|asset\.json)'?")
MAX_MESSAGE_BYTES: Final = 1024


def public_message(message: str) -> str:
    """An error message fit for a client: no Python object reprs (``<_io.BytesIO object at 0x…>``), no
    object-store keys (the asset they belong to instead), at most 1 KiB."""
    message = _OBJECT_REPR.sub("the data", message)
    message = _STORE_KEY.sub(lambda m: f"the {_KEY_KIND[m.group(2)]} of asset {m.group(1)[:12]}…", message)
    return clip(message, MAX_MESSAGE_BYTES)


_KEY_KIND: Final = {"original": "original", "thumb.jpg": "thumbnail", "asset.json": "record"}


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary), marked with an ellipsis."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[: max(0, limit - 3)].decode("utf-8", "ignore") + "…"


def clip_asset(asset: Message) -> Message:
    """An ``ordo.v1.Asset`` with its client-supplied text clipped for the wire (in place; returned)."""
    asset.file_name = clip(asset.file_name, CLIP_FILE_NAME_BYTES)  # type: ignore[attr-defined]
    asset.source_uri = clip(asset.source_uri, CLIP_URI_BYTES)  # type: ignore[attr-defined]
    asset.error = clip(asset.error, CLIP_ERROR_BYTES)  # type: ignore[attr-defined]
    metadata = asset.metadata  # type: ignore[attr-defined]
    used, kept = 0, {}
    for key in sorted(metadata):
        value = metadata[key]
        size = len(key.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass"))
        if used + size > CLIP_METADATA_BYTES:
            key, value = clip(key, MAX_METADATA_KEY_BYTES), clip(value, 64)
            size = len(key.encode()) + len(value.encode())
            if used + size > CLIP_METADATA_BYTES:
                break
        kept[key] = value
        used += size
    if len(kept) != len(metadata) or any(metadata[k] != v for k, v in kept.items() if k in metadata):
        metadata.clear()
        metadata.update(kept)
    return asset


M = TypeVar("M", bound=Message)


def within_budget(items: Sequence[M], budget: int = MAX_RESPONSE_BYTES) -> int:
    """How many leading ``items`` fit in ``budget`` serialized bytes (at least one, so paging moves on)."""
    used = 0
    for count, item in enumerate(items):
        used += item.ByteSize() + 8  # tag and length prefix
        if used > budget and count > 0:
            return count
    return len(items)
