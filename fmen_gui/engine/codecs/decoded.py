"""What every decoder hands back, and the checks every decoder makes before decoding.

Kept apart so the codecs (Pillow, PNG, TIFF) share one record and one wording of the
user-facing errors instead of each spelling "truncated or corrupt" its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmen_gui.errors import ImageError


@dataclass
class Decoded:
    """Pixels as stored in the file (gray or colour, 1-4 channels) before orientation is applied."""

    pixels: np.ndarray  # H x W x C, uint8 or uint16, C in 1..4 (gray, gray+alpha, RGB, RGBA)
    icc_profile: bytes | None
    exif: bytes | None
    orientation: int
    notes: tuple[str, ...] = ()


def corrupt() -> ImageError:
    """The one message for damaged image data, whichever decoder noticed."""
    return ImageError("image data is truncated or corrupt")


def check_pixel_limit(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse a (width, height) read from a header before any pixel is decoded."""
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
