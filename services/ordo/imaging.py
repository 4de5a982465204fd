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
  :class:`~ordo.errors.TooLarge` with one of the ``reason`` strings below, never as a raw Pillow
  exception, so callers can record per-file failures and move on.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import numpy as np
from PIL import ExifTags, Image, ImageFile

from ordo.errors import InvalidInput, Reason, TooLarge

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
_FORMAT_MIME: Final[dict[str, str]] = {
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
_OPENERS: Final = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF")
# Pixel modes we know how to turn into RGB; anything else (LAB, HSV, exotic TIFF layouts) is refused
# at probe time rather than half-converted at decode time.
_DECODABLE_MODES: Final = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
    | {"I;16", "I;16L", "I;16B", "I;16N"}
)
_JPEG_FORMATS: Final = frozenset({"JPEG", "MPO"})
_WHITE: Final = (255, 255, 255, 255)

# EXIF tags (numbers rather than ExifTags names so the mapping to the spec is obvious).
_TAG_ORIENTATION: Final = 274
_TAG_DATETIME: Final = 306
_TAG_DATETIME_ORIGINAL: Final = 36867
_TAG_OFFSET_TIME: Final = 36880
_TAG_OFFSET_TIME_ORIGINAL: Final = 36881
_TAG_SUBSEC_TIME: Final = 37520
_TAG_SUBSEC_TIME_ORIGINAL: Final = 37521
# EXIF orientation -> the transpose that makes the pixels upright (the same table as
# ImageOps.exif_transpose; see _apply_orientation for why we do not call it directly).
_ORIENTATION_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_DATETIME_RE: Final = re.compile(r"^(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET_RE: Final = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_TRUNCATION_HINTS: Final = ("truncated", "premature end", "unexpected end", "not enough data")

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


@dataclass(frozen=True)
class _Opened:
    """An opened (not yet decoded) image plus what probe learned about it."""

    image: ImageFile.ImageFile
    info: ImageInfo
    orientation: int
    exif_read: bool  # False when EXIF could not be read without decoding (PNG eXIf after IDAT)


# --- public API ----------------------------------------------------------------------------------


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


def probe(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Check an upload cheaply and describe it, without decoding any pixels.

    Runs at upload time, so it must be fast and must refuse anything that would be dangerous to
    decode later: the byte limit, the format allow-list and the pixel limit are all enforced here
    from the header alone. A file that passes may still turn out truncated or corrupt on
    :func:`decode`, which only a full decode can tell.
    """
    opened = _open(data, limits)
    opened.image.close()
    return opened.info


def decode(data: bytes, limits: ImageLimits, *, max_side: int | None = None) -> tuple[Image.Image, ImageInfo]:
    """Decode untrusted bytes into an upright 8-bit RGB image.

    Normalises everything models and thumbnails should not have to care about: EXIF orientation is
    applied; CMYK (including Adobe's inverted JPEG CMYK), palette, grayscale and 1-bit images become
    RGB; transparency is composited onto white (a transparent logo is "black on white", not a black
    square); 16-bit and 32-bit samples are scaled, not clipped, to 8 bits; animations and
    multi-page files yield their first frame.

    ``max_side``: the caller will shrink the image so its shorter side is ``max_side`` (e.g. 224
    for CLIP). For JPEGs at least twice that size we let libjpeg scale down in the DCT domain
    (``draft``, a 1/2, 1/4 or 1/8 scale), which is 1.5x (at 1/2) to several times (at 1/8) faster
    than a full decode; the result's shorter side is still ``>= max_side``, so the caller's resize
    loses nothing. Other formats, and JPEGs under twice ``max_side``, are returned full size.

    The returned :class:`ImageInfo` describes the original (oriented) image, not the drafted one.
    The returned image carries no metadata (``info`` is empty), so nothing downstream can apply the
    orientation a second time.
    """
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be a positive number of pixels")
    opened = _open(data, limits)
    image, info = opened.image, opened.info
    try:
        if max_side is not None and info.format in _JPEG_FORMATS and min(image.size) >= 2 * max_side:
            image.draft(image.mode, (max_side, max_side))
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(str(exc), limits) from exc
        except MemoryError:
            raise  # our resources, not the file's fault: let the caller retry or fail loudly
        except Exception as exc:
            raise _decode_failure(exc, data) from exc
        if ImageFile.LOAD_TRUNCATED_IMAGES and _looks_truncated(data, sniff_mime(data)):
            # Someone else in this process switched Pillow to silently grey-fill truncated files;
            # we still refuse them rather than embed half an image.
            raise InvalidInput("the image data ends early", reason=TRUNCATED)

        orientation = opened.orientation
        if not opened.exif_read:
            # PNG may put eXIf after the pixel data; now that it is loaded, read it after all.
            orientation, captured_at = _read_exif(image)
            info = replace(_oriented_info(info, image_size=image.size, o=orientation), captured_at=captured_at)

        try:
            rgb = _to_rgb(image)
        except MemoryError:
            raise
        except Exception as exc:
            raise InvalidInput(f"cannot convert {image.mode} pixels to RGB: {exc}", reason=CORRUPT) from exc
        rgb = _apply_orientation(rgb, orientation)
        if rgb is image:
            rgb = image.copy()  # detach from the file object so closing it below is safe
    finally:
        image.close()
    rgb.info = {}
    return rgb, info


def thumbnail_jpeg(image: Image.Image, size: int = 256, quality: int = 85) -> bytes:
    """Encode a JPEG thumbnail that fits in ``size`` x ``size``, keeping the aspect ratio.

    Images already smaller than ``size`` are not enlarged (upscaling adds bytes, not detail).
    Expects the output of :func:`decode`; other modes are normalised the same way first.
    """
    if size < 1:
        raise ValueError("size must be a positive number of pixels")
    if not 1 <= quality <= 100:
        raise ValueError("quality must be between 1 and 100")
    rgb = image if image.mode == "RGB" else _to_rgb(image)
    width, height = rgb.size
    scale = min(1.0, size / max(width, height))
    target = (max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale))))
    if target != rgb.size:
        # A cheap box pre-shrink (reducing_gap) then bicubic: looks the same at thumbnail size and costs
        # 1.6 ms instead of 2.6 ms (LANCZOS + optimised Huffman tables) per photo on the ingest hot path.
        rgb = rgb.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality)
    return out.getvalue()


# --- opening and limits --------------------------------------------------------------------------


def _allowed_openers() -> list[str]:
    """The allow-listed openers registered right now (HEIF appears only once a plugin adds it)."""
    return [name for name in _OPENERS if name in Image.OPEN]


def accepted_mime_types() -> set[str]:
    """The MIME types Ordo takes right now (as :func:`sniff_mime` names them)."""
    return _accepted_mimes(_allowed_openers())


def align_pillow_guard(max_pixels: int) -> None:
    """Make Pillow's process-wide bomb guard agree with ``ORDO_MAX_IMAGE_PIXELS``.

    Pillow refuses images above twice ``Image.MAX_IMAGE_PIXELS`` (89.5 MP by default) inside
    ``Image.open``, before Ordo's own check runs, so a real 108 MP photo was refused whatever the
    setting said. Ordo's check (:func:`_inspect`, from the header, before any pixel is decoded) is the
    one limit; Pillow's guard is raised to it (never lowered) so that it only ever agrees. The wiring
    (:class:`ordo.app.AppContext`) calls this once per process with the configured limit."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _accepted_mimes(openers: list[str]) -> set[str]:
    mimes = {_FORMAT_MIME[name] for name in openers}
    if "image/heif" in mimes:
        mimes.add("image/heic")
    return mimes


def _pixel_limit(limits: ImageLimits) -> int:
    """``ORDO_MAX_IMAGE_PIXELS``: the one pixel limit (see :func:`align_pillow_guard`)."""
    return limits.max_pixels


_PILLOW_SIZE_RE: Final = re.compile(r"Image size \((\d+) pixels\)")


def _bomb(detail: str, limits: ImageLimits | None = None) -> TooLarge:
    """A DECOMPRESSION_BOMB error stated in Ordo's terms (Pillow's own message names Pillow's limit)."""
    match = _PILLOW_SIZE_RE.search(detail)
    if match and limits is not None:
        detail = f"{match.group(1)} pixels; the limit is {limits.max_pixels} (ORDO_MAX_IMAGE_PIXELS)"
    return TooLarge(f"image has too many pixels ({detail})", reason=DECOMPRESSION_BOMB)


def _open(data: bytes, limits: ImageLimits) -> _Opened:
    """Open ``data`` with Pillow (header only) and enforce every limit that a header can tell."""
    size = len(data)
    if size == 0:
        raise InvalidInput("the file is empty", reason=EMPTY_FILE)
    if size > limits.max_bytes:
        raise TooLarge(f"the file has {size} bytes; the limit is {limits.max_bytes}", reason=FILE_TOO_LARGE)

    openers = _allowed_openers()
    accepted = _accepted_mimes(openers)
    sniffed = sniff_mime(data)
    if sniffed is not None and sniffed not in accepted:
        # Refused by magic bytes, before Pillow parses anything (EPS would even run Ghostscript).
        raise InvalidInput(f"{sniffed} files are not supported", reason=UNSUPPORTED_FORMAT)

    try:
        image = Image.open(io.BytesIO(data), formats=openers)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(str(exc), limits) from exc
    except Image.UnidentifiedImageError as exc:
        if sniffed is None:
            raise InvalidInput("the file is not an image", reason=NOT_AN_IMAGE) from exc
        # It starts like an image we accept, so Pillow's refusal means it is damaged.
        raise _decode_failure(exc, data) from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises nearly anything on hostile input; all of it means "bad file"
        raise _decode_failure(exc, data) from exc

    try:
        return _inspect(image, data, limits)
    except BaseException:
        image.close()
        raise


def _inspect(image: ImageFile.ImageFile, data: bytes, limits: ImageLimits) -> _Opened:
    fmt = image.format or ""
    if fmt not in _FORMAT_MIME:  # defensive: only allow-listed openers were offered the bytes
        raise InvalidInput(f"{fmt or 'this'} format is not supported", reason=UNSUPPORTED_FORMAT)
    if image.mode not in _DECODABLE_MODES:
        raise InvalidInput(f"{fmt} images in {image.mode} mode are not supported", reason=UNSUPPORTED_FORMAT)
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidInput(f"the header declares a {width}x{height} image", reason=CORRUPT)
    limit = _pixel_limit(limits)
    if width * height > limit:
        raise _bomb(f"{width}x{height} = {width * height} pixels; the limit is {limit} (ORDO_MAX_IMAGE_PIXELS)")

    frames = _count_frames(image, data)

    exif_read = not (fmt == "PNG" and "exif" not in image.info and "Raw profile type exif" not in image.info)
    orientation, captured_at = _read_exif(image) if exif_read else (1, None)
    info = ImageInfo(
        mime_type=_FORMAT_MIME[fmt],
        width=width,
        height=height,
        captured_at=captured_at,
        format=fmt,
        frames=frames,
    )
    return _Opened(
        image=image,
        info=_oriented_info(info, image_size=(width, height), o=orientation),
        orientation=orientation,
        exif_read=exif_read,
    )


def _count_frames(image: ImageFile.ImageFile, data: bytes) -> int:
    """Number of frames/pages, parsed from headers only; leaves the image on its first frame.

    Damage in a later frame does not matter (we only ever decode the first), so it counts as "one
    frame" rather than failing the upload; damage that stops us returning to frame 0 does matter.
    """
    try:
        frames = int(getattr(image, "n_frames", 1))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(str(exc)) from exc
    except Exception:
        frames = 1
    if image.tell() != 0:
        try:
            image.seek(0)
        except Exception as exc:
            raise _decode_failure(exc, data) from exc
    return max(frames, 1)


def _oriented_info(info: ImageInfo, *, image_size: tuple[int, int], o: int) -> ImageInfo:
    width, height = image_size
    if o >= 5:  # 5-8 rotate by 90 degrees
        width, height = height, width
    return replace(info, width=width, height=height)


# --- errors --------------------------------------------------------------------------------------


def _decode_failure(exc: BaseException, data: bytes) -> InvalidInput:
    """Classify a Pillow failure on an allow-listed format as TRUNCATED or CORRUPT.

    Pillow signals truncation inconsistently (OSError text, EOFError, a UserWarning for TIFF, or a
    generic "could not create decoder" for WebP), so we look at the message and, where the format
    records its own length, at the bytes themselves.
    """
    text = str(exc).lower()
    truncated = isinstance(exc, EOFError) or any(hint in text for hint in _TRUNCATION_HINTS)
    if truncated or _looks_truncated(data, sniff_mime(data)):
        return InvalidInput(f"the image data ends early ({exc})", reason=TRUNCATED)
    detail = re.sub(r"<[^<>]{0,200} at 0x[0-9a-fA-F]+>", "the file", str(exc))  # no Python object reprs
    return InvalidInput(f"the image data cannot be decoded ({type(exc).__name__}: {detail})", reason=CORRUPT)


def _looks_truncated(data: bytes, mime: str | None) -> bool:
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


# --- EXIF ----------------------------------------------------------------------------------------


def _read_exif(image: Image.Image) -> tuple[int, datetime | None]:
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
            naive = _parse_exif_datetime(source.get(dt_tag))
            if naive is None:
                continue
            micro = _parse_subsec(exif_ifd.get(subsec_tag))
            tz = _parse_exif_offset(exif_ifd.get(offset_tag)) or UTC
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


def _parse_exif_datetime(value: Any) -> datetime | None:
    """Parse ``YYYY:MM:DD HH:MM:SS`` (and the usual ``-``/``T`` variants); ``None`` if invalid."""
    match = _EXIF_DATETIME_RE.match(_exif_text(value))
    if not match:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))  # the caller adds the time zone
    except ValueError:  # "0000:00:00 00:00:00" (unknown), month 13...
        return None


def _parse_exif_offset(value: Any) -> timezone | None:
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


def _parse_subsec(value: Any) -> int:
    digits = _exif_text(value)
    if not digits.isdigit():
        return 0
    return int(digits[:6].ljust(6, "0"))


# --- pixels --------------------------------------------------------------------------------------


def _apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """Make the pixels upright.

    Equivalent to ``ImageOps.exif_transpose`` (same table), but driven by the orientation we already
    parsed tolerantly: exif_transpose re-parses EXIF (which may warn or raise on garbage), copies
    the image even when there is nothing to do, and rewrites metadata we discard anyway.
    """
    method = _ORIENTATION_TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any decodable mode to 8-bit RGB (may return ``image`` itself when already RGB)."""
    mode = image.mode
    has_key = image.info.get("transparency") is not None
    if mode == "RGB" and not has_key:
        return image
    if mode == "CMYK":
        # The JPEG plugin already undid Adobe's inverted CMYK (rawmode CMYK;I) while decoding.
        return image.convert("RGB")
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _high_depth_to_rgb(image)
    if mode in ("1", "L", "P", "RGBX", "YCbCr") and not has_key:  # RGBX: X is padding, not alpha
        return image.convert("RGB")
    # Alpha channel (LA, PA, RGBA, premultiplied La/RGBa) or a transparent palette entry / colour key.
    rgba = image.convert("RGBA")
    alpha_min, _ = rgba.getchannel("A").getextrema()
    if alpha_min == 255:
        return rgba.convert("RGB")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16-bit (``I;16*``), 32-bit integer (``I``) and float (``F``) samples to 0-255.

    Pillow's own ``convert("L")`` clips these (every value above 255 becomes white), which turns a
    normal 16-bit scan into a white page. ``I`` is what 16-bit sources become in some Pillow
    versions, so values within 0..65535 are treated as 16-bit; anything else is min-max stretched.
    """
    samples = np.asarray(image)
    if image.mode.startswith("I;16"):
        # The high byte, exactly what Pillow does for 16-bit RGB PNGs, so gray and colour agree.
        return Image.fromarray((samples >> 8).astype(np.uint8)).convert("RGB")
    values = samples.astype(np.float32)
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    if image.mode == "I" and lo >= 0 and hi <= 65535:
        scaled = values / 257.0
    elif image.mode == "F" and lo >= 0 and hi <= 1:
        scaled = values * 255.0
    elif hi > lo:
        scaled = (values - lo) * (255.0 / (hi - lo))
    else:
        scaled = np.zeros_like(values)
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")
