"""Telling formats apart by their magic bytes, and telling a damaged file from a corrupt one.

Magic bytes decide what Pillow is never shown (EPS would run Ghostscript), and structural end-of-file checks
tell a TRUNCATED upload (the user can retry it) from a CORRUPT one, which Pillow's messages do not.
"""

from __future__ import annotations

import re
import struct
from typing import Final

from ordo.errors import InvalidInput
from ordo.imaging.limits import CORRUPT, TRUNCATED

_TRUNCATION_HINTS: Final = ("truncated", "premature end", "unexpected end", "not enough data")


def sniff_mime(data: bytes) -> str | None:
    """Guess a MIME type from magic bytes alone, or ``None``.

    Used to refuse dangerous or unsupported formats before Pillow parses them, and to tell a
    damaged image ("it starts like a PNG") from something that is not an image at all. It recognises
    both formats we accept and common ones we refuse; it never decides acceptance by itself.
    """
    head = bytes(data[:64])
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM") and len(head) >= 18:
        # "BM" alone is too weak (text can start with it): also require a known DIB header size.
        (dib_size,) = struct.unpack_from("<I", head, 14)
        if dib_size in (12, 16, 40, 52, 56, 64, 108, 124):
            return "image/bmp"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        return _isobmff_mime(bytes(data[:4096]))
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "application/postscript"
    if head.startswith(b"8BPS"):
        return "image/vnd.adobe.photoshop"
    if head.startswith((b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")) and len(head) >= 6 and head[4:6] != b"\0\0":
        return "image/vnd.microsoft.icon"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "image/jp2"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "image/jxl"
    if head.startswith(b"qoif"):
        return "image/qoi"
    if head.startswith(b"DDS "):
        return "image/vnd.ms-dds"
    if head.startswith(b"icns"):
        return "image/icns"
    if head.startswith(b"gimp xcf"):
        return "image/x-xcf"
    text = bytes(data[:1024]).lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    return None


def decode_failure(exc: BaseException, data: bytes) -> InvalidInput:
    """Classify a Pillow failure on an allow-listed format as TRUNCATED or CORRUPT.

    Pillow signals truncation inconsistently (OSError text, EOFError, a UserWarning for TIFF, or a
    generic "could not create decoder" for WebP), so we look at the message and, where the format
    records its own length, at the bytes themselves.
    """
    text = str(exc).lower()
    truncated = isinstance(exc, EOFError) or any(hint in text for hint in _TRUNCATION_HINTS)
    if truncated or looks_truncated(data, sniff_mime(data)):
        return InvalidInput(f"the image data ends early ({exc})", reason=TRUNCATED)
    detail = re.sub(r"<[^<>]{0,200} at 0x[0-9a-fA-F]+>", "the file", str(exc))  # no Python object reprs
    return InvalidInput(f"the image data cannot be decoded ({type(exc).__name__}: {detail})", reason=CORRUPT)


def looks_truncated(data: bytes, mime: str | None) -> bool:
    """Structural end-of-file checks for formats that make one cheap and reliable."""
    if mime == "image/png":
        return b"IEND" not in data[-64:]
    if mime == "image/jpeg":
        # Entropy-coded data never contains an unescaped FF DA, so everything after the last SOS
        # marker is the last scan, which must be followed by EOI (FF D9).
        last_scan = data.rfind(b"\xff\xda")
        return last_scan < 0 or data.find(b"\xff\xd9", last_scan) < 0
    if mime == "image/gif":
        return not data.rstrip(b"\x00").endswith(b";")
    if mime == "image/webp" and len(data) >= 8:
        (riff_size,) = struct.unpack_from("<I", data, 4)
        return len(data) < riff_size + 8
    if mime == "image/bmp" and len(data) >= 6:
        (file_size,) = struct.unpack_from("<I", data, 2)
        return len(data) < file_size
    if mime in ("image/avif", "image/heic"):
        return _isobmff_truncated(data)
    return False


def _isobmff_mime(head: bytes) -> str | None:
    """AVIF/HEIC live in ISO-BMFF containers; the ``ftyp`` brands say which."""
    (box_size,) = struct.unpack_from(">I", head, 0)
    brands = {head[8:12]}
    end = min(box_size, len(head))
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    if brands & {b"avif", b"avis"}:
        return "image/avif"
    if brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}:
        return "image/heic"
    return None


def _isobmff_truncated(data: bytes) -> bool:
    """True when a top-level ISO-BMFF box claims to extend past the end of the file."""
    offset = 0
    while offset + 8 <= len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        if size == 1:
            if offset + 16 > len(data):
                return True
            (size,) = struct.unpack_from(">Q", data, offset + 8)
        elif size == 0:  # box runs to the end of the file
            return False
        if size < 8:
            return False  # malformed, not truncated
        offset += size
    return offset != len(data)
