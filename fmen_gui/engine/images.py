"""Reading and writing images: the only place the application touches image files.

The GUI thread imports this module at start-up to validate drops and draw previews, so it must
stay light: stdlib, numpy and Pillow only, never torch or Qt.

Three promises shape the code:

* Every failure a user can cause (a missing, unreadable, corrupt, huge or unsupported file; a
  full disk or read-only folder) surfaces as :class:`~fmen_gui.errors.ImageError` with a one-line
  reason. Pillow raises a zoo of exception types on malformed input (``OSError``,
  ``SyntaxError``, ``ValueError``, ``struct.error``...), so the calls that parse untrusted bytes
  are wrapped and translated here rather than at every call site.
* 16-bit sources stay 16-bit. Pillow decodes 16-bit RGB(A) PNG and TIFF files to 8 bits and
  cannot write them at all, so this module carries a small lossless PNG and TIFF codec for
  exactly those cases (tifffile reads the TIFF layouts that codec leaves out: LZW, tiles...)
  and lets Pillow do everything else. A 16-bit file that still ends up 8-bit says so in
  :attr:`ImageData.notes`.
* Output files appear whole or not at all: a crash, a full disk or Ctrl-C mid-write never leaves
  a half-written image (or a stray temporary file) where the user expects a result.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError, features

from fmen_gui import atomicfiles
from fmen_gui.engine.names import OUTPUT_FORMATS
from fmen_gui.errors import ImageError, OutputExistsError

__all__ = [
    "DEFAULT_BACKGROUND",
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "SUPPORTED_EXTENSIONS",
    "ImageData",
    "check_output_size",
    "fills_transparency",
    "flatten_alpha",
    "is_supported",
    "make_preview_rgb8",
    "output_format_for",
    "read_image",
    "resize_alpha",
    "write_image",
]

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)
DEFAULT_MAX_PIXELS: int = 200_000_000
# What transparent areas become in a format without alpha (JPEG). White, like paper and like most
# viewers' page background; never the colour that happened to be stored under alpha = 0, which is
# often the hidden remainder of an edit (a face, an address) and would leak on saving.
DEFAULT_BACKGROUND: tuple[int, int, int] = (255, 255, 255)
# Output formats (Pillow names) that store an alpha channel; the others get it composited away.
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_FLATTEN_ROWS = 256  # rows composited per step, so flattening needs no full-size temporaries

# Spellings accepted for ``fmt`` and extensions; OUTPUT_FORMATS lists one name per format for menus.
_FORMAT_ALIASES: dict[str, str] = {**OUTPUT_FORMATS, "jpeg": "JPEG", "tif": "TIFF"}
# Decoders Pillow may try. Restricting them keeps exotic plugins (EPS runs Ghostscript, for one)
# away from files that merely carry an image extension. (Multi-picture camera JPEGs still open:
# the JPEG decoder itself turns them into Pillow's MPO images.)
_PILLOW_INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
_JPEG_MAX_SIDE = 65_500  # libjpeg's limit
_WEBP_MAX_SIDE = 16_383  # libwebp's limit
_PNG_MAX_SIDE = 2**31 - 1  # the PNG specification's limit
_TIFF_MAX_BYTES = 2**32 - 2**20  # classic TIFF offsets are 32-bit; room left for tags
_JPEG_MAX_EXIF = 65_533  # an APP1 segment holds at most 65535 bytes including its length field
_JPEG_TABLES_MARGIN = 4096  # room for optimised Huffman tables in a JPEG's headers
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Pillow's own decompression-bomb guard (a warning above ~89 MP, an error above ~179 MP) would
# reject images below this module's documented limit and raise its own exception type. The limit
# that matters is the caller's ``max_pixels``, checked in read_image before any pixel is decoded,
# and every image the application opens goes through read_image, so Pillow's guard is switched
# off rather than fought per call (toggling it per call would race between threads).
Image.MAX_IMAGE_PIXELS = None
# Pillow warns (on stderr) about things this module already handles or reports in its own
# words: damaged EXIF ("Truncated File Read", "Corrupt EXIF data"), palette transparency given
# as bytes, and the like. A batch's output must be one line per problem, so Pillow's own
# warnings are silenced; anything that matters surfaces as an ImageError.
warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


@dataclass
class ImageData:
    """Decoded pixels plus the metadata worth carrying from the input to the upscaled output.

    Colour is always three channels so the network sees one layout; ``grayscale`` remembers that
    the source had one channel so the output can be written back as grayscale instead of tripling
    its size. ``alpha`` travels beside ``rgb`` because the network never sees it: it is upscaled
    separately with :func:`resize_alpha`.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    grayscale: bool = False
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source_format: str | None = None
    notes: tuple[str, ...] = ()  # one-line remarks for the user, e.g. a 16-bit file read as 8-bit

    def __post_init__(self) -> None:
        # Catch engine bugs here, where the culprit is obvious, rather than deep inside an encoder.
        if not isinstance(self.rgb, np.ndarray) or self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError("ImageData.rgb must be an H x W x 3 array")
        if self.rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"ImageData.rgb must be uint8 or uint16, not {self.rgb.dtype}")
        self.rgb = np.ascontiguousarray(self.rgb)
        if self.alpha is not None:
            if self.alpha.shape != self.rgb.shape[:2] or self.alpha.dtype != self.rgb.dtype:
                raise ValueError("ImageData.alpha must be H x W with the same dtype as rgb")
            self.alpha = np.ascontiguousarray(self.alpha)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def bit_depth(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), Pillow's order, because that is how sizes are shown to users."""
        return (self.width, self.height)


# --------------------------------------------------------------------------------------------
# Public helpers


