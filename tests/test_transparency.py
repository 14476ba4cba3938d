"""Transparent pixels saved as JPEG: filled with the background, never with what hid under them.

An edited PNG often keeps the cut-away content in the colour channels of fully transparent
pixels. JPEG cannot store alpha, so writing the colour channels alone would reveal it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from fmen_gui.cli import run
from fmen_gui.engine.images import ImageData, fills_transparency, flatten_alpha, read_image, write_image

HIDDEN_RED = (255, 0, 0)


def hidden_red_png(path: Path, size: int = 32) -> Path:
    """Left half fully transparent over pure red; right half an opaque grey-blue gradient."""
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[:, : size // 2] = HIDDEN_RED
    ramp = np.linspace(60, 200, size // 2, dtype=np.uint8)
    rgb[:, size // 2 :, 0] = ramp[None, :] // 2
    rgb[:, size // 2 :, 1] = ramp[None, :]
    rgb[:, size // 2 :, 2] = 200
    alpha = np.full((size, size), 255, np.uint8)
    alpha[:, : size // 2] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.dstack((rgb, alpha)), "RGBA").save(path)
    return path


def assert_no_hidden_red(jpeg: Path, scale: int, size: int = 32) -> None:
    """Where alpha was 0 (away from the soft edge of the upscaled alpha) the JPEG is white."""
    with Image.open(jpeg) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        pixels = np.asarray(im).astype(int)
    assert pixels.shape[:2] == (size * scale, size * scale)
    hidden = pixels[:, : (size // 2 - 3) * scale]  # alpha is exactly 0 here even after bicubic
    redness = hidden[..., 0] - np.maximum(hidden[..., 1], hidden[..., 2])
    assert redness.max() < 12, f"the hidden red shows through: redness up to {redness.max()}"
    assert hidden.min() >= 240, "transparent areas are not filled with white"
    opaque = pixels[:, (size // 2 + 3) * scale :]
    assert abs(opaque[..., 2].mean() - 200) < 12, "the opaque half changed colour"


def test_flatten_alpha_is_the_over_operator() -> None:
    rgb = np.array([[[255, 0, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    alpha = np.array([[0, 255, 128]], np.uint8)
    out = flatten_alpha(rgb, alpha, (255, 255, 255))
    assert out.tolist() == [[[255, 255, 255], [0, 0, 255], [132, 137, 142]]]
    black = flatten_alpha(rgb.astype(np.uint16) * 257, alpha.astype(np.uint16) * 257, (0, 0, 0))
    assert black.dtype == np.uint8 and black[0, 0].tolist() == [0, 0, 0]


def test_write_image_fills_transparency_only_for_jpeg(tmp_path: Path) -> None:
    data = read_image(hidden_red_png(tmp_path / "in.png"))
    assert fills_transparency(data, tmp_path / "x.jpg")
    assert not any(fills_transparency(data, tmp_path / f"x.{e}") for e in ("png", "webp", "tiff"))
    opaque = ImageData(rgb=data.rgb, alpha=np.full_like(data.alpha, 255))
    assert not fills_transparency(opaque, tmp_path / "x.jpg")
    write_image(tmp_path / "black.jpg", data, background=(0, 0, 0), quality=100)
    black = np.asarray(Image.open(tmp_path / "black.jpg")).astype(int)
    assert black[:, :12].max() < 8, "the chosen background was not used"


def test_cli_jpeg_of_rgba_hides_what_was_under_transparent_pixels(tmp_path: Path) -> None:
    src = hidden_red_png(tmp_path / "cutout.png")
    dst = tmp_path / "cutout.jpg"
    out, err = io.StringIO(), io.StringIO()
    code = run([str(src), "-o", str(dst), "--scale", "2", "--quiet"], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert_no_hidden_red(dst, 2)
