"""Opening untrusted bytes (header only) and decoding them: :func:`probe` and :func:`decode`."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Final

from PIL import Image, ImageFile

from ordo.errors import InvalidInput, TooLarge
from ordo.imaging.exif import read_exif
from ordo.imaging.limits import (
    CORRUPT,
    EMPTY_FILE,
    FILE_TOO_LARGE,
    FORMAT_MIME,
    NOT_AN_IMAGE,
    TRUNCATED,
    UNSUPPORTED_FORMAT,
    ImageInfo,
    ImageLimits,
    accepted_mimes,
    allowed_openers,
    bomb_error,
    pixel_limit,
)
from ordo.imaging.pixels import apply_orientation, to_rgb
from ordo.imaging.sniffing import decode_failure, looks_truncated, sniff_mime

# Pixel modes we know how to turn into RGB; anything else (LAB, HSV, exotic TIFF layouts) is refused
# at probe time rather than half-converted at decode time.
_DECODABLE_MODES: Final = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
    | {"I;16", "I;16L", "I;16B", "I;16N"}
)
_JPEG_FORMATS: Final = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True)
class _Opened:
    """An opened (not yet decoded) image plus what probe learned about it."""

    image: ImageFile.ImageFile
    info: ImageInfo
    orientation: int
    exif_read: bool  # False when EXIF could not be read without decoding (PNG eXIf after IDAT)


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
            raise bomb_error(str(exc), limits) from exc
        except MemoryError:
            raise  # our resources, not the file's fault: let the caller retry or fail loudly
        except Exception as exc:
            raise decode_failure(exc, data) from exc
        if ImageFile.LOAD_TRUNCATED_IMAGES and looks_truncated(data, sniff_mime(data)):
            # Someone else in this process switched Pillow to silently grey-fill truncated files;
            # we still refuse them rather than embed half an image.
            raise InvalidInput("the image data ends early", reason=TRUNCATED)

        orientation = opened.orientation
        if not opened.exif_read:
            # PNG may put eXIf after the pixel data; now that it is loaded, read it after all.
            orientation, captured_at = read_exif(image)
            info = replace(_oriented_info(info, image_size=image.size, o=orientation), captured_at=captured_at)

        try:
            rgb = to_rgb(image)
        except MemoryError:
            raise
        except Exception as exc:
            raise InvalidInput(f"cannot convert {image.mode} pixels to RGB: {exc}", reason=CORRUPT) from exc
        rgb = apply_orientation(rgb, orientation)
        if rgb is image:
            rgb = image.copy()  # detach from the file object so closing it below is safe
    finally:
        image.close()
    rgb.info = {}
    return rgb, info


def _open(data: bytes, limits: ImageLimits) -> _Opened:
    """Open ``data`` with Pillow (header only) and enforce every limit that a header can tell."""
    size = len(data)
    if size == 0:
        raise InvalidInput("the file is empty", reason=EMPTY_FILE)
    if size > limits.max_bytes:
        raise TooLarge(f"the file has {size} bytes; the limit is {limits.max_bytes}", reason=FILE_TOO_LARGE)

    openers = allowed_openers()
    accepted = accepted_mimes(openers)
    sniffed = sniff_mime(data)
    if sniffed is not None and sniffed not in accepted:
        # Refused by magic bytes, before Pillow parses anything (EPS would even run Ghostscript).
        raise InvalidInput(f"{sniffed} files are not supported", reason=UNSUPPORTED_FORMAT)

    try:
        image = Image.open(io.BytesIO(data), formats=openers)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise bomb_error(str(exc), limits) from exc
    except Image.UnidentifiedImageError as exc:
        if sniffed is None:
            raise InvalidInput("the file is not an image", reason=NOT_AN_IMAGE) from exc
        # It starts like an image we accept, so Pillow's refusal means it is damaged.
        raise decode_failure(exc, data) from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises nearly anything on hostile input; all of it means "bad file"
        raise decode_failure(exc, data) from exc

    try:
        return inspect_header(image, data, limits)
    except BaseException:
        image.close()
        raise


def inspect_header(image: ImageFile.ImageFile, data: bytes, limits: ImageLimits) -> _Opened:
    fmt = image.format or ""
    if fmt not in FORMAT_MIME:  # defensive: only allow-listed openers were offered the bytes
        raise InvalidInput(f"{fmt or 'this'} format is not supported", reason=UNSUPPORTED_FORMAT)
    if image.mode not in _DECODABLE_MODES:
        raise InvalidInput(f"{fmt} images in {image.mode} mode are not supported", reason=UNSUPPORTED_FORMAT)
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidInput(f"the header declares a {width}x{height} image", reason=CORRUPT)
    limit = pixel_limit(limits)
    if width * height > limit:
        raise bomb_error(f"{width}x{height} = {width * height} pixels; the limit is {limit} (ORDO_MAX_IMAGE_PIXELS)")

    frames = _count_frames(image, data)

    exif_read = not (fmt == "PNG" and "exif" not in image.info and "Raw profile type exif" not in image.info)
    orientation, captured_at = read_exif(image) if exif_read else (1, None)
    info = ImageInfo(
        mime_type=FORMAT_MIME[fmt],
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
        raise bomb_error(str(exc)) from exc
    except Exception:
        frames = 1
    if image.tell() != 0:
        try:
            image.seek(0)
        except Exception as exc:
            raise decode_failure(exc, data) from exc
    return max(frames, 1)


def _oriented_info(info: ImageInfo, *, image_size: tuple[int, int], o: int) -> ImageInfo:
    width, height = image_size
    if o >= 5:  # 5-8 rotate by 90 degrees
        width, height = height, width
    return replace(info, width=width, height=height)
