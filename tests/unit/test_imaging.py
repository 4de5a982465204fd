"""Tests for ordo.imaging: every odd, broken or hostile image becomes either upright 8-bit RGB or a
domain error with a precise reason. Images come from tests/fixtures/images.py (generated, never
committed) and, for the smoke and draft tests, from the shared real-photo datasets."""

from __future__ import annotations

import contextlib
import io
import struct
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps, features

from ordo import imaging
from ordo.errors import InvalidInput, OrdoError, TooLarge
from ordo.imaging import ImageInfo, ImageLimits, decode, probe, sniff_mime, thumbnail_jpeg
from ordo.imaging import exif as image_exif
from ordo.imaging import limits as image_limits
from ordo.imaging import pixels as pixels_module
from tests.fixtures.datasets import DATASETS, dataset_records
from tests.fixtures.images import (
    BOMB_SIDE,
    ROTATED_STORED_SIZE,
    file_name,
    make_image_bytes,
    png_bytes,
    zero_png,
)

LIMITS = ImageLimits()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def assert_close(actual: tuple[int, ...] | np.ndarray, expected: tuple[int, ...], tol: int = 12) -> None:
    diff = np.abs(np.asarray(actual, dtype=int) - np.asarray(expected, dtype=int))
    assert diff.max() <= tol, f"{tuple(int(v) for v in actual)} is not close to {expected}"


# --- limits and refusals ---------------------------------------------------------------------------


def test_limits_defaults_and_validation() -> None:
    assert LIMITS.max_bytes == 64 * 1024 * 1024
    assert LIMITS.max_pixels == 200_000_000
    with pytest.raises(ValueError):
        ImageLimits(max_bytes=0)
    with pytest.raises(ValueError):
        ImageLimits(max_pixels=-1)


def test_reasons_are_the_documented_set() -> None:
    assert set(imaging.REASONS) == {
        "EMPTY_FILE",
        "FILE_TOO_LARGE",
        "NOT_AN_IMAGE",
        "UNSUPPORTED_FORMAT",
        "DECOMPRESSION_BOMB",
        "TRUNCATED",
        "CORRUPT",
    }


# (kind, error class, reason, whether probe alone already refuses it)
REFUSALS = [
    ("empty", InvalidInput, "EMPTY_FILE", True),
    ("text_as_jpg", InvalidInput, "NOT_AN_IMAGE", True),
    ("pdf", InvalidInput, "UNSUPPORTED_FORMAT", True),
    ("eps", InvalidInput, "UNSUPPORTED_FORMAT", True),
    ("svg", InvalidInput, "UNSUPPORTED_FORMAT", True),
    ("ico", InvalidInput, "UNSUPPORTED_FORMAT", True),
    ("bomb_png", TooLarge, "DECOMPRESSION_BOMB", True),
    ("truncated_webp", InvalidInput, "TRUNCATED", True),  # WebP's RIFF header records its length
    ("truncated_jpeg", InvalidInput, "TRUNCATED", False),  # header intact: only decoding can tell
    ("truncated_png", InvalidInput, "TRUNCATED", False),
    ("corrupt_png", InvalidInput, "CORRUPT", False),
]


