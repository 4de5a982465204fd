"""EXIF orientation and capture time, read tolerantly: a bad tag never costs an otherwise good photo."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from PIL import ExifTags, Image

# EXIF tags (numbers rather than ExifTags names so the mapping to the spec is obvious).
_TAG_ORIENTATION: Final = 274
_TAG_DATETIME: Final = 306
_TAG_DATETIME_ORIGINAL: Final = 36867
_TAG_OFFSET_TIME: Final = 36880
_TAG_OFFSET_TIME_ORIGINAL: Final = 36881
_TAG_SUBSEC_TIME: Final = 37520
_TAG_SUBSEC_TIME_ORIGINAL: Final = 37521
_EXIF_DATETIME_RE: Final = re.compile(r"^(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET_RE: Final = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def read_exif(image: Image.Image) -> tuple[int, datetime | None]:
    """Orientation (1-8) and capture time; garbage EXIF yields ``(1, None)``, never an exception.

    EXIF is written by every camera, phone and editor under the sun, often wrongly; a bad tag must
    not cost us an otherwise good photo.
    """
    try:
        exif = image.getexif()
    except Exception:  # includes Pillow's "Corrupt EXIF data" UserWarning under -W error
        return 1, None
    return _exif_orientation(exif), _exif_captured_at(exif)


def _exif_orientation(exif: Image.Exif) -> int:
    try:
        value: Any = exif.get(_TAG_ORIENTATION, 1)
        if isinstance(value, (tuple, list)):
            value = value[0] if value else 1
        orientation = int(value)
    except Exception:
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _exif_captured_at(exif: Image.Exif) -> datetime | None:
    """DateTimeOriginal (Exif IFD) with OffsetTimeOriginal; else DateTime (IFD0) with OffsetTime.

    Without an offset the camera's local time is unknowable, so we record it as UTC: wrong by the
    photographer's time zone, but stable and comparable.
    """
    try:
        exif_ifd: Any = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        exif_ifd = {}
    candidates = (
        (exif_ifd, _TAG_DATETIME_ORIGINAL, _TAG_OFFSET_TIME_ORIGINAL, _TAG_SUBSEC_TIME_ORIGINAL),
        (exif, _TAG_DATETIME_ORIGINAL, _TAG_OFFSET_TIME_ORIGINAL, _TAG_SUBSEC_TIME_ORIGINAL),  # misfiled
        (exif, _TAG_DATETIME, _TAG_OFFSET_TIME, _TAG_SUBSEC_TIME),
    )
    for source, dt_tag, offset_tag, subsec_tag in candidates:
        try:
            naive = parse_exif_datetime(source.get(dt_tag))
            if naive is None:
                continue
            micro = parse_subsec(exif_ifd.get(subsec_tag))
            tz = parse_exif_offset(exif_ifd.get(offset_tag)) or UTC
            return naive.replace(microsecond=micro, tzinfo=tz)
        except Exception:
            continue
    return None


def _exif_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", " ").strip()


def parse_exif_datetime(value: Any) -> datetime | None:
    """Parse ``YYYY:MM:DD HH:MM:SS`` (and the usual ``-``/``T`` variants); ``None`` if invalid."""
    match = _EXIF_DATETIME_RE.match(_exif_text(value))
    if not match:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute, second)  # the caller adds the time zone
    except ValueError:  # "0000:00:00 00:00:00" (unknown), month 13...
        return None


def parse_exif_offset(value: Any) -> timezone | None:
    text = _exif_text(value)
    if text.upper() == "Z":
        return UTC
    match = _EXIF_OFFSET_RE.match(text)
    if not match:
        return None
    sign, hours, minutes = match.groups()
    if int(hours) > 23 or int(minutes) > 59:
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def parse_subsec(value: Any) -> int:
    digits = _exif_text(value)
    if not digits.isdigit():
        return 0
    return int(digits[:6].ljust(6, "0"))
