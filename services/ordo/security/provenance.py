"""Where an upload came from, as the server records it.

The client's own claim (``UploadFileHeader.source_uri``, e.g. ``file:///home/me/x.jpg`` from the CLI) is
kept apart in the asset's metadata under ``client_source_uri`` and labelled as such; ``source_uri`` is
always the server's ``upload://`` form with a cleaned relative name, so nothing a client sends can make
the server claim a ``file://`` or ``javascript:`` origin.
"""

from __future__ import annotations

import re

CLIENT_SOURCE_KEY = "client_source_uri"
MAX_CLIENT_SOURCE_CHARS = 2048
MAX_NAME_CHARS = 1024
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def _clean_relative(name: str) -> str:
    parts = [p for p in _UNSAFE.sub("_", name).split("/") if p not in ("", ".", "..")]
    return "/".join(parts)[:MAX_NAME_CHARS]


def upload_source(file_name: str, client_source_uri: str, metadata: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(server-recorded source_uri, metadata with the client's claim labelled)."""
    claimed = client_source_uri[:MAX_CLIENT_SOURCE_CHARS]
    relative = claimed.removeprefix("upload://") if claimed.startswith("upload://") else ""
    source = "upload://" + (_clean_relative(relative) or _clean_relative(file_name) or "unnamed")
    out = dict(metadata)
    out.pop(CLIENT_SOURCE_KEY, None)  # only the server writes this label
    if claimed and not claimed.startswith("upload://"):
        out[CLIENT_SOURCE_KEY] = claimed
    return source, out