@pytest.mark.parametrize(("kind", "error", "reason", "at_probe"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_bad_input_is_refused_with_reason(
    odd_images: dict[str, bytes], kind: str, error: type[OrdoError], reason: str, at_probe: bool
) -> None:
    data = odd_images[kind]
    with pytest.raises(error) as caught:
        decode(data, LIMITS)
    assert caught.value.reason == reason
    if at_probe:
        with pytest.raises(error) as caught:
            probe(data, LIMITS)
        assert caught.value.reason == reason
    else:
        probe(data, LIMITS)  # a cheap header check cannot see damage in the pixel data


def test_text_file_named_jpg_is_not_an_image(odd_image_files: dict[str, Path]) -> None:
    path = odd_image_files["text_as_jpg"]
    assert path.suffix == ".jpg"
    with pytest.raises(InvalidInput) as caught:
        probe(path.read_bytes(), LIMITS)
    assert caught.value.reason == "NOT_AN_IMAGE"


def test_file_over_max_bytes_is_too_large(odd_images: dict[str, bytes]) -> None:
    data = odd_images["png"]
    with pytest.raises(TooLarge) as caught:
        probe(data, ImageLimits(max_bytes=len(data) - 1))
    assert caught.value.reason == "FILE_TOO_LARGE"
    with pytest.raises(TooLarge):
        decode(data, ImageLimits(max_bytes=100))
    assert probe(data, ImageLimits(max_bytes=len(data))).width == 64  # the limit itself is allowed


def test_max_pixels_is_enforced_from_the_header(odd_images: dict[str, bytes]) -> None:
    data = odd_images["png"]  # 64x48
    with pytest.raises(TooLarge) as caught:
        decode(data, ImageLimits(max_pixels=64 * 48 - 1))
    assert caught.value.reason == "DECOMPRESSION_BOMB"
    assert decode(data, ImageLimits(max_pixels=64 * 48))[0].size == (64, 48)


def test_bomb_is_refused_quickly_and_cheaply(odd_images: dict[str, bytes]) -> None:
    data = odd_images["bomb_png"]
    assert len(data) < 1024 * 1024
    assert struct.unpack(">II", data[16:24]) == (BOMB_SIDE, BOMB_SIDE)
    started = time.perf_counter()
    with pytest.raises(TooLarge):
        probe(data, LIMITS)
    assert time.perf_counter() - started < 0.5


def test_our_pixel_limit_does_not_depend_on_pillows_global(
    odd_images: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone switched Pillow's guard off
    with pytest.raises(TooLarge) as caught:
        probe(odd_images["bomb_png"], LIMITS)
    assert caught.value.reason == "DECOMPRESSION_BOMB"
    # ...and then only our own limit applies to a 95 MP image.
    assert probe(odd_images["pillow_warning_bomb_png"], LIMITS).width == 10_000


@pytest.mark.parametrize("action", ["ignore", "error"])
def test_ordo_limit_is_the_one_limit_whether_or_not_warnings_are_errors(
    odd_images: dict[str, bytes], action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """95 MP is over Pillow's default guard (89.5 MP) but under ORDO_MAX_IMAGE_PIXELS: accepted either
    way, because creating the limits aligns Pillow's guard; a lower Ordo limit refuses it in Ordo's words."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)  # Pillow's default
    limits = ImageLimits(max_pixels=120_000_000)
    assert Image.MAX_IMAGE_PIXELS == 120_000_000
    with warnings.catch_warnings():
        warnings.simplefilter(action)
        assert probe(odd_images["pillow_warning_bomb_png"], limits).width == 10_000
        with pytest.raises(TooLarge) as caught:
            probe(odd_images["pillow_warning_bomb_png"], ImageLimits(max_pixels=90_000_000))
    assert caught.value.reason == "DECOMPRESSION_BOMB"
    assert "90000000 (ORDO_MAX_IMAGE_PIXELS)" in caught.value.message


def test_zero_png_generator_makes_real_decodable_pngs() -> None:
    """The bomb's recipe yields a genuine PNG: decode a modest one made the same way."""
    data = zero_png(3000, 1000 + 7)  # not a multiple of the 256-row block
    image, info = decode(data, LIMITS)
    assert (info.width, info.height) == (3000, 1007)
    assert pixels(image).max() == 0
    idat = data[8 + 25 + 8 : -12 - 4]
    assert len(zlib.decompress(idat)) == 1007 * (1 + 3000 // 8)  # checks the Adler-32 trailer too


@pytest.mark.parametrize("kind", ["truncated_jpeg", "truncated_png"])
def test_truncation_detected_even_if_someone_enabled_load_truncated_images(
    odd_images: dict[str, bytes], kind: str, monkeypatch: pytest.MonkeyPatch, coco_images: list[Path]
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(InvalidInput) as caught:
        decode(odd_images[kind], LIMITS)
    assert caught.value.reason == "TRUNCATED"
    for path in coco_images[:20]:  # and complete photos are not mistaken for truncated ones
        decode(path.read_bytes(), LIMITS)


def test_we_never_flip_pillows_process_wide_switches(odd_images: dict[str, bytes]) -> None:
    before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)
    for kind in ("truncated_jpeg", "bomb_png", "jpeg"):
        with contextlib.suppress(OrdoError):
            decode(odd_images[kind], LIMITS)
    assert before == (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)


def test_every_odd_image_yields_rgb_or_a_domain_error_even_with_warnings_as_errors(
    odd_images: dict[str, bytes],
) -> None:
    """Pillow warns on odd input; under -W error those warnings must still not escape raw."""
    for kind, data in odd_images.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                image, _ = decode(data, LIMITS)
            except OrdoError:
                continue
            except Exception as exc:  # pragma: no cover - the failure message is the point
                pytest.fail(f"{kind}: {type(exc).__name__}: {exc} escaped")
        assert image.mode == "RGB", kind


# --- pixels ---------------------------------------------------------------------------------------

# kind -> (displayed size, format, frames)
GOOD = {
    "jpeg": ((320, 240), "JPEG", 1),
    "mpo_jpeg": ((64, 48), "MPO", 2),
    "png": ((64, 48), "PNG", 1),
    "webp": ((64, 48), "WEBP", 1),
    "tiff": ((64, 48), "TIFF", 1),
    "multipage_tiff": ((20, 10), "TIFF", 2),
    "gray_jpeg": ((40, 20), "JPEG", 1),
    "cmyk_jpeg": ((40, 20), "JPEG", 1),
    "transparent_palette_png": ((40, 20), "PNG", 1),
    "rgba_png": ((30, 10), "PNG", 1),
    "la_png": ((20, 10), "PNG", 1),
    "gray16_png": ((256, 4), "PNG", 1),
    "rgb16_png": ((256, 4), "PNG", 1),
    "bitmap_bmp": ((33, 17), "BMP", 1),
    "animated_gif": ((40, 30), "GIF", 3),
    "animated_webp": ((40, 30), "WEBP", 3),
    "apng": ((40, 30), "PNG", 3),
    "exif_rotated_jpeg": ((80, 120), "JPEG", 1),
    "garbage_exif_jpeg": ((40, 30), "JPEG", 1),
    "bad_exif_values_jpeg": ((40, 30), "JPEG", 1),
}
if features.check("avif"):
    GOOD["avif"] = ((64, 48), "AVIF", 1)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow complains about the garbage EXIF
@pytest.mark.parametrize("kind", sorted(GOOD))
def test_odd_image_decodes_to_rgb_with_oriented_size(odd_images: dict[str, bytes], kind: str) -> None:
    size, fmt, frames = GOOD[kind]
    image, info = decode(odd_images[kind], LIMITS)
    assert image.mode == "RGB"
    assert image.size == size
    assert (info.width, info.height, info.format, info.frames) == (*size, fmt, frames)
    assert info.mime_type == image_limits.FORMAT_MIME[fmt]
    assert probe(odd_images[kind], LIMITS) == info
    assert image.info == {}  # no EXIF left for anyone to apply a second time


def test_exif_orientation_is_applied(odd_images: dict[str, bytes]) -> None:
    image, info = decode(odd_images["exif_rotated_jpeg"], LIMITS)
    assert (info.width, info.height) == tuple(reversed(ROTATED_STORED_SIZE))
    # Stored: red on top, blue below. Rotated 90 degrees clockwise: blue left, red right.
    assert_close(image.getpixel((5, 60)), (0, 0, 255))
    assert_close(image.getpixel((75, 60)), (255, 0, 0))
    assert ImageOps.exif_transpose(image).size == image.size


def test_exif_capture_time_with_offset(odd_images: dict[str, bytes]) -> None:
    info = probe(odd_images["exif_rotated_jpeg"], LIMITS)
    assert info.captured_at == datetime(2021, 6, 15, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert info.captured_at.utcoffset() == timedelta(hours=2)


def test_exif_datetime_fallback_is_utc(odd_images: dict[str, bytes]) -> None:
    info = probe(odd_images["exif_datetime_only_jpeg"], LIMITS)
    assert info.captured_at == datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert info.captured_at.tzinfo is not None


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["garbage_exif_jpeg", "bad_exif_values_jpeg"])
def test_garbage_exif_is_ignored(odd_images: dict[str, bytes], kind: str) -> None:
    image, info = decode(odd_images[kind], LIMITS)
    assert info.captured_at is None
    assert image.size == (40, 30)  # orientation 9 / unreadable orientation: left as stored


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020:02:29 23:59:59", datetime(2020, 2, 29, 23, 59, 59)),
        (b"2020:02:29 23:59:59\x00", datetime(2020, 2, 29, 23, 59, 59)),
        ("2020-02-29T23:59:59", datetime(2020, 2, 29, 23, 59, 59)),
        ("2021:02:29 00:00:00", None),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_exif_datetime_parsing_is_tolerant(value: object, expected: datetime | None) -> None:
    assert image_exif.parse_exif_datetime(value) == expected


def test_exif_offset_and_subseconds_parsing() -> None:
    assert image_exif.parse_exif_offset("-05:30") == timezone(-timedelta(hours=5, minutes=30))
    assert image_exif.parse_exif_offset("+0100") == timezone(timedelta(hours=1))
    assert image_exif.parse_exif_offset("+99:00") is None
    assert image_exif.parse_exif_offset("junk") is None
    assert image_exif.parse_subsec("5") == 500_000
    assert image_exif.parse_subsec("1234567") == 123_456
    assert image_exif.parse_subsec("x1") == 0


def test_png_exif_after_pixel_data_is_applied_on_decode() -> None:
    """PNG may carry eXIf after IDAT; probe cannot read it without decoding, decode does."""
    exif = Image.Exif()
    exif[274] = 6
    out = io.BytesIO()
    Image.new("RGB", (30, 10), "red").save(out, "PNG", exif=exif)
    chunks = _png_chunks(out.getvalue())
    reordered = [c for c in chunks if c[0] != b"eXIf"]
    reordered.insert(-1, next(c for c in chunks if c[0] == b"eXIf"))  # just before IEND
    data = b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body)) for tag, body in reordered
    )
    assert (probe(data, LIMITS).width, probe(data, LIMITS).height) == (30, 10)
    image, info = decode(data, LIMITS)
    assert image.size == (info.width, info.height) == (10, 30)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        chunks.append((data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def test_cmyk_jpeg_including_adobe_inverted(odd_images: dict[str, bytes]) -> None:
    data = odd_images["cmyk_jpeg"]
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.mode == "CMYK"
        assert "adobe" in raw.info  # libjpeg writes Photoshop-style inverted CMYK
    image, _ = decode(data, LIMITS)
    assert_close(image.getpixel((5, 10)), (0, 255, 255), tol=25)  # pure cyan
    assert_close(image.getpixel((35, 10)), (0, 0, 0), tol=25)  # pure K


def test_transparent_palette_becomes_white_not_black(odd_images: dict[str, bytes]) -> None:
    image, _ = decode(odd_images["transparent_palette_png"], LIMITS)
    assert image.getpixel((5, 10)) == (255, 255, 255)
    assert image.getpixel((35, 10)) == (255, 0, 0)


def test_alpha_is_composited_onto_white(odd_images: dict[str, bytes]) -> None:
    image, _ = decode(odd_images["rgba_png"], LIMITS)
    assert image.getpixel((5, 5)) == (255, 255, 255)  # fully transparent black
    assert_close(image.getpixel((15, 5)), (255, 127, 127), tol=2)  # 50% red over white
    assert image.getpixel((25, 5)) == (0, 0, 255)
    gray_alpha, _ = decode(odd_images["la_png"], LIMITS)
    assert gray_alpha.getpixel((5, 5)) == (255, 255, 255)
    assert gray_alpha.getpixel((15, 5)) == (0, 0, 0)


@pytest.mark.parametrize(("mode", "key"), [("RGB", (1, 2, 3)), ("L", 7)])
def test_colour_key_transparency_becomes_white(mode: str, key: int | tuple[int, ...]) -> None:
    """PNG tRNS on RGB/L images marks one colour as transparent; it must not stay that colour."""
    image = Image.new(mode, (10, 10), key)
    image.paste((200, 0, 0) if mode == "RGB" else 100, (5, 0, 10, 10))
    out = io.BytesIO()
    image.save(out, "PNG", transparency=key)
    decoded, _ = decode(out.getvalue(), LIMITS)
    assert decoded.getpixel((0, 0)) == (255, 255, 255)
    assert decoded.getpixel((9, 0)) == ((200, 0, 0) if mode == "RGB" else (100, 100, 100))


@pytest.mark.parametrize("kind", ["gray16_png", "rgb16_png"])
def test_16_bit_is_scaled_not_clipped(odd_images: dict[str, bytes], kind: str) -> None:
    image, _ = decode(odd_images[kind], LIMITS)
    row = pixels(image)[0]
    assert (row[:, 0] == row[:, 1]).all() and (row[:, 1] == row[:, 2]).all()
    values = row[:, 0]
    assert values.min() == 0 and values.max() == 255
    assert len(np.unique(values)) > 200  # a 256-step gradient stays a gradient
    assert (np.diff(values) >= 0).all()
    assert (values == 255).mean() < 0.05  # Pillow's own convert("L") would make most of it white


def test_32_bit_integer_and_float_samples() -> None:
    as_int = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32))
    assert pixels(pixels_module.to_rgb(as_int))[0, :, 0].tolist() == [0, 128, 255]
    as_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert pixels(pixels_module.to_rgb(as_float))[0, :, 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))
    assert pixels(pixels_module.to_rgb(wide))[0, :, 0].tolist() == [0, 128, 255]


def test_grayscale_and_1_bit_become_rgb(odd_images: dict[str, bytes]) -> None:
    gray, _ = decode(odd_images["gray_jpeg"], LIMITS)
    assert_close(gray.getpixel((5, 10)), (30, 30, 30), tol=4)
    assert_close(gray.getpixel((35, 10)), (220, 220, 220), tol=4)
    bitmap, _ = decode(odd_images["bitmap_bmp"], LIMITS)
    assert set(np.unique(pixels(bitmap))) == {0, 255}
    assert bitmap.getpixel((0, 0)) == (0, 0, 0) and bitmap.getpixel((32, 16)) == (255, 255, 255)


@pytest.mark.parametrize("kind", ["animated_gif", "animated_webp", "apng", "multipage_tiff", "mpo_jpeg"])
def test_animation_or_pages_give_the_first_frame(odd_images: dict[str, bytes], kind: str) -> None:
    image, info = decode(odd_images[kind], LIMITS)
    assert info.frames >= 2
    first = (255, 255, 0) if kind == "multipage_tiff" else (255, 0, 0)
    assert_close(pixels(image).reshape(-1, 3).mean(axis=0), first, tol=3)


# --- draft decoding, thumbnails, helpers -----------------------------------------------------------


def _draftable(coco_images: list[Path], max_side: int, count: int) -> list[bytes]:
    """Real photos whose shorter side is at least twice ``max_side`` (where draft can help)."""
    found = []
    for path in coco_images:
        data = path.read_bytes()
        info = probe(data, LIMITS)
        if min(info.width, info.height) >= 2 * max_side:
            found.append(data)
            if len(found) == count:
                break
    assert len(found) == count, "the COCO sample has too few large photos"
    return found


def test_draft_decoding_of_a_real_photo(coco_images: list[Path]) -> None:
    data = _draftable(coco_images, 224, 1)[0]
    full, full_info = decode(data, LIMITS)
    small, small_info = decode(data, LIMITS, max_side=224)
    assert small_info == full_info  # the original size, not the drafted one
    assert min(small.size) >= 224
    assert small.size[0] < full.size[0] and small.size[1] < full.size[1]
    assert small.mode == "RGB"
    # Same picture: the drafted image matches a downscaled full decode closely.
    reference = full.resize(small.size, Image.Resampling.BOX)
    assert np.abs(pixels(small) - pixels(reference)).mean() < 8


def test_draft_decoding_is_faster(coco_images: list[Path]) -> None:
    """Timed per photo, alternating full and draft, keeping each photo's best of five runs so a
    busy machine (other test processes, frequency scaling) does not decide the outcome."""
    photos = _draftable(coco_images, 224, 20)

    def seconds(data: bytes, max_side: int | None) -> float:
        started = time.perf_counter()
        decode(data, LIMITS, max_side=max_side)
        return time.perf_counter() - started

    full = draft = 0.0
    for data in photos:
        runs = [(seconds(data, None), seconds(data, 224)) for _ in range(5)]
        full += min(f for f, _ in runs)
        draft += min(d for _, d in runs)
    assert draft < full, f"draft {draft:.4f}s is not faster than full {full:.4f}s"


def test_draft_respects_orientation_and_is_skipped_when_it_cannot_help(odd_images: dict[str, bytes]) -> None:
    exif = Image.Exif()
    exif[274] = 6
    out = io.BytesIO()
    Image.new("RGB", (1200, 800), "gray").save(out, "JPEG", exif=exif)
    image, info = decode(out.getvalue(), LIMITS, max_side=100)
    assert (info.width, info.height) == (800, 1200)
    assert image.size == (100, 150)  # 1/8 scale, then rotated
    # Not much larger than max_side, or not a JPEG: full size.
    assert decode(odd_images["jpeg"], LIMITS, max_side=200)[0].size == (320, 240)
    assert decode(odd_images["png"], LIMITS, max_side=8)[0].size == (64, 48)
    with pytest.raises(ValueError):
        decode(odd_images["jpeg"], LIMITS, max_side=0)


def test_thumbnail_fits_and_keeps_aspect(coco_images: list[Path], odd_images: dict[str, bytes]) -> None:
    image, info = decode(coco_images[0].read_bytes(), LIMITS)
    thumb = Image.open(io.BytesIO(thumbnail_jpeg(image)))
    assert thumb.format == "JPEG" and thumb.mode == "RGB"
    assert max(thumb.size) == 256
    assert abs(thumb.width / thumb.height - info.width / info.height) < 0.02
    tall, _ = decode(odd_images["exif_rotated_jpeg"], LIMITS)  # 80x120: smaller than 256, not enlarged
    assert Image.open(io.BytesIO(thumbnail_jpeg(tall))).size == (80, 120)
    assert Image.open(io.BytesIO(thumbnail_jpeg(tall, size=60))).size == (40, 60)
    rgba = Image.new("RGBA", (500, 100), (0, 0, 0, 0))
    white = Image.open(io.BytesIO(thumbnail_jpeg(rgba, size=50)))
    assert white.size == (50, 10) and min(white.getpixel((25, 5))) > 245
    with pytest.raises(ValueError):
        thumbnail_jpeg(image, size=0)
    with pytest.raises(ValueError):
        thumbnail_jpeg(image, quality=0)


def test_sniff_mime(odd_images: dict[str, bytes]) -> None:
    expected = {
        "jpeg": "image/jpeg",
        "cmyk_jpeg": "image/jpeg",
        "png": "image/png",
        "apng": "image/png",
        "animated_gif": "image/gif",
        "webp": "image/webp",
        "bitmap_bmp": "image/bmp",
        "tiff": "image/tiff",
        "pdf": "application/pdf",
        "eps": "application/postscript",
        "svg": "image/svg+xml",
        "ico": "image/vnd.microsoft.icon",
        "text_as_jpg": None,
        "empty": None,
    }
    if "avif" in odd_images:
        expected["avif"] = "image/avif"
    assert {kind: sniff_mime(odd_images[kind]) for kind in expected} == expected
    assert sniff_mime(b"BMW is a car maker, not a bitmap") is None


def test_image_info_is_frozen(odd_images: dict[str, bytes]) -> None:
    info = probe(odd_images["png"], LIMITS)
    assert isinstance(info, ImageInfo)
    with pytest.raises(AttributeError):
        info.width = 1  # type: ignore[misc]


def test_odd_image_files_fixture_writes_telling_names(odd_image_files: dict[str, Path]) -> None:
    assert odd_image_files["empty"].name == file_name("empty") == "empty.jpg"
    assert odd_image_files["apng"].suffix == ".png"
    assert odd_image_files["cmyk_jpeg"].suffix == ".jpg"
    assert odd_image_files["bomb_png"].stat().st_size < 1024 * 1024


def test_fixture_generation_is_cheap() -> None:
    started = time.perf_counter()
    make_image_bytes("bomb_png")
    make_image_bytes("pillow_warning_bomb_png")
    assert time.perf_counter() - started < 1.0


def test_unsupported_mode_is_refused_at_probe() -> None:
    out = io.BytesIO()
    Image.new("LAB", (8, 8)).save(out, "TIFF")
    with pytest.raises(InvalidInput) as caught:
        probe(out.getvalue(), LIMITS)
    assert caught.value.reason == "UNSUPPORTED_FORMAT"


def test_png_with_zero_width_is_corrupt() -> None:
    data = png_bytes(0, 10, 8, 0, zlib.compress(b"\x00" * 10))
    with pytest.raises(InvalidInput) as caught:
        probe(data, LIMITS)
    assert caught.value.reason == "CORRUPT"


# --- real photos ----------------------------------------------------------------------------------


def test_concurrent_decodes_match_sequential(coco_images: list[Path], odd_images: dict[str, bytes]) -> None:
    inputs = [p.read_bytes() for p in coco_images[:24]] + [odd_images[k] for k in ("cmyk_jpeg", "rgba_png")]

    def digest(data: bytes) -> tuple[tuple[int, int], int]:
        image, _ = decode(data, LIMITS, max_side=224)
        return image.size, zlib.crc32(image.tobytes())

    sequential = [digest(d) for d in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(digest, inputs * 2)) == sequential * 2


def test_all_coco_photos_decode(coco_images: list[Path]) -> None:
    assert len(coco_images) == 363
    for path in coco_images:
        image, info = decode(path.read_bytes(), LIMITS)
        assert image.mode == "RGB", path
        assert image.size == (info.width, info.height), path
        assert info.mime_type == "image/jpeg"


def test_first_flickr8k_photos_decode() -> None:
    records = dataset_records("flickr8k", "captions.jsonl")[:50]
    for record in records:
        data = (DATASETS / "flickr8k" / record["file"]).read_bytes()
        image, info = decode(data, LIMITS, max_side=224)
        assert image.mode == "RGB"
        assert (info.width, info.height) == image.size == (224, 224)


@pytest.mark.skipif("HEIF" in Image.OPEN, reason="a HEIF plugin is registered here, so HEIC is accepted")
def test_heic_without_a_plugin_is_unsupported_not_garbage() -> None:
    """iPhones upload HEIC; without pillow-heif say so, rather than "not an image"."""
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100
    assert sniff_mime(heic) == "image/heic"
    with pytest.raises(InvalidInput) as caught:
        probe(heic, LIMITS)
    assert caught.value.reason == "UNSUPPORTED_FORMAT"


def test_a_108_megapixel_photo_decodes_scaled_within_a_small_budget() -> None:
    """12000 x 9000 is over Pillow's default guard (89.5 MP): accepted under ORDO_MAX_IMAGE_PIXELS's default
    and decoded by JPEG draft at 1/8 scale, so the pixels held are ~1500 x 1125, not 108 MP."""
    import io as _io

    image = Image.new("RGB", (12_000, 9_000), (90, 120, 200))
    out = _io.BytesIO()
    image.save(out, "JPEG", quality=50)
    del image
    data = out.getvalue()
    info = probe(data, LIMITS)
    assert (info.width, info.height) == (12_000, 9_000)
    decoded, _ = decode(data, LIMITS, max_side=224)
    assert min(decoded.size) >= 224
    assert decoded.size[0] * decoded.size[1] * 3 < 8 * 1024 * 1024  # under 8 MB of pixels
