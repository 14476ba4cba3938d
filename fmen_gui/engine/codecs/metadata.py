"""EXIF and ICC handling that no codec library does the way this app needs.

Why hand-written: Pillow, imagecodecs and tifffile all hand over EXIF as an opaque blob (or
re-serialise it through their own tag model, which loses maker notes and odd tags), and none
applies an orientation to 16-bit pixels. What the app needs is small and exact:

* the EXIF Orientation read and reset to 1 *in place*, so every other byte of the blob
  (maker notes included) reaches the output unchanged and viewers do not rotate twice;
* the orientation applied to pixels of any depth, identically for the 8- and 16-bit paths;
* an ICC profile written only when its colour space matches the pixels being written.
"""

from __future__ import annotations

import struct

import numpy as np

EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = 0x0112


def normalise_exif(raw: bytes) -> tuple[bytes | None, int]:
    """Return (EXIF with the ``Exif\\0\\0`` header and Orientation set to 1, original orientation).

    The Orientation value is patched in place instead of re-serialising through Pillow so every
    other tag (maker notes included) survives byte for byte. EXIF that cannot be parsed is
    dropped: copying garbage into the output helps nobody and can upset other programs.
    """
    tiff = raw[len(EXIF_HEADER) :] if raw.startswith(EXIF_HEADER) else raw
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
    return EXIF_HEADER + bytes(data), orientation


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
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


def icc_fits(icc: bytes | None, grayscale: bool) -> bool:
    """Whether a profile describes the pixels being written (gray profile for gray, RGB for RGB).

    A mismatched profile (a gray source written to WebP as colour, say) is worse than none:
    colour-managed viewers may refuse it or render wrong colours. Bytes 16-19 of an ICC header
    name its colour space.
    """
    if not icc or len(icc) < 128:
        return False
    return icc[16:20] == (b"GRAY" if grayscale else b"RGB ")
