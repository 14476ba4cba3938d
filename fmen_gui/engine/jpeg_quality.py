"""What a JPEG's quality setting was, read from its quantisation tables.

Encoders that follow the IJG reference (libjpeg, Pillow, most cameras and web tools) scale the
standard tables of the JPEG specification (Annex K) by the quality: ``scale = 5000 / q`` below
50, ``200 − 2q`` from 50 up, each entry ``(base · scale + 50) // 100`` clamped to 1…255. The
quality whose scaled luminance table is closest to the file's is the estimate. Files whose
tables are not scaled standard ones (some cameras, Photoshop) still get the closest quality,
which is what the choice of model needs: how coarse the quantisation is.

Pure Python on Pillow's ``quantization`` attribute: no decoding of pixels, so it is cheap
enough to run for every dropped file.
"""

from __future__ import annotations

from pathlib import Path

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
