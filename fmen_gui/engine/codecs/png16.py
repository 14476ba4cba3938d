"""16-bit PNG through imagecodecs' libpng: Pillow reads 16-bit RGB(A) PNG as 8-bit and cannot write it.

Decoding: the chunks are walked here first (signature, critical CRCs, header sanity, eXIf),
then libpng decodes a minimal copy of the file (IHDR, a valid tRNS, the image data, IEND).
The copy is what keeps libpng quiet: imagecodecs prints every libpng warning straight to
stderr ("iCCP: known incorrect sRGB profile", CRC errors in ancillary chunks...), which would
break the command line's one line per problem. Metadata is not lost by that: the ICC profile
comes from Pillow's header parse and EXIF from the walk below. Interlaced files go to
:mod:`.png_adam7` (see there why).

Encoding: libpng writes IHDR and the image data; the iCCP and eXIf chunks that imagecodecs
cannot write are put in after IHDR here. Both are in the PNG spec's allowed place (before IDAT).
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np
from PIL import Image

from fmen_gui.engine.codecs import png_adam7
from fmen_gui.engine.codecs.decoded import Decoded, corrupt
from fmen_gui.engine.codecs.metadata import EXIF_HEADER, normalise_exif
from fmen_gui.errors import ImageError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
_COLOUR_TYPES = {channels: colour_type for colour_type, channels in _CHANNELS.items()}
_IHDR_END = 33  # signature (8) + IHDR chunk (4 + 4 + 13 + 4): libpng always writes IHDR first
_LEVEL = 6  # zlib level, as for Pillow's 8-bit PNGs
# The encoded file goes to disk in pieces of this size (views, no copies), like a streaming
# encoder's output, so a disk that fills up is met at the first piece it refuses.
_WRITE_BLOCK = 256 << 10


def read(fh: BinaryIO, im: Image.Image) -> Decoded | None:
    """Decode a 16-bit PNG (plain or Adam7-interlaced) losslessly, or return None for Pillow."""
    position = fh.tell()
    try:
        fh.seek(0)
        head = fh.read(_IHDR_END)
        if len(head) < _IHDR_END or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
            return None
        depth, colour_type, interlace = head[24], head[25], head[28]
        if depth != 16 or interlace not in (0, 1) or colour_type not in _CHANNELS:
            return None
        fh.seek(0)
        blob = fh.read()
    finally:
        fh.seek(position)
    try:
        pixels, exif_raw = decode(blob)
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    exif, orientation = normalise_exif(exif_raw) if exif_raw else (None, 1)
    return Decoded(pixels=pixels, icc_profile=im.info.get("icc_profile"), exif=exif, orientation=orientation)


def decode(blob: bytes) -> tuple[np.ndarray, bytes | None]:
    """Decode a 16-bit PNG into H x W x C uint16 (tRNS becomes an alpha channel) and its eXIf."""
    view = memoryview(blob)
    if bytes(view[:8]) != SIGNATURE:
        raise corrupt()
    header: tuple[int, ...] | None = None
    idat: list[memoryview] = []
    trns: bytes | None = None
    exif: bytes | None = None
    pos = 8
    while pos + 8 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, pos)
        end = pos + 8 + length
        if end + 4 > len(view):
            raise corrupt()
        body = view[pos + 8 : end]
        (crc,) = struct.unpack_from(">I", view, end)
        crc_ok = zlib.crc32(body, zlib.crc32(kind)) == crc
        critical = not kind[0] & 0x20
        if critical and not crc_ok:
            raise corrupt()
        if kind == b"IHDR":
            if length != 13:
                raise corrupt()
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
        raise corrupt()
    width, height, depth, colour_type, compression, filter_method, interlace = header
    if (
        width == 0
        or height == 0
        or depth != 16
        or colour_type not in _CHANNELS
        or compression != 0
        or filter_method != 0
        or interlace not in (0, 1)
    ):
        raise corrupt()
    channels = _CHANNELS[colour_type]
    if trns is not None and len(trns) != {0: 2, 2: 6}.get(colour_type):
        trns = None  # only gray and RGB have a colour key; a wrong one is ignored, as by Pillow
    if interlace == 1:
        pixels = png_adam7.decode(width, height, channels, idat)
    else:
        pixels = _decode_plain(header, idat, trns)
        if pixels.shape != (height, width, channels + (trns is not None)):
            raise corrupt()
        if trns is not None:
            return pixels, exif  # libpng turned the colour key into alpha
    if trns is not None:
        pixels = png_adam7.colour_key_alpha(pixels, trns)
    return pixels, exif


def _decode_plain(header: tuple[int, ...], idat: list[memoryview], trns: bytes | None) -> np.ndarray:
    """libpng's decode of a minimal copy of the file (see the module docstring), as H x W x C."""
    import imagecodecs  # on first use: the GUI thread imports the engine at start-up

    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", *header))]
    if trns is not None:
        parts.append(_chunk(b"tRNS", trns))
    parts += [_chunk(b"IDAT", b"".join(idat)), _chunk(b"IEND", b"")]
    try:
        pixels = imagecodecs.png_decode(b"".join(parts))
    except MemoryError:
        raise
    except Exception as exc:  # imagecodecs.PngError, or worse on some damaged streams
        raise corrupt() from exc
    if pixels.dtype != np.uint16:
        raise corrupt()
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def encode(
    fh: BinaryIO,
    pixels: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    filter_type: int | None = None,
) -> None:
    """Write H x W x C uint16 pixels (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG.

    ``filter_type`` (0-4: None, Sub, Up, Average, Paeth) pins libpng to one row filter; by
    default it picks one per row, the usual heuristic. The tests use it to exercise every
    filter on the way back in.
    """
    import imagecodecs  # on first use: the GUI thread imports the engine at start-up

    if pixels.ndim != 3 or pixels.shape[2] not in _COLOUR_TYPES or pixels.dtype != np.uint16:
        raise ValueError("png16.encode takes H x W x 1-4 uint16 pixels")
    options: dict[str, int] = {"level": _LEVEL}
    if filter_type is not None:
        flags = imagecodecs.PNG.FILTER
        options["filter"] = int((flags.NONE, flags.SUB, flags.UP, flags.AVG, flags.PAETH)[filter_type])
    data = memoryview(imagecodecs.png_encode(pixels[..., 0] if pixels.shape[2] == 1 else pixels, **options))
    if bytes(data[:8]) != SIGNATURE or bytes(data[12:16]) != b"IHDR":
        raise ValueError("libpng did not start the file with IHDR")
    fh.write(data[:_IHDR_END])
    if icc_profile:
        fh.write(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        fh.write(_chunk(b"eXIf", exif[len(EXIF_HEADER) :] if exif.startswith(EXIF_HEADER) else exif))
    for start in range(_IHDR_END, len(data), _WRITE_BLOCK):
        fh.write(data[start : start + _WRITE_BLOCK])
