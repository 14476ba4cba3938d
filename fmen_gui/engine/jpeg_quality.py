"""What a JPEG's quality setting was, read from its quantisation tables.

Encoders that follow the IJG reference (libjpeg, Pillow, most cameras and web tools) scale the
standard tables of the JPEG specification (Annex K) by the quality: ``scale = 5000 / q`` below
50, ``200 − 2q`` from 50 up, each entry ``(base · scale + 50) // 100`` clamped to 1…255. The
quality whose scaled luminance table is closest to the file's is the estimate. Files whose
tables are not scaled standard ones (some cameras, Photoshop) still get the closest quality,
which is what the choice of model needs: how coarse the quantisation is.

Pure Python on Pillow's ``quantization`` attribute: no decoding of pixels, so it is cheap
enough to run for every dropped file.

A picture that was a JPEG once and was then saved losslessly (a PNG from a screenshot tool, a
web page, a converter) has no tables, but its pixels still carry them: :func:`traced_quality`
finds the quality from the pixels themselves (see there). :func:`input_quality` asks the header
first and the pixels after, and says which answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# JPEG Annex K.1, luminance, in natural (row-major) order.
STD_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip

# At or below this estimated quality an input counts as "compressed" for the Auto model choice.
PHOTO_MAX_QUALITY = 90

# JPEG's zigzag order: the first 16 coefficients (DC and the lowest AC frequencies) as natural
# (row-major) indices; they are the ones most blocks have enough of to judge.
_ZIGZAG_16 = (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5)
# Qualities the pixels are tested for. Above 95 nearly every step is 1 or 2, which leaves no
# trace to find (and needs none: such a file is as good as clean).
_TRACE_QUALITIES = range(10, 96)
TRACE_MIN_STEP = 3  # steps of 1 or 2 are too fine to tell from chance (see traced_quality)
TRACE_WINDOW = 0.75  # how near a multiple of the step a decoded coefficient lands (noise ≈ 0.35)
TRACE_MIN_EXCESS = 0.3  # the verdict: median excess over chance (never-compressed ≤ 0.1, JPEGs ≈ 0.85)
TRACE_MIN_BLOCKS = 128  # distinct textured blocks needed for a verdict (a smaller image gets none)
TRACE_MIN_SAMPLES = 64  # coefficients needed to judge one frequency
TRACE_MIN_FREQUENCIES = 4  # frequencies that must be judged for a quality to count
TRACE_SIDE_BLOCKS = 128  # at most this many blocks a side are read, evenly spread: ≤ 16,384 in all
_FLAT = 8.0  # a block whose AC coefficients sum below this (in 0–255 units) is flat: no evidence


def ijg_table(quality: int, base: tuple[int, ...] = STD_LUMINANCE) -> list[int]:
    q = min(100, max(1, quality))
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return [min(255, max(1, (b * scale + 50) // 100)) for b in base]


def estimate_quality(tables: dict[int, list[int]] | None) -> int | None:
    """The IJG quality (1–100) closest to the luminance table; None without tables."""
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    # Pillow gives the tables in natural order (as libjpeg does after de-zigzagging).
    lum = list(tables[0])
    best = min(
        range(1, 101), key=lambda q: (sum(abs(a - b) for a, b in zip(ijg_table(q), lum, strict=True)), -q)
    )
    return best


@dataclass(frozen=True)
class JpegQuality:
    """An input's JPEG quality, and where it was read: the file's tables or, for a file that is
    no longer a JPEG, its pixels."""

    value: int
    from_pixels: bool = False


def jpeg_quality(path: Path) -> int | None:
    """The estimated quality of a JPEG file; None for anything that is not a readable JPEG."""
    from PIL import Image  # here: the CLI's parser imports this module and must start fast

    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                return None
            return estimate_quality(getattr(im, "quantization", None))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


@cache
def _dct_matrix() -> np.ndarray:
    """The orthonormal 8-point DCT-II, JPEG's transform (its coefficients are these)."""
    import numpy as np

    k = np.arange(8)
    m = np.sqrt(2 / 8) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


def traced_quality(rgb: np.ndarray) -> int | None:
    """The IJG quality of the JPEG an 8-bit image was decoded from, if it was one; else None.

    See :func:`jpeg_trace`; the verdict is its median excess reaching :data:`TRACE_MIN_EXCESS`.
    """
    trace = jpeg_trace(rgb)
    return trace[0] if trace is not None and trace[1] >= TRACE_MIN_EXCESS else None


