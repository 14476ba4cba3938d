"""Interlaced (Adam7) 16-bit PNG, decoded here because libpng through imagecodecs prints on stderr.

imagecodecs' ``png_decode`` (and ``apng_decode``; imagecodecs 2026.3.6, libpng 1.6.55) reads
interlaced files correctly but never turns libpng's interlace handling on, so libpng prints
``PNG warning: Interlace handling should be turned on when using png_read_image`` on stderr
for every such file, from C, where Python cannot catch it. The command line promises one line
per problem, and redirecting the process's stderr around the call would race with every
other thread. libspng (``spng_decode``) refuses 16-bit output altogether. Pillow reads 16-bit
colour as 8-bit. So the one case is decoded here: a zlib stream of known size, PNG's five row
filters undone, seven passes put in place. Interlaced 16-bit files are rare (nothing in this
app writes them), so speed matters less than being right.
"""

from __future__ import annotations

import zlib

import numpy as np

from fmen_gui.engine.codecs.decoded import corrupt

# Adam7 passes: (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def decode(width: int, height: int, channels: int, idat: list[memoryview]) -> np.ndarray:
    """The H x W x C uint16 pixels of an interlaced 16-bit PNG from its IDAT chunks' bodies."""
    bpp = 2 * channels
    passes = _passes(width, height)
    raw = _inflate(idat, sum(h * (w * bpp + 1) for *_, w, h in passes))
    # Each pass is a small image of its own, filtered on its own (PNG spec, 8.2).
    pixels = np.empty((height, width, channels), dtype=np.uint16)
    offset = 0
    for x0, y0, dx, dy, pass_width, pass_height in passes:
        size = pass_height * (pass_width * bpp + 1)
        rows = np.frombuffer(raw, dtype=np.uint8, count=size, offset=offset)
        offset += size
        part = _unfilter_pass(rows.reshape(pass_height, -1), pass_width, bpp)
        pixels[y0::dy, x0::dx] = part.view(">u2").reshape(pass_height, pass_width, channels)
    return pixels


def colour_key_alpha(pixels: np.ndarray, trns: bytes) -> np.ndarray:
    """Append the alpha a tRNS colour key means: 0 where a pixel equals the key, else opaque."""
    key = np.frombuffer(trns, dtype=">u2").astype(np.uint16)
    opaque = np.any(pixels != key, axis=2)
    alpha = np.where(opaque, np.uint16(65535), np.uint16(0)).astype(np.uint16)
    return np.concatenate((pixels, alpha[..., None]), axis=2)


def _passes(width: int, height: int) -> list[tuple[int, int, int, int, int, int]]:
    """(x0, y0, dx, dy, pass width, pass height) of each non-empty pass."""
    passes = []
    for x0, y0, dx, dy in _ADAM7:
        pass_width, pass_height = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pass_width > 0 and pass_height > 0:
            passes.append((x0, y0, dx, dy, pass_width, pass_height))
    return passes


def _inflate(pieces: list[memoryview], expected: int) -> bytes:
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
        raise corrupt() from None
    if remaining != 0:
        raise corrupt()
    return b"".join(out)


def _unfilter_pass(rows: np.ndarray, width: int, bpp: int) -> np.ndarray:
    """Filtered rows (each with its filter byte) of one Adam7 pass -> H x W x bpp bytes."""
    height = rows.shape[0]
    filters = rows[:, 0].copy()
    if filters.max() > 4:
        raise corrupt()
    # One zero row above and one zero column to the left stand in for "outside the image".
    buf = np.zeros((height + 1, width + 1, bpp), dtype=np.uint8)
    buf[1:, 1:] = rows[:, 1:].reshape(height, width, bpp)
    _unfilter(buf, filters)
    return np.ascontiguousarray(buf[1:, 1:])


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
