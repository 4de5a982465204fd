"""What Ordo accepts from untrusted images: the failure reasons, the resource limits, the format allow-list.

Decided once here so that :func:`ordo.imaging.probe` (upload time) and :func:`ordo.imaging.decode` (embedding
time) can never disagree about what a file may be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from PIL import Image

from ordo.errors import Reason, TooLarge

# --- reasons -------------------------------------------------------------------------------------
# Stable identifiers clients may branch on (they end up in ``OrdoError.reason`` and in job failures).
EMPTY_FILE: Final = Reason.EMPTY_FILE  # InvalidInput: zero bytes
FILE_TOO_LARGE: Final = Reason.FILE_TOO_LARGE  # TooLarge: more bytes than ImageLimits.max_bytes
NOT_AN_IMAGE: Final = Reason.NOT_AN_IMAGE  # InvalidInput: no image format recognised at all
UNSUPPORTED_FORMAT: Final = Reason.UNSUPPORTED_FORMAT  # InvalidInput: an image, but not one we accept
DECOMPRESSION_BOMB: Final = Reason.DECOMPRESSION_BOMB  # TooLarge: header promises too many pixels
TRUNCATED: Final = Reason.TRUNCATED  # InvalidInput: the file ends before its pixel data does
CORRUPT: Final = Reason.CORRUPT  # InvalidInput: recognised format, but the data cannot be decoded
REASONS: Final = (
    EMPTY_FILE,
    FILE_TOO_LARGE,
    NOT_AN_IMAGE,
    UNSUPPORTED_FORMAT,
    DECOMPRESSION_BOMB,
    TRUNCATED,
    CORRUPT,
)

# --- formats -------------------------------------------------------------------------------------
# Pillow format name -> the MIME type we record. MPO is how Pillow names multi-picture JPEGs (many
# phone and 3D cameras write them); to everyone else they are ordinary JPEGs. HEIF only exists when
# a plugin such as pillow-heif has registered it, and is accepted only then.
FORMAT_MIME: Final[dict[str, str]] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
}
# The Pillow openers we let look at untrusted bytes (MPO is produced by the JPEG opener).
OPENERS: Final = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF")

# Register every bundled plugin once, at import, so the allow-list below sees e.g. AVIF. This only
# adds openers to Pillow's registry (Pillow does the same lazily); it changes no behaviour.
Image.init()


@dataclass(frozen=True)
class ImageLimits:
    """Per-call resource limits for untrusted images.

    ``max_pixels`` is our own decompression-bomb guard: a tiny file can declare a 50 000 x 50 000
    canvas and make the decoder allocate gigabytes. It is checked from the header before any pixel is
    decoded, and it is the only pixel limit: creating limits raises Pillow's own guard to match (see
    :func:`align_pillow_guard`). 200 MP takes the largest phone and medium-format photos.
    """

    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 200_000_000

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError("ImageLimits.max_bytes and max_pixels must be positive")
        align_pillow_guard(self.max_pixels)


@dataclass(frozen=True)
class ImageInfo:
    """What a header says about an image.

    ``width``/``height`` are as displayed, i.e. after EXIF orientation (swapped for orientations
    5-8), because that is the size users, thumbnails and search filters see. ``captured_at`` is
    always timezone-aware (UTC when the file records no offset) so it can be compared and stored
    without guessing. ``frames`` counts animation frames or pages; only the first is ever decoded.
    """

    mime_type: str
    width: int
    height: int
    captured_at: datetime | None
    format: str
    frames: int


def allowed_openers() -> list[str]:
    """The allow-listed openers registered right now (HEIF appears only once a plugin adds it)."""
    return [name for name in OPENERS if name in Image.OPEN]


def accepted_mime_types() -> set[str]:
    """The MIME types Ordo takes right now (as :func:`sniff_mime` names them)."""
    return accepted_mimes(allowed_openers())


def align_pillow_guard(max_pixels: int) -> None:
    """Make Pillow's process-wide bomb guard agree with ``ORDO_MAX_IMAGE_PIXELS``.

    Pillow refuses images above twice ``Image.MAX_IMAGE_PIXELS`` (89.5 MP by default) inside
    ``Image.open``, before Ordo's own check runs, so a real 108 MP photo was refused whatever the
    setting said. Ordo's check (:func:`ordo.imaging.decoding.inspect_header`, from the header, before
    any pixel is decoded) is the one limit; Pillow's guard is raised to it (never lowered) so that it only
    ever agrees. The wiring (:class:`ordo.app.AppContext`) calls this once per process with the configured
    limit."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def accepted_mimes(openers: list[str]) -> set[str]:
    mimes = {FORMAT_MIME[name] for name in openers}
    if "image/heif" in mimes:
        mimes.add("image/heic")
    return mimes


def pixel_limit(limits: ImageLimits) -> int:
    """``ORDO_MAX_IMAGE_PIXELS``: the one pixel limit (see :func:`align_pillow_guard`)."""
    return limits.max_pixels


_PILLOW_SIZE_RE: Final = re.compile(r"Image size \((\d+) pixels\)")


def bomb_error(detail: str, limits: ImageLimits | None = None) -> TooLarge:
    """A DECOMPRESSION_BOMB error stated in Ordo's terms (Pillow's own message names Pillow's limit)."""
    match = _PILLOW_SIZE_RE.search(detail)
    if match and limits is not None:
        detail = f"{match.group(1)} pixels; the limit is {limits.max_pixels} (ORDO_MAX_IMAGE_PIXELS)"
    return TooLarge(f"image has too many pixels ({detail})", reason=DECOMPRESSION_BOMB)