def jpeg_trace(rgb: np.ndarray) -> tuple[int, float] | None:
    """The IJG quality whose quantisation the pixels fit best, and how well (median excess over
    chance, below); None where there is too little to judge (small, flat, 16-bit).

    A JPEG stores each 8×8 block of luma as DCT coefficients rounded to multiples of its
    quantisation steps. Decoding and saving losslessly keeps that: the DCT of the same blocks
    of the decoded pixels lands within rounding noise (about 0.35) of those multiples. So for
    each quality's luminance table and each of the 16 lowest frequencies whose step ``t`` is at
    least :data:`TRACE_MIN_STEP`, the share ``f`` of coefficients within :data:`TRACE_WINDOW`
    of a multiple of ``t`` is measured against chance (``u = 1.5 / t``, what coefficients
    spread evenly over the step give) as the excess ``(f − u) / (1 − u)``: about 0.9 for a
    decoded JPEG of that quality, about 0 for an image never quantised. The quality with the
    largest median excess is the answer. (Coefficients below half a step are left out: they sit
    near zero whatever the image.)

    Flat blocks and repeats of the same block (graphics, gradients) are dropped before, since
    their few exact values can sit on a step's multiples by chance. A picture resized,
    rotated or cropped off the 8-pixel grid after its JPEG life has lost the trace (its excess
    is that of a clean one). ``benchmarks/jpeg_trace.py`` measures the excess on pictures never
    compressed and on the same pictures saved as JPEG (README, "Photos").

    Hand-written: Pillow and imagecodecs read quality only from a file's tables; estimating it
    from decoded pixels is image-forensics research code, not a maintained library.
    """
    import numpy as np

    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3):
        return None
    bh, bw = rgb.shape[0] // 8, rgb.shape[1] // 8
    if bh == 0 or bw == 0:
        return None
    # The sampled blocks, picked on the 8-bit array: a float copy of a whole 100-MP picture
    # would take gigabytes.
    sy, sx = -(-bh // TRACE_SIDE_BLOCKS), -(-bw // TRACE_SIDE_BLOCKS)
    planes = rgb[: bh * 8, : bw * 8].reshape(bh, 8, bw, 8, -1)[::sy, :, ::sx].astype(np.float32)
    y = (
        planes[..., 0]
        if planes.shape[-1] == 1
        else planes[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    )
    m = _dct_matrix()
    coef = (m @ (y.transpose(0, 2, 1, 3).reshape(-1, 8, 8) - 128.0) @ m.T).reshape(-1, 64)
    coef = coef[np.abs(coef[:, 1:]).sum(axis=1) > _FLAT]
    _, first = np.unique(np.round(coef[:, 1:], 1), axis=0, return_index=True)
    coef = coef[np.sort(first)]
    if len(coef) < TRACE_MIN_BLOCKS:
        return None

    excess: dict[tuple[int, int], float | None] = {}

    def excess_at(pos: int, step: int) -> float | None:
        if (pos, step) not in excess:
            c = coef[:, pos]
            c = c[np.abs(c) >= step / 2]
            if len(c) < TRACE_MIN_SAMPLES:
                excess[pos, step] = None
            else:
                near = float((np.abs(c - step * np.round(c / step)) < TRACE_WINDOW).mean())
                chance = 2 * TRACE_WINDOW / step
                excess[pos, step] = (near - chance) / (1 - chance)
        return excess[pos, step]

    best: tuple[int, float] | None = None
    for quality in _TRACE_QUALITIES:
        table = ijg_table(quality)
        found = [
            e
            for pos in _ZIGZAG_16
            if table[pos] >= TRACE_MIN_STEP and (e := excess_at(pos, table[pos])) is not None
        ]
        if len(found) >= TRACE_MIN_FREQUENCIES:
            median = float(np.median(found))
            if best is None or median >= best[1]:  # ties: the higher (neighbours may share every step read)
                best = (quality, median)
    return best


def input_quality(path: Path, rgb: np.ndarray | None = None, *, decode: bool = True) -> JpegQuality | None:
    """The JPEG quality of an input: from its tables, else from its pixels (``rgb`` if given,
    else decoded here when ``decode``); None for a picture that never was a JPEG, or that
    kept no trace of it, or that cannot be read (its job says why)."""
    quality = jpeg_quality(path)
    if quality is not None:
        return JpegQuality(quality)
    if rgb is None and decode:
        from fmen_gui.engine.images import read_image
        from fmen_gui.errors import FmenError

        try:
            rgb = read_image(path).rgb
        except (FmenError, OSError, MemoryError):
            return None
    traced = None if rgb is None else traced_quality(rgb)
    return None if traced is None else JpegQuality(traced, from_pixels=True)
