"""16-bit results look the same while tiles arrive and once finished (one 16 → 8 rule)."""

from __future__ import annotations

import numpy as np

from fmen_gui.engine import images
from fmen_gui.gui.imaging import array_to_qimage, reduced_preview


def _pixels(qimage) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The QImage's RGB values, read pixel by pixel (no assumption about its row padding)."""
    return np.array(
        [
            [qimage.pixelColor(x, y).getRgb()[:3] for x in range(qimage.width())]
            for y in range(qimage.height())
        ],
        np.uint8,
    )


def test_progressive_tiles_and_the_final_preview_round_alike() -> None:
    rgb = np.random.default_rng(4).integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    rgb[0, 0] = (128, 129, 386)  # values a shift by 8 bits would truncate
    tile = _pixels(array_to_qimage(rgb))  # what each progressive tile shows
    final = reduced_preview(rgb, None, 1)  # the finished result's display copy
    assert np.array_equal(tile, final)
    assert np.array_equal(tile, images.to_8bit(rgb))  # and what an 8-bit file of it holds
    assert tile[0, 0].tolist() == [0, 1, 2]
