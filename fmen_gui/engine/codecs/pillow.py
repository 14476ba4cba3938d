"""Pillow for every 8-bit format: the decoders it may use, its errors in our words, its encoders.

Pillow does most of the work in this app; this module is the fence around it. It restricts
the decoders to the supported formats, turns Pillow's zoo of exception types on malformed
input (``OSError``, ``SyntaxError``, ``ValueError``, ``struct.error``...) into one-line
:class:`~fmen_gui.errors.ImageError`, converts its many modes to the 1-4 channel layout the
engine uses, and makes its encoders fail with the real errno on a full disk.

Importing it configures Pillow for the whole process (see the two settings below).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError, features

from fmen_gui.engine.codecs.decoded import Decoded, corrupt
from fmen_gui.engine.codecs.metadata import normalise_exif
from fmen_gui.engine.codecs.output import PythonWrites
from fmen_gui.errors import ImageError

# Decoders Pillow may try. Restricting them keeps exotic plugins (EPS runs Ghostscript, for one)
# away from files that merely carry an image extension. (Multi-picture camera JPEGs still open:
# the JPEG decoder itself turns them into Pillow's MPO images.)
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
_JPEG_MAX_EXIF = 65_533  # an APP1 segment holds at most 65535 bytes including its length field
_JPEG_TABLES_MARGIN = 4096  # room for optimised Huffman tables in a JPEG's headers

# Pillow's own decompression-bomb guard (a warning above ~89 MP, an error above ~179 MP) would
# reject images below the engine's documented limit and raise its own exception type. The limit
# that matters is the caller's ``max_pixels``, checked in read_image before any pixel is decoded,
# and every image the application opens goes through read_image, so Pillow's guard is switched
# off rather than fought per call (toggling it per call would race between threads).
Image.MAX_IMAGE_PIXELS = None
# Pillow warns (on stderr) about things this package already handles or reports in its own
# words: damaged EXIF ("Truncated File Read", "Corrupt EXIF data"), palette transparency given
# as bytes, and the like. A batch's output must be one line per problem, so Pillow's own
# warnings are silenced; anything that matters surfaces as an ImageError.
warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


@contextmanager
def _image_errors(doing: str) -> Iterator[None]:
    r"""Pillow's failures as one-line :class:`ImageError`\ s (``doing``: "read", "decode")."""
    try:
        yield
    except ImageError:
        raise
    except Image.DecompressionBombError:
        # Only reachable if someone re-enabled Pillow's guard (see MAX_IMAGE_PIXELS above).
        raise ImageError("image is too large to open safely") from None
    except MemoryError:
        raise ImageError(f"not enough memory to {doing} the image") from None
    except Exception as exc:
        # Truncated or corrupt data; LOAD_TRUNCATED_IMAGES stays False so Pillow does raise.
        raise corrupt() from exc


def open_image(fh: BinaryIO) -> Image.Image | None:
    """Identify the format and read the header only (Pillow defers decoding pixels to load()).

    Returns None when no allowed Pillow decoder recognises the file.
    """
    with _image_errors("read"):
        try:
            return Image.open(fh, formats=INPUT_FORMATS)
        except UnidentifiedImageError:
            return None


def decode(im: Image.Image) -> Decoded:
    """Decode an opened image into 1-4 channels of uint8 or uint16 plus its metadata."""
    with _image_errors("decode"):
        im.load()
        exif, orientation = _exif_and_orientation(im)
        return _pixels(im, exif, orientation)


def _exif_and_orientation(im: Image.Image) -> tuple[bytes | None, int]:
    raw = im.info.get("exif")
    if isinstance(raw, bytes) and raw:
        return normalise_exif(raw)
    if im.format == "TIFF":
        # A TIFF's orientation is an ordinary tag; its other tags describe the TIFF container
        # itself and must not be copied into the output as EXIF.
        value = getattr(im, "tag_v2", {}).get(274, 1)
        return None, value if isinstance(value, int) and 1 <= value <= 8 else 1
    return None, 1


def _pixels(im: Image.Image, exif: bytes | None, orientation: int) -> Decoded:
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
    return Decoded(pixels=pixels, icc_profile=icc, exif=exif, orientation=orientation)


def encode(
    fh: BinaryIO,
    planes: np.ndarray,
    pillow_format: str,
    *,
    quality: int,
    icc_profile: bytes | None,
    exif: bytes | None,
    optimize: bool,
) -> None:
    """Write H x W x C uint8 ``planes`` (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as ``pillow_format``.

    ``exif`` is written where the format has a place for it (JPEG only when it fits the 64 KB
    APP1 segment; TIFF never, as its own tags are not EXIF).
    """
    # Pillow infers the mode from the shape: H x W -> L, x2 -> LA, x3 -> RGB, x4 -> RGBA.
    image = Image.fromarray(planes[..., 0] if planes.shape[2] == 1 else planes)
    params: dict[str, object] = {}
    if icc_profile:
        params["icc_profile"] = icc_profile
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
    image.save(PythonWrites(fh), format=pillow_format, **params)


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