def is_supported(path: Path) -> bool:
    """Cheap pre-filter for file dialogs and drag-and-drop; read_image has the final word."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def output_format_for(path: Path, fmt: str | None) -> str:
    """Pick the Pillow format name, preferring an explicit choice over the file's extension.

    The explicit ``fmt`` wins so a user can save ``photo.out`` as PNG; without it the extension
    is the only sensible signal, and guessing past an unknown one would surprise the user.
    """
    if fmt is not None:
        key = fmt.strip().lower().lstrip(".")
        if key not in _FORMAT_ALIASES:
            raise ImageError(f"unknown output format {fmt!r} (use png, jpg, webp or tiff)")
        return _FORMAT_ALIASES[key]
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in _FORMAT_ALIASES:
        shown = f"'.{suffix}'" if suffix else "(none)"
        raise ImageError(f"cannot tell the output format from the extension {shown}")
    return _FORMAT_ALIASES[suffix]


def fills_transparency(data: ImageData, path: Path, fmt: str | None = None) -> bool:
    """Whether writing ``data`` to ``path`` (as ``fmt``) fills see-through pixels with a background.

    True for partly transparent images going to a format without alpha (JPEG). Callers use it to
    tell the user, so that the filled background is never a surprise.
    """
    if data.alpha is None or output_format_for(path, fmt) in _ALPHA_FORMATS:
        return False
    opaque = 65535 if data.alpha.dtype == np.uint16 else 255
    return bool(data.alpha.min() < opaque)


def flatten_alpha(
    rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int] = DEFAULT_BACKGROUND
) -> np.ndarray:
    """Composite straight-alpha ``rgb`` over an opaque ``background``; returns new 8-bit pixels.

    ``out = (rgb * a + background * (255 - a)) / 255``, rounded, computed in blocks of rows. The
    colour stored under fully transparent pixels therefore never reaches the output: it is hidden
    content, not picture.
    """
    rgb8, alpha8 = _to_8bit(rgb), _to_8bit(alpha)
    bg = np.asarray([min(255, max(0, int(c))) for c in background], dtype=np.uint16)
    out = np.empty(rgb8.shape, dtype=np.uint8)
    for r0 in range(0, rgb8.shape[0], _FLATTEN_ROWS):
        r1 = r0 + _FLATTEN_ROWS
        a = alpha8[r0:r1, :, None].astype(np.uint16)
        mixed = rgb8[r0:r1].astype(np.uint16) * a + bg * (255 - a) + 127  # at most 65152
        out[r0:r1] = (mixed // 255).astype(np.uint8)
    return out


def make_preview_rgb8(data: ImageData) -> np.ndarray:
    """8-bit pixels for on-screen display, which cannot show 16 bits anyway.

    Returns H x W x 3, or H x W x 4 when there is alpha so the viewer can draw a checkerboard.
    """
    rgb = _to_8bit(data.rgb)
    if data.alpha is None:
        return np.ascontiguousarray(rgb)
    return np.ascontiguousarray(np.dstack((rgb, _to_8bit(data.alpha))))


def resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """Upscale an alpha plane smoothly (bicubic) by an integer factor, keeping its dtype.

    The network only upscales colour; alpha edges are usually soft masks for which bicubic looks
    right, and nearest-neighbour would leave visible stair steps at 2-4x. 16-bit planes go through
    Pillow's float mode because its integer 16-bit resampling is not reliably available.
    """
    if alpha.ndim != 2 or alpha.dtype not in (np.uint8, np.uint16):
        raise ValueError("alpha must be a 2-D uint8 or uint16 array")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, not {scale!r}")
    if scale == 1:
        return alpha.copy()
    height, width = alpha.shape
    new_size = (width * scale, height * scale)
    if alpha.dtype == np.uint8:
        resized = Image.fromarray(np.ascontiguousarray(alpha)).resize(new_size, Image.Resampling.BICUBIC)
        return np.array(resized, dtype=np.uint8)
    plane = Image.fromarray(alpha.astype(np.float32))
    resized_f = np.asarray(plane.resize(new_size, Image.Resampling.BICUBIC))
    return np.clip(np.rint(resized_f), 0, 65535).astype(np.uint16)


# --------------------------------------------------------------------------------------------
# Reading


def read_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """Decode an image file into upright pixels, refusing anything that would hurt the user.

    The size limit is checked from the header, before a single pixel is decoded, so a tiny file
    claiming 40000 x 40000 pixels fails in milliseconds instead of exhausting memory. EXIF
    orientation is applied here, once, so every later stage can treat pixels as upright; the
    EXIF kept for the output has its Orientation reset to 1 to stop viewers rotating it again.
    EXIF is kept from JPEG, PNG and WebP sources (a TIFF's own tags are not EXIF and are not
    copied). The file is opened read-only and never modified.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise ImageError(_read_error_message(exc)) from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageError("is a directory")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or device would block or read forever.
        raise ImageError("not a regular file")
    if info.st_size == 0:
        raise ImageError("empty file")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with-block right below
    except OSError as exc:
        raise ImageError(_read_error_message(exc)) from exc
    with fh:
        im = _open_with_pillow(fh)
        if im is None:
            # Pillow has no mode for 16-bit gray+alpha TIFF (which write_image produces), so it
            # cannot even identify one; the own TIFF reader gets a chance before giving up.
            layout = _tiff16_layout(fh)
            if layout is None:
                decoded, _lost = _read_tiff16_with_tifffile(fh, max_pixels)
                if decoded is not None:
                    return _finish(decoded, "TIFF")
                fh.seek(0)
                if _has_image_signature(fh.read(16)):
                    raise ImageError("image data is truncated or corrupt")
                raise ImageError("not a supported image (cannot identify format)")
            _check_pixel_limit((layout.width, layout.height), max_pixels)
            return _finish(_read_tiff16(fh, layout), "TIFF")
        with im:
            _check_pixel_limit(im.size, max_pixels)
            return _finish(_decode(fh, im), im.format)


