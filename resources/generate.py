"""Regenerate the derived files in ``resources/`` from their sources.

    QT_QPA_PLATFORM=offscreen .venv/bin/python resources/generate.py

* ``icons/fmen-upscaler-<N>.png`` for N in 16…512, ``fmen-upscaler.ico`` (Windows) and
  ``fmen-upscaler.icns`` (macOS), all rendered from the master drawing ``fmen-upscaler.svg``
  with Qt's SVG renderer (the one the window icon uses, so every copy looks the same);
* ``sample.png``: the small picture the ``--self-test`` option upscales, drawn here from
  shapes (a landscape with a house, a fence and a striped flag: edges at many angles, flat
  areas and gradients), so no third-party image is shipped.

The outputs are committed; run this only after changing the SVG or the drawing below. It is
not part of the app (the bundle leaves ``*.py`` out of its copy of ``resources/``).
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SVG = HERE / "fmen-upscaler.svg"
ICON_DIR = HERE / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
SAMPLE_SIZE = (96, 64)


def render_svg(svg: bytes, size: int) -> Image.Image:
    """Render ``svg`` to a ``size``×``size`` RGBA image with QSvgRenderer."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot parse {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGBA")


def write_icons() -> None:
    svg = SVG.read_bytes()
    ICON_DIR.mkdir(exist_ok=True)
    images = {size: render_svg(svg, size) for size in PNG_SIZES}
    for size, image in images.items():
        image.save(ICON_DIR / f"fmen-upscaler-{size}.png", optimize=True)
    # Pillow builds the .ico from the largest image, resizing it for each size unless it is
    # handed the exact-size renders (append_images), which stay crisp at 16 and 24 px.
    biggest = images[max(ICO_SIZES)]
    biggest.save(
        HERE / "fmen-upscaler.ico",
        format="ICO",
        sizes=[(s, s) for s in ICO_SIZES],
        append_images=[images[s] for s in ICO_SIZES if s != max(ICO_SIZES)],
    )
    images[512].save(
        HERE / "fmen-upscaler.icns",
        format="ICNS",
        append_images=[images[s] for s in (16, 32, 64, 128, 256)],
    )


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: np.ndarray) -> np.ndarray:
    return np.stack([a[i] + (b[i] - a[i]) * t for i in range(3)], axis=-1)


def draw_sample() -> Image.Image:
    """A deterministic 96×64 landscape with detail at several scales."""
    w, h = SAMPLE_SIZE
    y = np.linspace(0.0, 1.0, h)[:, None] * np.ones((1, w))
    sky = _lerp((70, 130, 200), (200, 225, 245), y)
    image = Image.fromarray(sky.round().astype(np.uint8), "RGB")
    d = ImageDraw.Draw(image)
    d.ellipse((66, 6, 80, 20), fill=(255, 214, 90), outline=(245, 170, 40))
    # Far and near hills.
    far = [(0, 40)] + [(x, 34 - 7 * math.sin(x / 11.0) - 3 * math.sin(x / 4.3)) for x in range(0, w + 1, 3)]
    d.polygon([*far, (w, h), (0, h)], fill=(96, 128, 150))
    near = [(x, 46 - 4 * math.sin(x / 9.0 + 1.3)) for x in range(0, w + 1, 2)]
    d.polygon([*near, (w, h), (0, h)], fill=(70, 140, 60))
    # A house: wall, roof, door and a four-pane window.
    d.rectangle((14, 36, 38, 54), fill=(235, 222, 200), outline=(90, 60, 40))
    d.polygon([(11, 37), (26, 25), (41, 37)], fill=(170, 55, 45), outline=(100, 30, 25))
    d.rectangle((18, 44, 24, 54), fill=(110, 70, 40))
    d.rectangle((28, 40, 35, 47), fill=(120, 180, 230), outline=(60, 50, 40))
    d.line((31, 40, 31, 47), fill=(60, 50, 40))
    d.line((28, 43, 35, 43), fill=(60, 50, 40))
    # A picket fence and a striped flag on a pole.
    for x in range(44, 92, 4):
        d.rectangle((x, 49, x + 1, 58), fill=(250, 250, 245))
    d.line((44, 52, 92, 52), fill=(250, 250, 245))
    d.line((86, 20, 86, 49), fill=(60, 60, 60))
    for i, colour in enumerate(((240, 140, 30), (250, 250, 250), (30, 150, 160))):
        d.rectangle((87, 20 + 3 * i, 95, 22 + 3 * i), fill=colour)
    # Grass texture: a fixed pattern of short darker blades.
    rng = np.random.default_rng(20220417)
    for _ in range(60):
        gx, gy = int(rng.integers(0, w)), int(rng.integers(56, h))
        d.line((gx, gy, gx + int(rng.integers(-1, 2)), gy - 2), fill=(45, 105, 40))
    return image


def main() -> None:
    write_icons()
    draw_sample().save(HERE / "sample.png", optimize=True)
    print(f"wrote {len(PNG_SIZES)} PNGs, .ico, .icns and sample.png under {HERE}")


if __name__ == "__main__":
    main()
