"""Tile grids over a low-resolution image.

Tiles are cut on a fixed grid aligned at the origin, so that halving the tile size after an
out-of-memory error splits every finished tile into whole new tiles and the work already done
can be kept.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """Half-open box in low-resolution pixels: rows y0..y1, columns x0..x1."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def area(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)

    def within(self, other: Tile) -> bool:
        return other.y0 <= self.y0 and self.y1 <= other.y1 and other.x0 <= self.x0 and self.x1 <= other.x1

    def padded(self, margin: int, height: int, width: int) -> Tile:
        """The input box a tile needs: itself plus ``margin`` of context, clipped to the image."""
        return Tile(
            max(0, self.y0 - margin),
            min(height, self.y1 + margin),
            max(0, self.x0 - margin),
            min(width, self.x1 + margin),
        )

    def box(self, margin: int, tile: int, height: int, width: int) -> Tile:
        """The input box for this tile of a ``tile``-sized grid: one size, even corners.

        Boxes are ``tile + 2·margin`` (or the image) wide and high; boxes at the image's
        edges are slid inwards instead of clipped. More context than ``margin`` changes no
        output pixel, and one box size means the convolution library builds its kernels, and
        keeps their buffers, for one shape per job instead of up to nine. Every box starts at
        even coordinates, so the 2×2 blocks of the Winograd convolutions
        (:mod:`fmen_gui.engine.backends.winograd`) fall on the same pixels in a tile as in the whole image.
        """
        if tile <= 0:
            return _even_start(self.padded(margin, height, width))
        return _even_start(
            Tile(
                *_slide(self.y0 - margin, self.y1 + margin, tile + 2 * margin, height),
                *_slide(self.x0 - margin, self.x1 + margin, tile + 2 * margin, width),
            )
        )


def _slide(lo: int, hi: int, size: int, limit: int) -> tuple[int, int]:
    """``[lo, hi)`` grown to ``size`` (at most ``limit``) and moved inside ``[0, limit)``."""
    size = min(max(size, hi - lo), limit)
    lo = min(max(lo, 0), limit - size)
    return lo, lo + size


def _even_start(box: Tile) -> Tile:
    """``box`` grown by one pixel up or left where it starts at an odd coordinate."""
    return Tile(box.y0 - box.y0 % 2, box.y1, box.x0 - box.x0 % 2, box.x1)


def plan_tiles(height: int, width: int, tile: int) -> list[Tile]:
    """Row-major grid of ``tile``-sized boxes; ``tile <= 0`` means the whole image at once."""
    if height <= 0 or width <= 0:
        raise ValueError("empty image")
    if tile <= 0 or (tile >= height and tile >= width):
        return [Tile(0, height, 0, width)]
    return [
        Tile(y, min(y + tile, height), x, min(x + tile, width))
        for y in range(0, height, tile)
        for x in range(0, width, tile)
    ]