def _read_error_message(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "file not found"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return f"cannot read file ({exc.strerror or type(exc).__name__})"


def _open_with_pillow(fh: BinaryIO) -> Image.Image | None:
    """Identify the format and read the header only (Pillow defers decoding pixels to load()).

    Returns None when no allowed Pillow decoder recognises the file.
    """
    try:
        return Image.open(fh, formats=_PILLOW_INPUT_FORMATS)
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError:
        # Only reachable if someone re-enabled Pillow's guard (see MAX_IMAGE_PIXELS above).
        raise ImageError("image is too large to open safely") from None
    except MemoryError:
        raise ImageError("not enough memory to read the image") from None
    except Exception as exc:
        raise ImageError("image data is truncated or corrupt") from exc


def _has_image_signature(head: bytes) -> bool:
    """Whether a file Pillow could not identify starts like a supported format nonetheless.

    Such a file is damaged rather than foreign, and saying so points the user at the right fix.
    """
    return head.startswith(
        (_PNG_SIGNATURE, b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM")
    ) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _check_pixel_limit(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels (corrupt header)")
    pixels = width * height
    if pixels > max_pixels:
        raise ImageError(
            f"image is {width}×{height} ({_megapixels(pixels)} MP), "
            f"over the {_megapixels(max_pixels)} MP limit"
        )


def _megapixels(pixels: int) -> str:
    value = pixels / 1e6
    decimals = 0 if value >= 10 else 1 if value >= 1 else 3
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:.0f}"


@dataclass
class _Decoded:
    """Pixels as stored in the file (gray or colour, 1-4 channels) before orientation is applied."""

    pixels: np.ndarray  # H x W x C, uint8 or uint16, C in 1..4 (gray, gray+alpha, RGB, RGBA)
    icc_profile: bytes | None
    exif: bytes | None
    orientation: int
    notes: tuple[str, ...] = ()


def _decode(fh: BinaryIO, im: Image.Image) -> _Decoded:
    decoded: _Decoded | None = None
    lost: str | None = None
    if im.format == "PNG":
        decoded = _try_png16(fh, im)
    elif im.format == "TIFF":
        layout = _tiff16_layout(fh)
        if layout is not None:
            decoded = _read_tiff16(fh, layout)
        else:
            decoded, lost = _read_tiff16_with_tifffile(fh)
    if decoded is not None:
        return decoded
    decoded = _decode_with_pillow(im)
    if lost is not None and decoded.pixels.dtype == np.uint8:
        decoded.notes = (f"16-bit TIFF read as 8-bit ({lost})",)
    return decoded


def _finish(decoded: _Decoded, source_format: str | None) -> ImageData:
    """Turn file-layout pixels into the upright, always-three-channel ImageData layout."""
    pixels = _apply_orientation(decoded.pixels, decoded.orientation)
    channels = pixels.shape[2]
    grayscale = channels <= 2
    colour = pixels[..., :1] if grayscale else pixels[..., :3]
    rgb = np.repeat(colour, 3, axis=2) if grayscale else np.ascontiguousarray(colour)
    alpha = np.ascontiguousarray(pixels[..., -1]) if channels in (2, 4) else None
    icc = decoded.icc_profile if isinstance(decoded.icc_profile, bytes) and decoded.icc_profile else None
    return ImageData(
        rgb=_writable(rgb),
        alpha=None if alpha is None else _writable(alpha),
        grayscale=grayscale,
        icc_profile=icc,
        exif=decoded.exif,
        source_format=source_format,
        notes=decoded.notes,
    )


def _writable(array: np.ndarray) -> np.ndarray:
    # torch.from_numpy warns on read-only arrays, and np.asarray(Pillow image) is read-only.
    return array if array.flags.writeable else array.copy()


def _decode_with_pillow(im: Image.Image) -> _Decoded:
    try:
        im.load()
        exif, orientation = _exif_and_orientation(im)
        return _pixels_from_pillow(im, exif, orientation)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError("image is too large to open safely") from None
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    except Exception as exc:
        # Truncated or corrupt data; LOAD_TRUNCATED_IMAGES stays False so Pillow does raise.
        raise ImageError("image data is truncated or corrupt") from exc


def _exif_and_orientation(im: Image.Image) -> tuple[bytes | None, int]:
    raw = im.info.get("exif")
    if isinstance(raw, bytes) and raw:
        return _normalise_exif(raw)
    if im.format == "TIFF":
        # A TIFF's orientation is an ordinary tag; its other tags describe the TIFF container
        # itself and must not be copied into the output as EXIF.
        value = getattr(im, "tag_v2", {}).get(274, 1)
        return None, value if isinstance(value, int) and 1 <= value <= 8 else 1
    return None, 1


def _pixels_from_pillow(im: Image.Image, exif: bytes | None, orientation: int) -> _Decoded:
    mode = im.mode
    # A CMYK profile would be wrong for the RGB pixels produced below.
    icc = None if mode == "CMYK" else im.info.get("icc_profile")
    transparent = "transparency" in im.info
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or transparent else "RGB")
    elif mode in ("L", "RGB") and transparent:
        im = im.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("CMYK", "YCbCr", "HSV", "RGBX"):
        im = im.convert("RGB")
    elif mode in ("RGBa", "La"):
        im = im.convert(mode.upper())
    mode = im.mode
    if mode in ("RGB", "RGBA", "LA"):
        pixels = np.asarray(im)
    elif mode == "L":
        pixels = np.asarray(im)[..., None]
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        pixels = np.asarray(im).astype(np.uint16)[..., None]
    elif mode == "I":
        pixels = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., None]
    else:
        raise ImageError(f"unsupported image mode {mode}")
    return _Decoded(pixels=pixels, icc_profile=icc, exif=exif, orientation=orientation)


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Undo an EXIF orientation on an H x W x C array (same results as ImageOps.exif_transpose).

    Done in numpy rather than with Pillow so the 16-bit paths, which never create a Pillow
    image, rotate exactly like the 8-bit ones.
    """
    if orientation == 2:
        pixels = pixels[:, ::-1]
    elif orientation == 3:
        pixels = pixels[::-1, ::-1]
    elif orientation == 4:
        pixels = pixels[::-1]
    elif orientation == 5:
        pixels = pixels.swapaxes(0, 1)
    elif orientation == 6:
        pixels = np.rot90(pixels, k=-1)
    elif orientation == 7:
        pixels = pixels.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        pixels = np.rot90(pixels, k=1)
    return np.ascontiguousarray(pixels)


def _normalise_exif(raw: bytes) -> tuple[bytes | None, int]:
    """Return (EXIF with the ``Exif\\0\\0`` header and Orientation set to 1, original orientation).

    The Orientation value is patched in place instead of re-serialising through Pillow so every
    other tag (maker notes included) survives byte for byte. EXIF that cannot be parsed is
    dropped: copying garbage into the output helps nobody and can upset other programs.
    """
    tiff = raw[len(_EXIF_HEADER) :] if raw.startswith(_EXIF_HEADER) else raw
    data = bytearray(tiff)
    try:
        if data[:2] == b"II":
            endian = "<"
        elif data[:2] == b"MM":
            endian = ">"
        else:
            return None, 1
        magic, ifd = struct.unpack_from(endian + "HI", data, 2)
        if magic != 42:
            return None, 1
        (count,) = struct.unpack_from(endian + "H", data, ifd)
        orientation = 1
        for index in range(count):
            entry = ifd + 2 + 12 * index
            tag, kind, number = struct.unpack_from(endian + "HHI", data, entry)
            if tag != _ORIENTATION or number != 1 or kind not in (3, 4):
                continue
            fmt = endian + ("H" if kind == 3 else "I")
            (value,) = struct.unpack_from(fmt, data, entry + 8)
            if 1 <= value <= 8:
                orientation = value
            struct.pack_into(fmt, data, entry + 8, 1)
            break
    except struct.error:
        return None, 1
    return _EXIF_HEADER + bytes(data), orientation


# --------------------------------------------------------------------------------------------
# 16-bit PNG (Pillow reads 16-bit RGB/RGBA/LA PNGs as 8-bit and cannot write them)

_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


def _try_png16(fh: BinaryIO, im: Image.Image) -> _Decoded | None:
    """Decode a 16-bit PNG (plain or Adam7-interlaced) losslessly, or return None for Pillow.

    imagecodecs' libpng decodes Adam7 too, but libpng prints a warning on stderr for every
    interlaced file it reads that way, which would break the command line's one-line output;
    de-interlacing is a few lines on top of the row decoder here.
    """
    position = fh.tell()
    try:
        fh.seek(0)
        head = fh.read(33)
        if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
            return None
        depth, colour_type, interlace = head[24], head[25], head[28]
        if depth != 16 or interlace not in (0, 1) or colour_type not in _PNG_CHANNELS:
            return None
        fh.seek(0)
        blob = fh.read()
    finally:
        fh.seek(position)
    try:
        pixels, exif_raw = _decode_png16(blob)
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    exif, orientation = _normalise_exif(exif_raw) if exif_raw else (None, 1)
    return _Decoded(pixels=pixels, icc_profile=im.info.get("icc_profile"), exif=exif, orientation=orientation)


def _corrupt() -> ImageError:
    return ImageError("image data is truncated or corrupt")


# Adam7 passes: (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_passes(width: int, height: int, interlace: int) -> list[tuple[int, int, int, int, int, int]]:
    """(x0, y0, dx, dy, pass width, pass height) of each non-empty pass (one for plain files)."""
    if interlace == 0:
        return [(0, 0, 1, 1, width, height)]
    passes = []
    for x0, y0, dx, dy in _ADAM7:
        pass_width, pass_height = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pass_width > 0 and pass_height > 0:
            passes.append((x0, y0, dx, dy, pass_width, pass_height))
    return passes


def _unfilter_pass(rows: np.ndarray, width: int, bpp: int) -> np.ndarray:
    """Filtered rows (each with its filter byte) of one image or Adam7 pass -> H x W x bpp bytes."""
    height = rows.shape[0]
    filters = rows[:, 0].copy()
    if filters.max() > 4:
        raise _corrupt()
    # One zero row above and one zero column to the left stand in for "outside the image".
    buf = np.zeros((height + 1, width + 1, bpp), dtype=np.uint8)
    buf[1:, 1:] = rows[:, 1:].reshape(height, width, bpp)
    _unfilter(buf, filters)
    return np.ascontiguousarray(buf[1:, 1:])


def _decode_png16(blob: bytes) -> tuple[np.ndarray, bytes | None]:
    """Decode a 16-bit PNG into H x W x C uint16 (tRNS becomes an alpha channel)."""
    view = memoryview(blob)
    if bytes(view[:8]) != _PNG_SIGNATURE:
        raise _corrupt()
    header: tuple[int, ...] | None = None
    idat: list[memoryview] = []
    trns: bytes | None = None
    exif: bytes | None = None
    pos = 8
    while pos + 8 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, pos)
        end = pos + 8 + length
        if end + 4 > len(view):
            raise _corrupt()
        body = view[pos + 8 : end]
        (crc,) = struct.unpack_from(">I", view, end)
        crc_ok = zlib.crc32(body, zlib.crc32(kind)) == crc
        critical = not kind[0] & 0x20
        if critical and not crc_ok:
            raise _corrupt()
        if kind == b"IHDR":
            if length != 13:
                raise _corrupt()
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"tRNS" and crc_ok:
            trns = bytes(body)
        elif kind == b"eXIf" and crc_ok:
            exif = bytes(body)
        elif kind == b"IEND":
            break
        pos = end + 4
    if header is None or not idat:
        raise _corrupt()
    width, height, depth, colour_type, compression, filter_method, interlace = header
    if (
        width == 0
        or height == 0
        or depth != 16
        or colour_type not in _PNG_CHANNELS
        or compression != 0
        or filter_method != 0
        or interlace not in (0, 1)
    ):
        raise _corrupt()
    channels = _PNG_CHANNELS[colour_type]
    bpp = 2 * channels
    passes = _png_passes(width, height, interlace)
    raw = _inflate(idat, sum(h * (w * bpp + 1) for *_, w, h in passes))
    if interlace == 0:
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width * bpp + 1)
        del raw
        pixels = _unfilter_pass(rows, width, bpp).view(">u2").reshape(height, width, channels)
        pixels = pixels.astype(np.uint16)
    else:
        # Each pass is a small image of its own, filtered on its own (PNG spec, 8.2).
        pixels = np.empty((height, width, channels), dtype=np.uint16)
        offset = 0
        for x0, y0, dx, dy, pass_width, pass_height in passes:
            size = pass_height * (pass_width * bpp + 1)
            rows = np.frombuffer(raw, dtype=np.uint8, count=size, offset=offset)
            offset += size
            part = _unfilter_pass(rows.reshape(pass_height, -1), pass_width, bpp)
            pixels[y0::dy, x0::dx] = part.view(">u2").reshape(pass_height, pass_width, channels)
        del raw
    expected_trns = {0: 2, 2: 6}.get(colour_type)
    if trns is not None and expected_trns == len(trns):
        key = np.frombuffer(trns, dtype=">u2").astype(np.uint16)
        opaque = np.any(pixels != key, axis=2)
        alpha = np.where(opaque, np.uint16(65535), np.uint16(0)).astype(np.uint16)
        pixels = np.concatenate((pixels, alpha[..., None]), axis=2)
    return pixels, exif


def _inflate(pieces: list[memoryview] | list[bytes], expected: int) -> bytes:
    """Decompress exactly ``expected`` bytes, never more: a zlib bomb cannot inflate past that."""
    decompressor = zlib.decompressobj()
    out: list[bytes] = []
    remaining = expected
    try:
        for piece in pieces:
            if remaining <= 0:
                break
            chunk = decompressor.decompress(piece, remaining)
            out.append(chunk)
            remaining -= len(chunk)
    except zlib.error:
        raise _corrupt() from None
    if remaining != 0:
        raise _corrupt()
    return b"".join(out)


def _unfilter(buf: np.ndarray, filters: np.ndarray) -> None:
    """Reverse PNG row filters in place on a (H+1) x (W+1) x bpp byte array with a zero border.

    None/Sub/Up rows are undone a row at a time with whole-row numpy operations. Average and
    Paeth make each byte depend on its left neighbour in the *reconstructed* row, which defeats
    row-wise vectorisation; but a pixel depends only on its left, upper and upper-left
    neighbours, so every anti-diagonal (row + column = const) can be reconstructed at once from
    the two before it. In the flattened padded array a diagonal is a plain strided slice, so this
    costs H + W Python iterations instead of H x W.
    """
    height, width = buf.shape[0] - 1, buf.shape[1] - 1
    bpp = buf.shape[2]
    if not np.isin(filters, (3, 4)).any():
        for r in range(height):
            kind = filters[r]
            row = buf[r + 1, 1:]
            if kind == 1:
                row[...] = np.cumsum(row, axis=0, dtype=np.uint8)
            elif kind == 2:
                row += buf[r, 1:]
        return
    flat = buf.reshape(-1, bpp)
    stride = width + 1  # padded row length in pixels
    for diagonal in range(height + width - 1):
        r0 = max(0, diagonal - width + 1)
        r1 = min(diagonal, height - 1)
        count = r1 - r0 + 1
        # Cell (r, x) lives at flat index (r + 1) * stride + x + 1; with x = diagonal - r the
        # index grows by `width` per row.
        start = r0 * width + stride + diagonal + 1
        stop = start + (count - 1) * width + 1
        current = flat[start:stop:width]
        a = flat[start - 1 : stop - 1 : width].astype(np.int16)
        b = flat[start - stride : stop - stride : width].astype(np.int16)
        c = flat[start - stride - 1 : stop - stride - 1 : width].astype(np.int16)
        kinds = filters[r0 : r1 + 1, None]
        pa = np.abs(b - c)
        pb = np.abs(a - c)
        pc = np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        prediction = np.select(
            [kinds == 1, kinds == 2, kinds == 3, kinds == 4], [a, b, (a + b) >> 1, paeth], 0
        )
        flat[start:stop:width] = (current + prediction) & 0xFF


def _filter_rows(current: np.ndarray, previous: np.ndarray, bpp: int, forced: int | None) -> np.ndarray:
    """Filter a block of rows for PNG, picking per row the filter with the smallest sum of
    absolute signed bytes (the heuristic libpng uses); prefix each row with its filter byte.

    Encoding needs only unfiltered neighbours, so unlike decoding it vectorises completely.
    ``forced`` pins one filter type, which the tests use to exercise every decoder branch.
    """
    a = np.zeros_like(current)
    a[:, bpp:] = current[:, :-bpp]
    c = np.zeros_like(previous)
    c[:, bpp:] = previous[:, :-bpp]
    a16, b16, c16 = a.astype(np.int16), previous.astype(np.int16), c.astype(np.int16)
    pa = np.abs(b16 - c16)
    pb = np.abs(a16 - c16)
    pc = np.abs(a16 + b16 - 2 * c16)
    paeth = np.where((pa <= pb) & (pa <= pc), a16, np.where(pb <= pc, b16, c16))
    cur16 = current.astype(np.int16)
    candidates = np.stack(
        [cur16, cur16 - a16, cur16 - b16, cur16 - ((a16 + b16) >> 1), cur16 - paeth]
    ).astype(np.uint8)
    rows = np.arange(current.shape[0])
    if forced is None:
        scores = np.abs(candidates.view(np.int8).astype(np.int16)).sum(axis=2)
        chosen = scores.argmin(axis=0)
    else:
        chosen = np.full(current.shape[0], forced)
    out = np.empty((current.shape[0], current.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = chosen
    out[:, 1:] = candidates[chosen, rows]
    return out


def _png_chunk(fh: BinaryIO, kind: bytes, body: bytes) -> None:
    fh.write(struct.pack(">I", len(body)))
    fh.write(kind)
    fh.write(body)
    fh.write(struct.pack(">I", zlib.crc32(body, zlib.crc32(kind))))


def _encode_png16(
    fh: BinaryIO,
    pixels: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    filter_type: int | None = None,
) -> None:
    """Write H x W x C uint16 pixels (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG.

    Streams: rows are filtered and compressed in blocks so memory stays near one copy of the
    image even for very large outputs.
    """
    height, width, channels = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    row_bytes = width * bpp
    fh.write(_PNG_SIGNATURE)
    _png_chunk(fh, b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
    if icc_profile:
        _png_chunk(fh, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile))
    if exif:
        _png_chunk(fh, b"eXIf", exif[len(_EXIF_HEADER) :] if exif.startswith(_EXIF_HEADER) else exif)
    compressor = zlib.compressobj(6)
    pending: list[bytes] = []
    pending_size = 0
    block_rows = max(1, (2 << 20) // max(1, row_bytes))
    for r0 in range(0, height, block_rows):
        r1 = min(height, r0 + block_rows)
        first = max(0, r0 - 1)
        big_endian = pixels[first:r1].astype(">u2").view(np.uint8).reshape(r1 - first, row_bytes)
        current = big_endian[r0 - first :]
        previous = np.zeros_like(current)
        previous[1:] = current[:-1]
        if r0 > 0:
            previous[0] = big_endian[0]
        data = compressor.compress(_filter_rows(current, previous, bpp, filter_type).tobytes())
        if data:
            pending.append(data)
            pending_size += len(data)
        if pending_size >= 1 << 20:
            _png_chunk(fh, b"IDAT", b"".join(pending))
            pending, pending_size = [], 0
    pending.append(compressor.flush())
    _png_chunk(fh, b"IDAT", b"".join(pending))
    _png_chunk(fh, b"IEND", b"")


# --------------------------------------------------------------------------------------------
# 16-bit TIFF (Pillow reads 16-bit RGB/RGBA TIFFs as 8-bit, and cannot write them or 16-bit
# gray+alpha). Only the common layouts are decoded here; anything else goes to Pillow.

_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_TIFF_WANTED_TAGS = frozenset(
    {256, 257, 258, 259, 262, 273, 274, 277, 278, 279, 284, 317, 322, 338, 339, 34675}
)


@dataclass
class _TiffLayout:
    """Where and how a 16-bit TIFF's first image is stored, as far as this module can decode it."""

    width: int
    height: int
    samples: int  # 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    drop_last: bool  # the 2nd/4th sample is an unspecified extra sample, not alpha
    offsets: tuple[int, ...]
    counts: tuple[int, ...]
    rows_per_strip: int
    deflate: bool
    predictor: bool
    endian: str
    icc_profile: bytes | None
    orientation: int


def _read_tiff_tags(fh: BinaryIO) -> tuple[str, dict[int, tuple[int, ...] | bytes]] | None:
    """Parse the first IFD of a classic TIFF, keeping only the tags the 16-bit reader needs.

    A dozen lines of struct beat relying on Pillow here: Pillow refuses to even open some
    layouts (16-bit gray+alpha) that this module writes itself.
    """
    fh.seek(0)
    head = fh.read(8)
    endian = {b"II": "<", b"MM": ">"}.get(head[:2])
    if endian is None or len(head) < 8:
        return None
    magic, ifd = struct.unpack(endian + "HI", head[2:])
    if magic != 42:  # BigTIFF (43) is left to Pillow
        return None
    fh.seek(ifd)
    raw_count = fh.read(2)
    if len(raw_count) < 2:
        return None
    (count,) = struct.unpack(endian + "H", raw_count)
    table = fh.read(12 * count)
    if len(table) < 12 * count:
        return None
    tags: dict[int, tuple[int, ...] | bytes] = {}
    for index in range(count):
        tag, kind, number = struct.unpack_from(endian + "HHI", table, 12 * index)
        if tag not in _TIFF_WANTED_TAGS or kind not in _TIFF_TYPE_SIZES:
            continue
        size = _TIFF_TYPE_SIZES[kind] * number
        if size > 64 << 20:
            return None
        if size <= 4:
            value = table[12 * index + 8 : 12 * index + 8 + size]
        else:
            (offset,) = struct.unpack_from(endian + "I", table, 12 * index + 8)
            fh.seek(offset)
            value = fh.read(size)
            if len(value) < size:
                return None
        if kind == 3:
            tags[tag] = struct.unpack(f"{endian}{number}H", value)
        elif kind == 4:
            tags[tag] = struct.unpack(f"{endian}{number}I", value)
        elif kind in (1, 7):
            tags[tag] = value
    return endian, tags


def _tiff16_layout(fh: BinaryIO) -> _TiffLayout | None:
    """Describe the file if it is a 16-bit TIFF this module decodes losslessly, else None.

    Covered: unsigned 16-bit gray, gray+alpha, RGB and RGBA in strips, uncompressed or Deflate,
    with or without horizontal prediction, which is what most editors write by default apart
    from LZW. Everything else (LZW, tiles, premultiplied alpha...) is left to Pillow.
    """
    position = fh.tell()
    try:
        parsed = _read_tiff_tags(fh)
    except (OSError, struct.error, ValueError):
        parsed = None
    finally:
        fh.seek(position)
    if parsed is None:
        return None
    endian, tags = parsed

    def ints(tag: int, default: tuple[int, ...] = ()) -> tuple[int, ...]:
        value = tags.get(tag, default)
        return value if isinstance(value, tuple) else default

    width, height = (ints(256) or (0,))[0], (ints(257) or (0,))[0]
    spp = ints(277, (1,))[0]
    extra = ints(338)
    photometric = ints(262)
    offsets, counts = ints(273), ints(279)
    rows_per_strip = ints(278, (height,))[0]
    if (
        width <= 0
        or height <= 0
        or spp not in (1, 2, 3, 4)
        or ints(258, (1,)) != (16,) * spp
        or photometric != ((1,) if spp <= 2 else (2,))
        or ints(259, (1,)) not in ((1,), (8,), (32946,))
        or ints(317, (1,)) not in ((1,), (2,))
        or ints(284, (1,)) != (1,)
        or any(v != 1 for v in ints(339, (1,)))
        or (spp in (2, 4) and extra not in ((0,), (2,)))
        or 322 in tags  # tiled
        or not offsets
        or len(offsets) != len(counts)
        or rows_per_strip <= 0
    ):
        return None
    icc = tags.get(34675)
    orientation = ints(274, (1,))[0]
    return _TiffLayout(
        width=width,
        height=height,
        samples=spp,
        drop_last=spp in (2, 4) and extra == (0,),
        offsets=offsets,
        counts=counts,
        rows_per_strip=min(rows_per_strip, height),
        deflate=ints(259, (1,)) != (1,),
        predictor=ints(317, (1,)) == (2,),
        endian=endian,
        icc_profile=icc if isinstance(icc, bytes) and icc else None,
        orientation=orientation if 1 <= orientation <= 8 else 1,
    )


def _read_tiff16(fh: BinaryIO, layout: _TiffLayout) -> _Decoded:
    """Decode the strips described by ``layout``; the pixel limit has been checked already."""
    width, height, spp = layout.width, layout.height, layout.samples
    row_bytes = width * spp * 2
    try:
        out = np.empty(height * row_bytes, dtype=np.uint8)
        filled = 0
        for index, (offset, count) in enumerate(zip(layout.offsets, layout.counts, strict=True)):
            rows = min(layout.rows_per_strip, height - index * layout.rows_per_strip)
            if rows <= 0:
                break
            need = rows * row_bytes
            fh.seek(offset)
            data = fh.read(count)
            if len(data) != count:
                raise _corrupt()
            if layout.deflate:
                data = _inflate([data], need)
            elif len(data) < need:
                raise _corrupt()
            out[filled : filled + need] = np.frombuffer(data, dtype=np.uint8, count=need)
            filled += need
        if filled != out.size:
            raise _corrupt()
        pixels = out.view(layout.endian + "u2").reshape(height, width, spp).astype(np.uint16)
        del out
        if layout.predictor:
            pixels = np.cumsum(pixels, axis=1, dtype=np.uint16)
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    except (OSError, ValueError) as exc:
        raise _corrupt() from exc
    if layout.drop_last:
        pixels = np.ascontiguousarray(pixels[..., :-1])  # Pillow also ignores such a sample
    return _Decoded(pixels=pixels, icc_profile=layout.icc_profile, exif=None, orientation=layout.orientation)


def _encode_tiff16(fh: BinaryIO, pixels: np.ndarray, *, icc_profile: bytes | None = None) -> None:
    """Write H x W x C uint16 pixels as a little-endian, Deflate-compressed, predictor-2 TIFF.

    Horizontal differencing (predictor 2) roughly halves the size of photographic 16-bit data
    under Deflate, and every mainstream TIFF reader supports the combination.
    """
    height, width, channels = pixels.shape
    row_bytes = width * channels * 2
    rows_per_strip = max(1, (256 << 10) // max(1, row_bytes))
    fh.write(b"II*\x00\x00\x00\x00\x00")  # IFD offset patched at the end
    offsets: list[int] = []
    counts: list[int] = []
    position = 8
    for r0 in range(0, height, rows_per_strip):
        strip = pixels[r0 : r0 + rows_per_strip].astype(np.uint16)
        diff = strip.copy()
        diff[:, 1:] -= strip[:, :-1]
        data = zlib.compress(diff.astype("<u2").tobytes(), 6)
        offsets.append(position)
        counts.append(len(data))
        fh.write(data)
        position += len(data)
    if position >= 1 << 32:
        raise ImageError("image is too large for TIFF (over 4 GB compressed)")
    # Out-of-line values, each starting on a word boundary as TIFF requires.
    blobs: dict[int, bytes] = {
        258: struct.pack(f"<{channels}H", *([16] * channels)),
        273: struct.pack(f"<{len(offsets)}I", *offsets),
        279: struct.pack(f"<{len(counts)}I", *counts),
        282: struct.pack("<II", 72, 1),
        283: struct.pack("<II", 72, 1),
    }
    if icc_profile:
        blobs[34675] = icc_profile
    locations: dict[int, int] = {}
    for tag, blob in blobs.items():
        if len(blob) <= 4:
            continue
        if position % 2:
            fh.write(b"\x00")
            position += 1
        locations[tag] = position
        fh.write(blob)
        position += len(blob)
    if position % 2:
        fh.write(b"\x00")
        position += 1
    if position + 2 + 20 * 12 + 4 >= 1 << 32:
        raise ImageError("image is too large for TIFF (over 4 GB compressed)")
    short, long_, rational, undefined = 3, 4, 5, 7
    entries: list[tuple[int, int, int, int | bytes]] = [
        (256, long_, 1, width),
        (257, long_, 1, height),
        (258, short, channels, blobs[258]),
        (259, short, 1, 8),
        (262, short, 1, 1 if channels <= 2 else 2),
        (273, long_, len(offsets), blobs[273]),
        (277, short, 1, channels),
        (278, long_, 1, rows_per_strip),
        (279, long_, len(counts), blobs[279]),
        (282, rational, 1, blobs[282]),
        (283, rational, 1, blobs[283]),
        (284, short, 1, 1),
        (296, short, 1, 2),  # resolution unit: inch
        (317, short, 1, 2),
    ]
    if channels in (2, 4):
        entries.append((338, short, 1, 2))  # unassociated (straight) alpha
    if icc_profile:
        entries.append((34675, undefined, len(icc_profile), icc_profile))
    ifd = bytearray(struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if isinstance(value, bytes):
            field = struct.pack("<I", locations[tag]) if len(value) > 4 else value.ljust(4, b"\x00")
        elif kind == short:
            field = struct.pack("<HH", value, 0)
        else:
            field = struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + field
    ifd += struct.pack("<I", 0)
    fh.write(ifd)
    fh.seek(4)
    fh.write(struct.pack("<I", position))
    fh.seek(0, os.SEEK_END)


_SILENT = logging.NullHandler()


def _read_tiff16_with_tifffile(
    fh: BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[_Decoded | None, str | None]:
    """16-bit TIFF layouts the reader above leaves out (LZW, tiles, separate planes, BigTIFF...).

    tifffile (with imagecodecs for LZW and the other codecs) decodes every layout an editor
    writes. Returns ``(pixels, None)``; ``(None, None)`` when the file's first image is not
    16-bit unsigned gray or RGB (Pillow then reads it as before); ``(None, reason)`` when it is
    16-bit but cannot be read at 16 bits here, so the caller can say so instead of silently
    dropping to Pillow's 8 bits.
    """
    position = fh.tell()
    try:
        import tifffile  # imported on first use: the GUI thread imports this module at start-up
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        return None, "tifffile is not installed"
    # tifffile logs its complaints about odd files; unconfigured, Python would print them on
    # stderr, between the command line's one-line messages. The outcome is reported instead.
    logging.getLogger("tifffile").addHandler(_SILENT)
    try:
        fh.seek(0)
        with tifffile.TiffFile(fh) as tif:
            page = tif.pages.first
            spp = int(page.samplesperpixel)
            extra = tuple(page.extrasamples or ())
            if int(page.bitspersample) != 16:
                return None, None
            if int(page.sampleformat) != 1 or int(page.photometric) not in (1, 2):
                return None, "signed, float or non-RGB samples"
            if any(e == 1 for e in extra):
                return None, "premultiplied alpha"
            if spp not in ((1, 2) if int(page.photometric) == 1 else (3, 4)):
                return None, "unusual sample layout"
            _check_pixel_limit((int(page.imagewidth), int(page.imagelength)), max_pixels)
            separate, depth, height, width, contig = page.shaped
            if depth != 1 or separate * contig != spp:
                return None, "unusual sample layout"
            orientation_tag = page.tags.get(274)
            icc_tag = page.tags.get(34675)
            try:
                array = page.asarray(squeeze=False, maxworkers=1)
            except MemoryError:
                raise
            except Exception as exc:
                # imagecodecs has every codec Pillow's libtiff has: a failure here is bad data.
                raise _corrupt() from exc
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    except Exception:
        return None, None  # not a TIFF tifffile can parse: Pillow has the last word
    finally:
        fh.seek(position)
    pixels = np.moveaxis(array[:, 0], 0, -1).reshape(height, width, spp).astype(np.uint16, copy=False)
    if spp in (2, 4) and extra[:1] != (2,):
        pixels = pixels[..., :-1]  # an unspecified extra sample, not alpha (as Pillow does)
    orientation = orientation_tag.value if orientation_tag is not None else 1
    icc = icc_tag.value if icc_tag is not None else None
    return (
        _Decoded(
            pixels=np.ascontiguousarray(pixels),
            icc_profile=bytes(icc) if isinstance(icc, bytes | bytearray) and icc else None,
            exif=None,
            orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
        ),
        None,
    )


# --------------------------------------------------------------------------------------------
# Writing


def write_image(
    path: Path,
    data: ImageData,
    *,
    fmt: str | None = None,
    quality: int = 95,
    overwrite: bool = False,
    numbered: bool = False,
    optimize: bool = True,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> Path:
    """Encode ``data`` and atomically put it at ``path``; return the path written.

    An existing file is replaced only with ``overwrite`` (the user's word). Otherwise the final
    step itself refuses (see :func:`fmen_gui.atomicfiles.publish`), so a file that appears at
    ``path`` while the image is encoded is kept: :class:`OutputExistsError` is raised, or with
    ``numbered`` the next free ``name (2).ext``, ``name (3).ext``… is taken (the GUI's policy).
    ``path`` ends up holding either its old content or the complete new image, never a
    fragment, and no temporary file survives. Format notes:

    * JPEG has no alpha channel: the image is composited over ``background`` (white by default,
      :func:`flatten_alpha`), so whatever colour lay hidden under transparent pixels is not
      revealed. :func:`fills_transparency` says in advance when that happens. JPEG and WebP are
      always 8-bit.
    * 16-bit data stays 16-bit in PNG and TIFF. Pillow cannot write 16-bit colour, so those
      files come from this module's own encoders (ICC kept; EXIF kept in PNG).
    * Grayscale sources are written as grayscale (WebP, which has none, gets three equal channels).
    * EXIF is written to JPEG, WebP and PNG with Orientation forced to 1, since pixels are upright
      (to JPEG only when it fits the 64 KB APP1 segment). TIFF output carries no EXIF.
    * The ICC profile is written unless its colour space (gray or RGB) does not match the pixels
      written, e.g. a gray profile when gray data goes to WebP as colour.
    * ``optimize`` (JPEG only) builds optimal Huffman tables: a few percent smaller files, but
      libjpeg then holds every DCT coefficient of the image (see the engine's memory plan).
    """
    path = Path(path)
    pillow_format = output_format_for(path, fmt)
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ImageError(f"quality must be between 1 and 100, not {quality!r}")
    check_output_size(data.width, data.height, pillow_format, data.bit_depth, data.alpha is not None)
    return _atomic_write(
        path,
        lambda fh: _encode(fh, data, pillow_format, quality, optimize, background),
        pillow_format,
        overwrite=overwrite,
        numbered=numbered,
    )


def check_output_size(
    width: int, height: int, pillow_format: str, bit_depth: int = 8, alpha: bool = False
) -> None:
    """Refuse an output size the format cannot hold, with the reason in one line.

    The engine calls this with the size a job *will* have, before any upscaling, so an
    impossible combination fails in milliseconds instead of after minutes of work. TIFF
    without BigTIFF addresses at most 4 GiB; the bound used is the uncompressed size, since
    how well the pixels will compress is unknown until they exist.
    """
    limit = {"JPEG": _JPEG_MAX_SIDE, "WEBP": _WEBP_MAX_SIDE, "PNG": _PNG_MAX_SIDE}.get(pillow_format)
    if limit is not None and max(width, height) > limit:
        other = "PNG or TIFF" if pillow_format != "PNG" else "TIFF"
        raise ImageError(
            f"image is {width}×{height}, too large for {pillow_format} "
            f"(at most {limit} pixels per side); save as {other}"
        )
    if pillow_format == "TIFF":
        samples = 3 + int(alpha)
        raw = width * height * samples * bit_depth // 8
        if raw > _TIFF_MAX_BYTES:
            raise ImageError(
                f"image is {width}×{height}, too large for TIFF ({raw / 2**30:.1f} GiB of pixels, "
                "a TIFF file holds at most 4 GiB); save as PNG"
            )


def _encode(
    fh: BinaryIO,
    data: ImageData,
    pillow_format: str,
    quality: int,
    optimize: bool = True,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> None:
    exif = _normalise_exif(data.exif)[0] if data.exif else None
    # WebP has no grayscale, so gray data is written there as colour.
    grayscale = data.grayscale and pillow_format != "WEBP"
    icc = data.icc_profile if _icc_fits(data.icc_profile, grayscale) else None
    if data.bit_depth == 16 and pillow_format in ("PNG", "TIFF"):
        planes = _output_planes(data.rgb, data.alpha, grayscale)
        if pillow_format == "PNG":
            _encode_png16(fh, planes, icc_profile=icc, exif=exif)
        else:
            _encode_tiff16(fh, planes, icc_profile=icc)
        return
    rgb, alpha = _to_8bit(data.rgb), None
    if data.alpha is not None:
        if pillow_format in _ALPHA_FORMATS:
            alpha = _to_8bit(data.alpha)
        else:
            rgb = flatten_alpha(data.rgb, data.alpha, background)
    planes = _output_planes(rgb, alpha, grayscale)
    # Pillow infers the mode from the shape: H x W -> L, x2 -> LA, x3 -> RGB, x4 -> RGBA.
    image = Image.fromarray(planes[..., 0] if planes.shape[2] == 1 else planes)
    params: dict[str, object] = {}
    if icc:
        params["icc_profile"] = icc
    if pillow_format == "JPEG":
        params["quality"] = quality
        if quality >= 90:
            params["subsampling"] = 0  # 4:4:4; chroma subsampling would blur the upscaled detail
        if exif and len(exif) <= _JPEG_MAX_EXIF:
            params["exif"] = exif
        fh.write(_jpeg_bytes(image, params, optimize))
        return
    elif pillow_format == "WEBP":
        params["quality"] = quality
        if exif:
            params["exif"] = exif
    elif pillow_format == "PNG":
        params["compress_level"] = 6
        if exif:
            params["exif"] = exif
    elif pillow_format == "TIFF":
        params["compression"] = "tiff_deflate" if features.check("libtiff") else None
    image.save(_PythonWrites(fh), format=pillow_format, **params)


class _PythonWrites:
    """A file object without ``fileno()``, so Pillow's encoders write through Python.

    Given a real file descriptor, Pillow's C encoders call ``write(2)`` themselves and ignore
    a short write, which is what a filling disk returns first: a JPEG could then be published
    truncated as a success, or fail with the encoder's own words ("broken data stream")
    instead of the errno. Through the buffered writer every byte is written or an OSError
    with the real errno (ENOSPC, EDQUOT, EIO) is raised.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, data: bytes) -> int:
        return self._fh.write(data)

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def flush(self) -> None:
        self._fh.flush()

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")


def _jpeg_bytes(image: Image.Image, params: dict[str, object], optimize: bool = True) -> bytes:
    """The JPEG file for ``image``, with optimised Huffman tables wherever Pillow can make them.

    Optimised tables (3–20 % smaller files) need the whole compressed image in one buffer,
    which Pillow sizes from a guess of at most one byte per pixel at qualities below 95;
    detailed images at high quality exceed it, and libjpeg then fails ("Suspension not
    allowed here" on stderr, "broken data stream"). So the standard-table file is made first,
    in memory (it has no such limit), and the optimised one only when that plain file is
    safely inside the guess (optimising never makes the scan larger) and the memory plan left
    room for it (``optimize``).
    """
    plain = io.BytesIO()
    image.save(plain, format="JPEG", **params)
    width, height = image.size
    if not optimize or plain.tell() + _JPEG_TABLES_MARGIN > max(width * height, ImageFile.MAXBLOCK):
        return plain.getvalue()
    optimised = io.BytesIO()
    image.save(optimised, format="JPEG", optimize=True, **params)
    return optimised.getvalue()


def _icc_fits(icc: bytes | None, grayscale: bool) -> bool:
    """Whether a profile describes the pixels being written (gray profile for gray, RGB for RGB).

    A mismatched profile (a gray source written to WebP as colour, say) is worse than none:
    colour-managed viewers may refuse it or render wrong colours. Bytes 16-19 of an ICC header
    name its colour space.
    """
    if not icc or len(icc) < 128:
        return False
    return icc[16:20] == (b"GRAY" if grayscale else b"RGB ")


def _output_planes(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> np.ndarray:
    """Stack the channels to store: H x W x (1 gray | 2 gray+alpha | 3 RGB | 4 RGBA)."""
    colour = _gray_of(rgb)[..., None] if grayscale else rgb
    if alpha is None:
        return np.ascontiguousarray(colour)
    return np.ascontiguousarray(np.concatenate((colour, alpha[..., None]), axis=2))


def _gray_of(rgb: np.ndarray) -> np.ndarray:
    # The network returns near-gray, not exactly gray, pixels for a gray input; the rounded mean
    # of the three channels is the least biased way back to one channel.
    total = rgb.astype(np.uint32).sum(axis=2)
    return ((total + 1) // 3).astype(rgb.dtype)


def _to_8bit(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    # 257 = 65535 / 255 maps 0 -> 0 and 65535 -> 255 exactly; +128 rounds to nearest.
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _atomic_write(
    path: Path,
    write: Callable[[BinaryIO], None],
    pillow_format: str,
    *,
    overwrite: bool,
    numbered: bool,
) -> Path:
    """Write through a temporary file in the target's folder, then publish it; return the name.

    The temporary file must live in the same folder (same file system) for the final step to
    be atomic; :mod:`fmen_gui.atomicfiles` names it (hidden, ``.part``, this app's and its
    process id, so a later run can sweep it if this one is killed) and does the final step,
    which refuses to replace a file unless ``overwrite``.
    """
    if path.is_dir():
        raise ImageError("output path is a directory")
    folder = path.parent
    try:
        fd, temp = atomicfiles.create_temp(path)
    except OSError as exc:
        raise ImageError(_write_error_message(exc)) from exc
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            _copy_permissions(temp, path)
            final = _publish(temp, path, overwrite=overwrite, numbered=numbered)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(_write_error_message(exc)) from exc
    except MemoryError:
        raise ImageError("not enough memory to encode the image") from None
    except Exception as exc:
        raise ImageError(f"cannot encode the image as {pillow_format}: {_one_line(exc)}") from exc
    # KeyboardInterrupt and SystemExit propagate unchanged (after the cleanup above): turning
    # them into ImageError would make a batch carry on with the next file after Ctrl-C.
    _fsync_folder(folder)
    return final


def _publish(temp: Path, path: Path, *, overwrite: bool, numbered: bool) -> Path:
    if overwrite:
        atomicfiles.publish(temp, path, overwrite=True)
        return path
    for candidate in atomicfiles.numbered_names(path) if numbered else (path,):
        try:
            atomicfiles.publish(temp, candidate, overwrite=False)
        except FileExistsError:
            continue
        return candidate
    raise OutputExistsError(
        f"output already exists: {path} (it appeared while this job ran and was kept; "
        "use --overwrite to replace it)"
        if not numbered
        else f"no free name for the output beside {path}"
    )


def _copy_permissions(temp: Path, target: Path) -> None:
    """Give the new file the permissions a normal save would have had.

    mkstemp creates files readable only by their owner; without this, every upscaled image
    would silently become private. An existing target keeps its mode.
    """
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_current_umask()
    with contextlib.suppress(OSError):  # some file systems (FAT, SMB) do not do permissions
        os.chmod(temp, mode)


def _current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; best effort, as Windows cannot open folders.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error_message(exc: OSError) -> str:
    messages = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied (the output folder is read-only or not writable)",
        errno.EPERM: "permission denied (the output folder is read-only or not writable)",
        errno.EROFS: "the output folder is on a read-only file system",
        errno.ENOENT: "output folder does not exist",
        errno.ENOTDIR: "output folder is not a folder",
        errno.EISDIR: "output path is a directory",
        errno.EFBIG: "file too large for the file system",
        errno.ENAMETOOLONG: "file name too long",
        errno.EIO: "input/output error while writing",
    }
    if exc.errno in messages:
        return messages[exc.errno]
    return f"cannot write file ({exc.strerror or _one_line(exc)})"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
