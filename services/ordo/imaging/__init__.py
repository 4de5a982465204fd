"""The one place where untrusted bytes become RGB pixels.

Everything that reads an uploaded or crawled file goes through :func:`probe` (cheap, header only, at
upload time) and :func:`decode` (full decode for embedding and thumbnails). Keeping it in one module
means the security limits (byte size, decompression bombs, the format allow-list) and the colour
normalisation (EXIF orientation, CMYK, alpha, 16-bit) are decided once and tested once, instead of
every caller getting a slightly different idea of what "the pixels" of a file are.

Design notes:

* Pillow is only ever shown formats from an allow-list (``Image.open(formats=...)``). Formats that
  need an external interpreter (EPS/PS via Ghostscript) or that Pillow cannot decode anyway (PDF) are
  recognised by their magic bytes and refused before Pillow sees them.
* The one process-wide Pillow setting touched is ``Image.MAX_IMAGE_PIXELS``, and only ever raised to
  ``ORDO_MAX_IMAGE_PIXELS`` (:func:`align_pillow_guard`), so that Ordo's limit is the one that applies.
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` and the warnings filters are never changed.
* Memory budget of one decode: JPEGs wanted at ``max_side`` are decoded scaled in the DCT domain
  (``draft``: 1/2 to 1/8 per side), so a 108 MP photo costs about 3 bytes x 108 MP / 64 = 5 MB of pixels
  plus its file; other formats are decoded whole, at most 4 bytes x ``max_pixels`` (800 MB at the 200 MP
  default) while being converted to RGB.
* Every failure on untrusted input is reported as :class:`~ordo.errors.InvalidInput` or
  :class:`~ordo.errors.TooLarge` with one of the reasons in :mod:`~ordo.imaging.limits`, never as a raw Pillow
  exception, so callers can record per-file failures and move on.

The package is split by responsibility: :mod:`~ordo.imaging.limits` (reasons, limits, the format allow-list),
:mod:`~ordo.imaging.sniffing` (magic bytes, truncation), :mod:`~ordo.imaging.exif`, :mod:`~ordo.imaging.pixels`
(RGB conversion, thumbnails) and :mod:`~ordo.imaging.decoding` (:func:`probe`, :func:`decode`). Callers import
from ``ordo.imaging`` itself.
"""

from __future__ import annotations

from ordo.imaging.decoding import decode, probe
from ordo.imaging.limits import (
    CORRUPT,
    DECOMPRESSION_BOMB,
    EMPTY_FILE,
    FILE_TOO_LARGE,
    NOT_AN_IMAGE,
    REASONS,
    TRUNCATED,
    UNSUPPORTED_FORMAT,
    ImageInfo,
    ImageLimits,
    accepted_mime_types,
    align_pillow_guard,
)
from ordo.imaging.pixels import thumbnail_jpeg
from ordo.imaging.sniffing import sniff_mime

__all__ = [
    "CORRUPT",
    "DECOMPRESSION_BOMB",
    "EMPTY_FILE",
    "FILE_TOO_LARGE",
    "NOT_AN_IMAGE",
    "REASONS",
    "TRUNCATED",
    "UNSUPPORTED_FORMAT",
    "ImageInfo",
    "ImageLimits",
    "accepted_mime_types",
    "align_pillow_guard",
    "decode",
    "probe",
    "sniff_mime",
    "thumbnail_jpeg",
]
