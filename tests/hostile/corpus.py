"""A generated folder of bad and odd files and entries, with what Ordo must make of each.

Every entry is tiny (the largest is a sparse file) so building the corpus takes well under a second. Each
:class:`Case` says what must happen to it wherever it enters Ordo (CLI, REST, gRPC upload, server-side
ingest): ``ok`` (ingested and embedded, or a duplicate of something that was), or ``fail`` with the reason
reported for that entry. ``stage`` says where the refusal happens: ``walk`` (a folder walk or a bounded
read refuses it before any byte is sent), ``ingest`` (the server refuses it on arrival) or ``embed`` (the
worker finds it damaged when decoding). Entries that exist only in a file system (FIFOs, links, sockets,
hidden files) have ``fs_only``: REST and gRPC uploads carry bytes, not entries.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms

from tests.fixtures.images import make_image_bytes, zero_png

MAX_IMAGE_BYTES = 2 * 1024 * 1024  # the stack under test runs with ORDO_MAX_IMAGE_BYTES at this


@dataclass(frozen=True)
class Case:
    name: str  # the entry's path relative to the corpus root
    outcome: str  # "ok" or "fail"
    reason: str = ""
    stage: str = ""  # walk / ingest / embed, for failures
    fs_only: bool = False  # not a regular file: only folder walks and path uploads meet it
    walk_sees: bool = True  # False for entries inside a hidden folder (reported as the folder)


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _img(seed: int, size: tuple[int, int] = (48, 32)) -> Image.Image:
    """A small image unique to ``seed`` (so no two good entries are accidental duplicates)."""
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    image.putpixel((seed % size[0], (seed // size[0]) % size[1]), (255 - seed % 256, 0, 0))
    return image


def _jpeg(seed: int, **params: object) -> bytes:
    return _save(_img(seed), "JPEG", quality=90, **params)


def _jpeg_header_bomb() -> bytes:
    """A real JPEG whose SOF0 is patched to claim 65000 x 65000 (4.2 GP): refused from the header."""
    data = bytearray(_jpeg(900))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 65000, 65000)
    return bytes(data)


def _jpeg_zero_width() -> bytes:
    data = bytearray(_jpeg(901))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 32, 0)
    return bytes(data)


def _bmp_header_bomb() -> bytes:
    data = bytearray(_save(_img(902, (4, 4)), "BMP"))
    struct.pack_into("<ii", data, 18, 60000, 60000)  # BITMAPINFOHEADER width, height
    return bytes(data)


def _gif_header_bomb() -> bytes:
    data = bytearray(_save(_img(903, (4, 4)), "GIF"))
    struct.pack_into("<HH", data, 6, 65535, 65535)  # logical screen size
    for pos in range(13, len(data) - 10):  # and the image descriptor's
        if data[pos] == 0x2C:
            struct.pack_into("<HH", data, pos + 5, 65535, 65535)
            break
    return bytes(data)


def _tiff_header_bomb() -> bytes:
    image = _img(904, (4, 4))
    data = bytearray(_save(image, "TIFF"))
    # Patch ImageWidth (256) and ImageLength (257) in the first IFD.
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):
            if kind == 3:
                struct.pack_into("<H", data, entry + 8, 65000)
            else:
                struct.pack_into("<I", data, entry + 8, 65000)
    return bytes(data)


def _lab_tiff() -> bytes:
    return _save(Image.new("LAB", (16, 8), (50, 10, 10)), "TIFF")


def _huge_exif_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: a 60 KB APP1 segment (the most one segment holds)
    return _jpeg(905, exif=exif.tobytes())


def _huge_icc_jpeg() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    padded = profile + b"\0" * (300_000 - len(profile))  # spread over five APP2 segments
    return _jpeg(906, icc_profile=padded)


def _polyglot_jpeg_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "a zip hiding after a JPEG")
    return _jpeg(907) + archive.getvalue()


def _polyglot_gif_js() -> bytes:
    return _save(_img(908, (8, 8)), "GIF") + b"\n/*/alert(1)//*/\n"


def _heic_without_plugin() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def _psd() -> bytes:
    return b"8BPS\x00\x01" + b"\x00" * 64


def _oversized_jpeg(path: Path) -> None:
    """A sparse file one byte over the limit that starts like a JPEG (no disk used)."""
    with path.open("wb") as handle:
        handle.write(_jpeg(909))
        handle.truncate(MAX_IMAGE_BYTES + 1)


def _sixteen_bit_png() -> bytes:
    return make_image_bytes("rgb16_png")


Writer = Callable[[Path], None]


def _bytes(data: bytes | Callable[[], bytes]) -> Writer:
    def write(path: Path) -> None:
        path.write_bytes(data() if callable(data) else data)

    return write


# name -> (writer, case fields)
_GOOD_BYTES: dict[str, Callable[[], bytes]] = {
    "plain.jpg": lambda: _jpeg(1),
    "progressive.jpg": lambda: _jpeg(2, progressive=True),
    "no_extension": lambda: _jpeg(3),  # a JPEG without extension: decided by content
    "jpeg_named.txt": lambda: _jpeg(4),
    "png_named.jpg": lambda: _save(_img(5), "PNG"),
    "UPPER.JPEG": lambda: _jpeg(6),
    "фото 🌅 spaces.jpg": lambda: _jpeg(7),
    "new\nline.jpg": lambda: _jpeg(8),
    ("n" * 246) + ".jpg": lambda: _jpeg(9),  # a 250-character name
    "cmyk.jpg": lambda: make_image_bytes("cmyk_jpeg"),
    "gray16.png": lambda: make_image_bytes("gray16_png"),
    "rgb16.png": _sixteen_bit_png,
    "animated.gif": lambda: make_image_bytes("animated_gif"),
    "animated.webp": lambda: make_image_bytes("animated_webp"),
    "animated.png": lambda: make_image_bytes("apng"),
    "mpo.jpg": lambda: make_image_bytes("mpo_jpeg"),
    "multipage.tiff": lambda: make_image_bytes("multipage_tiff"),
    "deflate.tif": lambda: make_image_bytes("tiff"),
    "one_bit.bmp": lambda: make_image_bytes("bitmap_bmp"),
    "palette_alpha.png": lambda: make_image_bytes("transparent_palette_png"),
    "la.png": lambda: make_image_bytes("la_png"),
    "webp.webp": lambda: make_image_bytes("webp"),
    "exif_rotated.jpg": lambda: make_image_bytes("exif_rotated_jpeg"),
    "garbage_exif.jpg": lambda: make_image_bytes("garbage_exif_jpeg"),
    "bad_exif_values.jpg": lambda: make_image_bytes("bad_exif_values_jpeg"),
    "huge_exif.jpg": _huge_exif_jpeg,
    "huge_icc.jpg": _huge_icc_jpeg,
    "polyglot_jpeg_zip.jpg": _polyglot_jpeg_zip,
    "polyglot_gif_js.gif": _polyglot_gif_js,
    "sub/nested.jpg": lambda: _jpeg(10),
    "sub/deeper/deepest.png": lambda: _save(_img(11), "PNG"),
}
_BAD_BYTES: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name -> (bytes, reason, stage). Folder walks refuse non-images by content before reading them.
    "empty.jpg": (lambda: b"", "EMPTY_FILE", "ingest"),
    "text_named.jpg": (lambda: make_image_bytes("text_as_jpg"), "NOT_AN_IMAGE", "walk"),
    "random.png": (lambda: bytes(range(256)) * 8, "NOT_AN_IMAGE", "walk"),
    "document.pdf": (lambda: make_image_bytes("pdf"), "UNSUPPORTED_FORMAT", "walk"),
    "figure.eps": (lambda: make_image_bytes("eps"), "UNSUPPORTED_FORMAT", "walk"),
    "drawing.svg": (lambda: make_image_bytes("svg"), "UNSUPPORTED_FORMAT", "walk"),
    "icon.ico": (lambda: make_image_bytes("ico"), "UNSUPPORTED_FORMAT", "walk"),
    "layers.psd": (_psd, "UNSUPPORTED_FORMAT", "walk"),
    "phone.heic": (_heic_without_plugin, "UNSUPPORTED_FORMAT", "walk"),
    "lab.tiff": (_lab_tiff, "UNSUPPORTED_FORMAT", "ingest"),
    "bomb.png": (lambda: zero_png(60_000, 60_000), "DECOMPRESSION_BOMB", "ingest"),
    "bomb.jpg": (_jpeg_header_bomb, "DECOMPRESSION_BOMB", "ingest"),
    "bomb.bmp": (_bmp_header_bomb, "DECOMPRESSION_BOMB", "ingest"),
    "bomb.gif": (_gif_header_bomb, "DECOMPRESSION_BOMB", "ingest"),
    "bomb.tiff": (_tiff_header_bomb, "DECOMPRESSION_BOMB", "ingest"),
    "zero_width.jpg": (_jpeg_zero_width, "CORRUPT", "ingest"),
    "truncated.jpg": (lambda: make_image_bytes("truncated_jpeg"), "TRUNCATED", "embed"),
    "truncated.png": (lambda: make_image_bytes("truncated_png"), "TRUNCATED", "embed"),
    "truncated.webp": (lambda: make_image_bytes("truncated_webp"), "TRUNCATED", "ingest"),
    "corrupt.png": (lambda: make_image_bytes("corrupt_png"), "CORRUPT", "embed"),
}
DUPLICATE_OF = {"copy_of_plain.jpg": "plain.jpg", "sub/again_plain.jpg": "plain.jpg"}


def build(root: Path) -> list[Case]:
    """Write the corpus under ``root`` (which must be empty or missing); return what must become of it."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def write(name: str, data: bytes) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    for name, make in _GOOD_BYTES.items():
        write(name, make())
        cases.append(Case(name, "ok"))
    for name, original in DUPLICATE_OF.items():
        write(name, (root / original).read_bytes())
        cases.append(Case(name, "ok"))
    for name, (make, reason, stage) in _BAD_BYTES.items():
        write(name, make())
        cases.append(Case(name, "fail", reason, stage))

    _oversized_jpeg(root / "oversized.jpg")
    cases.append(Case("oversized.jpg", "fail", "FILE_TOO_LARGE", "walk"))

    # Entries only a file system has.
    (root / "loop_a.jpg").symlink_to("loop_b.jpg")
    (root / "loop_b.jpg").symlink_to("loop_a.jpg")
    (root / "self_loop.jpg").symlink_to("self_loop.jpg")
    (root / "dangling.jpg").symlink_to("does-not-exist.jpg")
    (root / "zero.jpg").symlink_to("/dev/zero")
    (root / "null.png").symlink_to("/dev/null")
    os.mkfifo(root / "pipe.jpg")
    (root / "link_to_plain.jpg").symlink_to("plain.jpg")
    (root / "link_to_sub").symlink_to("sub", target_is_directory=True)
    (root / "link_to_root").symlink_to("/", target_is_directory=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "socket.jpg"))
    cases += [
        Case("loop_a.jpg", "fail", "UNREADABLE", "walk", fs_only=True),
        Case("loop_b.jpg", "fail", "UNREADABLE", "walk", fs_only=True),
        Case("self_loop.jpg", "fail", "UNREADABLE", "walk", fs_only=True),
        Case("dangling.jpg", "fail", "NOT_FOUND", "walk", fs_only=True),
        Case("zero.jpg", "fail", "NOT_A_FILE", "walk", fs_only=True),
        Case("null.png", "fail", "NOT_A_FILE", "walk", fs_only=True),
        Case("pipe.jpg", "fail", "NOT_A_FILE", "walk", fs_only=True),
        Case("socket.jpg", "fail", "NOT_A_FILE", "walk", fs_only=True),
        Case("link_to_plain.jpg", "ok", fs_only=True),
        Case("link_to_sub", "fail", "NOT_A_FILE", "walk", fs_only=True),
        Case("link_to_root", "fail", "NOT_A_FILE", "walk", fs_only=True),
    ]
    write(".hidden.jpg", _jpeg(12))
    write(".thumbnails/cached.jpg", _jpeg(13))
    cases += [
        Case(".hidden.jpg", "fail", "HIDDEN", "walk", fs_only=True),
        Case(".thumbnails", "fail", "HIDDEN", "walk", fs_only=True),
    ]
    (root / "empty_folder").mkdir()
    return cases


def regular_files(root: Path, cases: list[Case]) -> list[Case]:
    """The cases that are plain files (what a REST or gRPC upload can carry as bytes)."""
    return [c for c in cases if not c.fs_only]
