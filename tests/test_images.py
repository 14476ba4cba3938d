"""Tests for fmen_gui.engine.images: every test image is generated here, in tmp_path."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps, features

from fmen_gui import atomicfiles
from fmen_gui.engine import images
from fmen_gui.engine.codecs import metadata, png16, tiff16
from fmen_gui.engine.images import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_FORMATS,
    SUPPORTED_EXTENSIONS,
    ImageData,
    is_supported,
    make_preview_rgb8,
    output_format_for,
    read_image,
    resize_alpha,
    write_image,
)
from fmen_gui.errors import FmenError, ImageError, OutputExistsError

RNG = np.random.default_rng(1234)


def noise(height: int, width: int, channels: int | None = 3, dtype: type = np.uint8) -> np.ndarray:
    top = 256 if dtype == np.uint8 else 65536
    shape = (height, width) if channels is None else (height, width, channels)
    return RNG.integers(0, top, shape, dtype=dtype)


def smooth(height: int, width: int) -> np.ndarray:
    """An RGB gradient: survives lossy codecs well enough to compare pixels approximately."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=2
    ).astype(np.uint8)


def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Equal arrays, or both missing (alpha planes are optional)."""
    if a is None or b is None:
        return a is None and b is None
    return bool(np.array_equal(a, b))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(image: Image.Image, path: Path, **params: Any) -> Path:
    image.save(path, **params)
    return path


def icc_bytes() -> bytes:
    if features.check("littlecms2"):
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # A made-up profile with a valid-looking header: the writer checks its colour space field.
    return bytes(16) + b"RGB " + b"carried verbatim" * 12


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def filter_rows(current: np.ndarray, previous: np.ndarray, bpp: int, kind: int) -> np.ndarray:
    """PNG-filter rows with one filter type (0-4) and prefix each with its filter byte.

    An encoder independent of libpng, so hand-made files can put any filter on any row
    (libpng's own choice is per image at best).
    """
    a = np.zeros_like(current)
    a[:, bpp:] = current[:, :-bpp]
    c = np.zeros_like(previous)
    c[:, bpp:] = previous[:, :-bpp]
    a16, b16, c16 = a.astype(np.int16), previous.astype(np.int16), c.astype(np.int16)
    pa, pb, pc = np.abs(b16 - c16), np.abs(a16 - c16), np.abs(a16 + b16 - 2 * c16)
    paeth = np.where((pa <= pb) & (pa <= pc), a16, np.where(pb <= pc, b16, c16))
    prediction = [0, a16, b16, (a16 + b16) >> 1, paeth][kind]
    out = np.empty((current.shape[0], current.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = kind
    out[:, 1:] = (current.astype(np.int16) - prediction).astype(np.uint8)
    return out


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".part")]


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------------------------
# Constants and small helpers


def test_constants() -> None:
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"} == SUPPORTED_EXTENSIONS
    assert OUTPUT_FORMATS == {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}
    assert DEFAULT_MAX_PIXELS == 200_000_000
    assert issubclass(ImageError, FmenError)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        *[("a.png", True), ("A.PNG", True), ("b.JpEg", True), ("c.tif", True), ("d.gif", True)],
        *[("e.webp", True), ("f.bmp", True), ("g.txt", False), ("noext", False), ("h.png.part", False)],
        ("i.psd", False),
    ],
)
def test_is_supported(name: str, expected: bool) -> None:
    assert is_supported(Path(name)) is expected


def test_output_format_for() -> None:
    assert output_format_for(Path("x.png"), None) == "PNG"
    assert output_format_for(Path("x.JPG"), None) == "JPEG"
    assert output_format_for(Path("x.jpeg"), None) == "JPEG"
    assert output_format_for(Path("x.tif"), None) == "TIFF"
    assert output_format_for(Path("x.webp"), None) == "WEBP"
    assert output_format_for(Path("x.png"), "JPG") == "JPEG"  # an explicit format wins
    assert output_format_for(Path("x"), "tiff") == "TIFF"
    assert output_format_for(Path("x.bmp"), ".Png") == "PNG"
    for path, fmt in [(Path("x.bmp"), None), (Path("x"), None), (Path("x.png"), "gif"), (Path("x.png"), "")]:
        with pytest.raises(ImageError) as info:
            output_format_for(path, fmt)
        assert "\n" not in str(info.value)


def test_module_does_not_import_torch_or_qt() -> None:
    code = (
        "import sys, fmen_gui.engine.images; "
        "bad = [m for m in ('torch', 'PySide6') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_pillow_truncated_loading_stays_off() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_imagedata_validation_and_properties() -> None:
    data = ImageData(rgb=noise(5, 7), alpha=None)
    assert data.size == (7, 5) and data.width == 7 and data.height == 5 and data.bit_depth == 8
    data16 = ImageData(rgb=noise(2, 3, dtype=np.uint16), alpha=noise(2, 3, None, np.uint16))
    assert data16.bit_depth == 16
    strided = noise(6, 8)[::2, ::2]
    assert ImageData(rgb=strided, alpha=None).rgb.flags.c_contiguous
    with pytest.raises(ValueError):
        ImageData(rgb=noise(4, 4, 4), alpha=None)
    with pytest.raises(ValueError):
        ImageData(rgb=noise(4, 4).astype(np.float32), alpha=None)
    with pytest.raises(ValueError):
        ImageData(rgb=noise(4, 4), alpha=noise(4, 5, None))
    with pytest.raises(ValueError):
        ImageData(rgb=noise(4, 4), alpha=noise(4, 4, None, np.uint16))


# --------------------------------------------------------------------------------------------
# Reading: formats and modes


@pytest.mark.parametrize(
    ("suffix", "params", "lossless"),
    [
        (".png", {}, True),
        (".bmp", {}, True),
        (".tif", {}, True),
        (".tiff", {"compression": "tiff_deflate"}, True),
        (".webp", {"lossless": True}, True),
        (".jpg", {"quality": 95}, False),
        (".jpeg", {"quality": 95}, False),
    ],
)
def test_read_each_format(tmp_path: Path, suffix: str, params: dict[str, Any], lossless: bool) -> None:
    pixels = smooth(24, 40)
    path = save(Image.fromarray(pixels), tmp_path / f"in{suffix}", **params)
    before = sha256(path)
    data = read_image(path)
    assert sha256(path) == before  # the input is never modified
    assert data.rgb.shape == (24, 40, 3) and data.rgb.dtype == np.uint8 and data.alpha is None
    assert data.rgb.flags.c_contiguous and data.rgb.flags.writeable
    assert not data.grayscale
    assert data.source_format == Image.open(path).format
    if lossless:
        assert np.array_equal(data.rgb, pixels)
    else:
        assert np.abs(data.rgb.astype(int) - pixels).mean() < 3


def test_read_gif(tmp_path: Path) -> None:
    palette_image = Image.fromarray(smooth(16, 16)).quantize(64)
    path = save(palette_image, tmp_path / "in.gif")
    data = read_image(path)
    assert data.source_format == "GIF" and data.alpha is None and data.rgb.shape == (16, 16, 3)
    assert np.array_equal(data.rgb, np.asarray(Image.open(path).convert("RGB")))


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 10), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert getattr(Image.open(path), "n_frames", 1) == 3
    data = read_image(path)
    assert data.rgb.shape == (10, 12, 3)
    assert np.array_equal(data.rgb[5, 5], [255, 0, 0])


def test_animated_webp_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 10), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], lossless=True)
    data = read_image(path)
    assert np.array_equal(data.rgb[5, 5], [255, 0, 0])


def test_rgba(tmp_path: Path) -> None:
    pixels = noise(9, 11, 4)
    data = read_image(save(Image.fromarray(pixels), tmp_path / "rgba.png"))
    assert np.array_equal(data.rgb, pixels[..., :3]) and same(data.alpha, pixels[..., 3])
    assert not data.grayscale


def test_la(tmp_path: Path) -> None:
    pixels = noise(9, 11, 2)
    data = read_image(save(Image.fromarray(pixels), tmp_path / "la.png"))
    assert data.grayscale
    assert np.array_equal(data.rgb, np.repeat(pixels[..., :1], 3, axis=2))
    assert same(data.alpha, pixels[..., 1])


def test_l(tmp_path: Path) -> None:
    pixels = noise(9, 11, None)
    data = read_image(save(Image.fromarray(pixels), tmp_path / "l.png"))
    assert data.grayscale and data.alpha is None and data.rgb.dtype == np.uint8
    assert all(np.array_equal(data.rgb[..., c], pixels) for c in range(3))


def test_bilevel(tmp_path: Path) -> None:
    image = Image.fromarray(noise(8, 8, None) > 127).convert("1")
    data = read_image(save(image, tmp_path / "bits.png"))
    assert data.grayscale and set(np.unique(data.rgb)) <= {0, 255}


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (6, 4), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (3, 0, 6, 4))
    data = read_image(save(image, tmp_path / "p.png", transparency=0))
    assert data.alpha is not None and not data.grayscale
    assert data.alpha[0, 0] == 0 and data.alpha[0, 5] == 255
    assert tuple(data.rgb[0, 5]) == (0, 255, 0)


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = Image.fromarray(smooth(8, 8)).quantize(16)
    data = read_image(save(image, tmp_path / "p.png"))
    assert data.alpha is None and np.array_equal(data.rgb, np.asarray(image.convert("RGB")))


def test_rgb_with_colour_key_gets_alpha(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[0, 0] = (10, 20, 30)
    data = read_image(save(Image.fromarray(pixels), tmp_path / "key.png", transparency=(10, 20, 30)))
    assert data.alpha is not None and data.alpha[0, 0] == 0 and data.alpha[1, 1] == 255


def test_cmyk_jpeg_becomes_rgb_without_profile(tmp_path: Path) -> None:
    image = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # red
    path = save(image, tmp_path / "cmyk.jpg", quality=95, icc_profile=b"fake cmyk profile")
    data = read_image(path)
    assert data.rgb.shape == (8, 16, 3) and data.icc_profile is None
    red, green, blue = (int(v) for v in data.rgb[4, 8])
    assert red > 200 and green < 60 and blue < 60


def test_16bit_gray_png_stays_16bit(tmp_path: Path) -> None:
    pixels = noise(13, 17, None, np.uint16)
    data = read_image(save(Image.fromarray(pixels), tmp_path / "g16.png"))
    assert data.rgb.dtype == np.uint16 and data.bit_depth == 16 and data.grayscale and data.alpha is None
    assert np.array_equal(data.rgb[..., 1], pixels)
    out = tmp_path / "g16-out.png"
    write_image(out, data)
    assert Image.open(out).mode.startswith("I;16")
    assert np.array_equal(np.asarray(Image.open(out)), pixels)


@pytest.mark.parametrize("alpha", [False, True])
def test_16bit_rgb_png_round_trip_is_bit_exact(tmp_path: Path, alpha: bool) -> None:
    rgb = noise(21, 34, dtype=np.uint16)
    a = noise(21, 34, None, np.uint16) if alpha else None
    icc = icc_bytes()
    path = tmp_path / "rgb16.png"
    write_image(path, ImageData(rgb=rgb, alpha=a, icc_profile=icc))
    with Image.open(path) as im:  # an independent decoder sees the high bytes
        assert im.format == "PNG"
        expected8 = (rgb >> 8).astype(np.uint8)
        assert np.array_equal(np.asarray(im)[..., :3], expected8)
        assert im.info.get("icc_profile") == icc
    back = read_image(path)
    assert back.bit_depth == 16 and not back.grayscale
    assert np.array_equal(back.rgb, rgb)
    assert same(back.alpha, a)
    assert back.icc_profile == icc
    again = tmp_path / "again.png"
    write_image(again, back)
    assert np.array_equal(read_image(again).rgb, rgb)


def test_16bit_gray_alpha_png_round_trip(tmp_path: Path) -> None:
    gray = noise(7, 9, None, np.uint16)
    alpha = noise(7, 9, None, np.uint16)
    path = tmp_path / "la16.png"
    write_image(path, ImageData(rgb=np.repeat(gray[..., None], 3, axis=2), alpha=alpha, grayscale=True))
    data = read_image(path)
    assert data.grayscale and data.bit_depth == 16
    assert np.array_equal(data.rgb[..., 0], gray) and same(data.alpha, alpha)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("filter_type", [None, 0, 1, 2, 3, 4])
def test_png16_decoder_every_filter(channels: int, filter_type: int | None) -> None:
    # Half noise, half gradient so adaptive filtering picks a mix of filter types.
    pixels = noise(19, 23, channels, np.uint16)
    pixels[10:] = (np.arange(23, dtype=np.uint16) * 2500)[None, :, None]
    buffer = io.BytesIO()
    png16.encode(buffer, pixels, filter_type=filter_type)
    decoded, exif = png16.decode(buffer.getvalue())
    assert exif is None
    assert decoded.dtype == np.uint16 and np.array_equal(decoded, pixels)


def test_png16_decoder_mixed_filters_per_row() -> None:
    # Rows filtered with randomly chosen types exercise the wavefront path with mixed types.
    pixels = noise(30, 17, 3, np.uint16)
    bpp = 6
    raw = pixels.astype(">u2").view(np.uint8).reshape(30, 17 * bpp)
    rows = []
    for r in range(30):
        previous = raw[r - 1 : r] if r else np.zeros_like(raw[:1])
        kind = int(RNG.integers(0, 5))
        rows.append(filter_rows(raw[r : r + 1], previous, bpp, kind))
    body = zlib.compress(np.concatenate(rows).tobytes())
    blob = (
        png16.SIGNATURE
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 17, 30, 16, 2, 0, 0, 0))
        + png_chunk(b"IDAT", body[:50])
        + png_chunk(b"IDAT", body[50:])
        + png_chunk(b"IEND", b"")
    )
    decoded, _ = png16.decode(blob)
    assert np.array_equal(decoded, pixels)


def test_png16_decoder_matches_pillow_on_pillow_files() -> None:
    pixels = noise(40, 50, None, np.uint16)
    pixels[20:] = np.cumsum(RNG.integers(0, 300, (20, 50)), axis=1).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    decoded, _ = png16.decode(buffer.getvalue())
    assert np.array_equal(decoded[..., 0], pixels)


def test_png16_colour_key_becomes_alpha(tmp_path: Path) -> None:
    pixels = noise(5, 6, 3, np.uint16)
    pixels[2, 3] = (1000, 2000, 3000)
    buffer = io.BytesIO()
    png16.encode(buffer, pixels)
    blob = buffer.getvalue()
    trns = png_chunk(b"tRNS", struct.pack(">HHH", 1000, 2000, 3000))
    path = tmp_path / "key16.png"
    path.write_bytes(blob[:33] + trns + blob[33:])  # right after IHDR
    data = read_image(path)
    assert data.alpha is not None and data.alpha.dtype == np.uint16
    assert data.alpha[2, 3] == 0 and int(data.alpha.sum()) == 65535 * (30 - 1)


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def adam7_png16(pixels: np.ndarray, filters: bool = True) -> bytes:
    """A 16-bit Adam7-interlaced PNG, written pass by pass as the PNG spec describes.

    Each pass is a small image of its own; its rows get random filter types so every filter
    is undone on pass-sized rows, first rows of a pass included.
    """
    height, width, channels = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    body = []
    for x0, y0, dx, dy in ADAM7:
        part = pixels[y0::dy, x0::dx]
        if part.size == 0:
            continue
        raw = part.astype(">u2").view(np.uint8).reshape(part.shape[0], -1)
        for r in range(raw.shape[0]):
            previous = raw[r - 1 : r] if r else np.zeros_like(raw[:1])
            kind = int(RNG.integers(0, 5)) if filters else 0
            body.append(filter_rows(raw[r : r + 1], previous, bpp, kind).tobytes())
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 1)
    return (
        png16.SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"".join(body)))
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (13, 11), (9, 17), (33, 20)])
def test_interlaced_16bit_png_reads_as_16bit(tmp_path: Path, channels: int, size: tuple[int, int]) -> None:
    pixels = noise(*size, channels, np.uint16)
    path = tmp_path / "adam7.png"
    path.write_bytes(adam7_png16(pixels))
    data = read_image(path)
    assert data.bit_depth == 16 and data.grayscale == (channels <= 2)
    colour = pixels[..., :1] if channels <= 2 else pixels[..., :3]
    assert np.array_equal(data.rgb, np.repeat(colour, 3, axis=2) if channels <= 2 else colour)
    assert same(data.alpha, pixels[..., -1] if channels in (2, 4) else None)
    # Pillow reads the same file independently (16-bit gray exactly, colour as its high bytes).
    with Image.open(path) as im:
        pillow = np.asarray(im)
    if channels == 1:
        assert np.array_equal(pillow, pixels[..., 0])
    elif channels == 3:
        assert np.array_equal(pillow, (pixels >> 8).astype(np.uint8))


def test_interlaced_16bit_png_is_written_back_as_16bit(tmp_path: Path) -> None:
    pixels = noise(10, 12, 4, np.uint16)
    src = tmp_path / "adam7.png"
    src.write_bytes(adam7_png16(pixels, filters=False))
    for name in ("back.png", "back.tiff"):
        write_image(tmp_path / name, read_image(src))
        again = read_image(tmp_path / name)
        assert again.bit_depth == 16 and np.array_equal(again.rgb, pixels[..., :3])
        assert same(again.alpha, pixels[..., 3])


def test_interlaced_16bit_png_with_short_data_is_corrupt(tmp_path: Path) -> None:
    blob = adam7_png16(noise(16, 16, 3, np.uint16), filters=False)
    header_end = 8 + 25
    (length,) = struct.unpack(">I", blob[header_end : header_end + 4])
    idat = zlib.decompress(blob[header_end + 8 : header_end + 8 + length])
    cut = (
        blob[:header_end] + png_chunk(b"IDAT", zlib.compress(idat[: len(idat) - 7])) + png_chunk(b"IEND", b"")
    )
    path = tmp_path / "short.png"
    path.write_bytes(cut)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        read_image(path)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_tiff_round_trip(tmp_path: Path, channels: int) -> None:
    gray = channels <= 2
    colour = noise(11, 13, 1 if gray else 3, np.uint16)
    rgb = np.repeat(colour, 3, axis=2) if gray else colour
    alpha = noise(11, 13, None, np.uint16) if channels in (2, 4) else None
    icc = bytes(16) + b"GRAY" + bytes(200) if gray else icc_bytes()
    path = tmp_path / "out16.tiff"
    write_image(path, ImageData(rgb=rgb, alpha=alpha, grayscale=gray, icc_profile=icc))
    data = read_image(path)
    assert data.bit_depth == 16 and data.grayscale == gray and data.source_format == "TIFF"
    assert np.array_equal(data.rgb, rgb) and data.icc_profile == icc
    assert same(data.alpha, alpha)
    if channels != 2:  # Pillow has no mode for 16-bit gray+alpha; the rest it decodes itself
        with Image.open(path) as im:
            im.load()
            pillow = np.asarray(im)
            if channels == 1:
                assert np.array_equal(pillow, colour[..., 0])
            else:
                assert np.array_equal(pillow[..., :3], (rgb >> 8).astype(np.uint8))


TIFF_LAYOUTS = {
    "lzw-strips": {"compression": "lzw"},
    "lzw-predictor": {"compression": "lzw", "predictor": True},
    "lzw-tiles": {"compression": "lzw", "tile": (16, 16)},
    "deflate-tiles": {"compression": "zlib", "tile": (16, 32)},
    "plain-tiles": {"tile": (16, 16)},
    "separate-planes": {"compression": "lzw", "planarconfig": "separate"},
    "big-endian": {"compression": "lzw", "byteorder": ">"},
    "bigtiff": {"bigtiff": True},
}


@pytest.mark.parametrize("layout", sorted(TIFF_LAYOUTS))
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_tiff_layouts_read_as_16bit(tmp_path: Path, layout: str, channels: int) -> None:
    import tifffile

    pixels = noise(21, 35, channels, np.uint16)
    path = tmp_path / f"{layout}.tif"
    extra = ["unassalpha"] if channels in (2, 4) else None
    photometric = "minisblack" if channels <= 2 else "rgb"
    params = dict(TIFF_LAYOUTS[layout])
    if channels == 1 and params.get("planarconfig"):
        del params["planarconfig"]  # one sample has no planes to separate
    icc = bytes(16) + (b"GRAY" if channels <= 2 else b"RGB ") + bytes(200)
    # tifffile takes separate planes as samples x rows x columns
    stored = np.moveaxis(pixels, -1, 0) if params.get("planarconfig") else pixels
    tifffile.imwrite(path, stored, photometric=photometric, extrasamples=extra, iccprofile=icc, **params)
    with tifffile.TiffFile(path) as tif:  # the file really has the layout under test
        page = tif.pages.first
        assert page.bitspersample == 16
        assert page.is_tiled == ("tile" in params)
        assert (page.compression == 5) == (params.get("compression") == "lzw")
    data = read_image(path)
    assert data.bit_depth == 16 and data.notes == () and data.grayscale == (channels <= 2)
    colour = pixels[..., :1] if channels <= 2 else pixels[..., :3]
    assert np.array_equal(data.rgb, np.repeat(colour, 3, axis=2) if channels <= 2 else colour)
    assert same(data.alpha, pixels[..., -1] if channels in (2, 4) else None)
    assert data.icc_profile == icc
    out = tmp_path / "out.tiff"
    write_image(out, data)
    assert np.array_equal(read_image(out).rgb, data.rgb)


def test_16bit_tiff_orientation_is_applied_by_the_tifffile_path(tmp_path: Path) -> None:
    import tifffile

    pixels = noise(6, 9, 3, np.uint16)
    path = tmp_path / "rotated.tif"
    tifffile.imwrite(path, pixels, photometric="rgb", compression="lzw", extratags=[(274, 3, 1, 6, True)])
    data = read_image(path)
    assert data.bit_depth == 16 and np.array_equal(data.rgb, np.rot90(pixels, k=-1))


def test_16bit_tiff_that_cannot_stay_16bit_says_so(tmp_path: Path) -> None:
    """Premultiplied alpha is not read at 16 bits: the 8-bit result carries a one-line note."""
    import tifffile

    pixels = noise(7, 9, 4, np.uint16)
    path = tmp_path / "premultiplied.tif"
    tifffile.imwrite(path, pixels, photometric="rgb", extrasamples=["assocalpha"])
    data = read_image(path)
    assert data.bit_depth == 8
    assert data.notes == ("16-bit TIFF read as 8-bit (premultiplied alpha)",)


def test_corrupt_lzw_tiff_is_reported(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "lzw.tif"
    tifffile.imwrite(path, noise(40, 40, 3, np.uint16), photometric="rgb", compression="lzw", rowsperstrip=40)
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages.first.dataoffsets[0]
    blob = bytearray(path.read_bytes())
    blob[offset : offset + 400] = bytes(RNG.integers(0, 256, 400, dtype=np.uint8))
    path.write_bytes(bytes(blob))
    # Not handed on to Pillow, which would print libtiff's complaints and return 8 bits.
    with pytest.raises(ImageError, match=r"^image data is truncated or corrupt$"):
        read_image(path)


def test_16bit_tiff_from_pillow_reads_as_16bit(tmp_path: Path) -> None:
    pixels = noise(9, 10, None, np.uint16)
    data = read_image(save(Image.fromarray(pixels), tmp_path / "g16.tif", compression="tiff_deflate"))
    assert data.bit_depth == 16 and np.array_equal(data.rgb[..., 0], pixels)


def test_32bit_integer_tiff_is_clipped_to_16bit(tmp_path: Path) -> None:
    pixels = np.array([[-5, 0, 70000, 1234]], dtype=np.int32)
    data = read_image(save(Image.fromarray(pixels), tmp_path / "i32.tif"))
    assert data.bit_depth == 16 and data.grayscale
    assert data.rgb[0, :, 0].tolist() == [0, 0, 65535, 1234]


def test_float_tiff_is_rejected(tmp_path: Path) -> None:
    path = save(Image.fromarray(np.ones((4, 4), np.float32)), tmp_path / "f.tif")
    with pytest.raises(ImageError, match="unsupported image mode F"):
        read_image(path)


# --------------------------------------------------------------------------------------------
# Metadata: orientation, EXIF, ICC


def exif_with(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "FMEN test camera"  # Make, to check other tags survive
    return exif.tobytes()


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 20:] = (0, 0, 255)
    path = save(Image.fromarray(pixels), tmp_path / "rot.jpg", quality=95, exif=exif_with(6))
    data = read_image(path)
    assert data.size == (20, 40)  # rotated 90 degrees clockwise: width and height swap
    assert data.rgb[5, 10, 0] > 200 and data.rgb[35, 10, 2] > 200  # red on top, blue below
    assert data.exif is not None
    out = tmp_path / "out.jpg"
    write_image(out, data)
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif.get(0x0112) == 1 and exif.get(0x010F) == "FMEN test camera"
        assert im.size == (20, 40)
    assert read_image(out).size == (20, 40)  # no second rotation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow(tmp_path: Path, orientation: int) -> None:
    pixels = noise(5, 7)
    path = save(Image.fromarray(pixels), tmp_path / "o.png", exif=exif_with(orientation))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert np.array_equal(read_image(path).rgb, expected)


def test_orientation_applies_to_16bit_png(tmp_path: Path) -> None:
    rgb = noise(4, 9, dtype=np.uint16)
    path = tmp_path / "o16.png"
    buffer = io.BytesIO()
    png16.encode(buffer, rgb, exif=exif_with(8))
    path.write_bytes(buffer.getvalue())
    data = read_image(path)
    assert np.array_equal(data.rgb, np.rot90(rgb, k=1))
    assert metadata.normalise_exif(data.exif or b"")[1] == 1


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tiff"])
def test_icc_profile_round_trip(tmp_path: Path, suffix: str) -> None:
    icc = icc_bytes()
    path = save(Image.fromarray(smooth(8, 8)), tmp_path / f"in{suffix}", icc_profile=icc)
    data = read_image(path)
    assert data.icc_profile == icc
    out = tmp_path / f"out{suffix}"
    write_image(out, data)
    assert read_image(out).icc_profile == icc


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_exif_round_trip_png_webp(tmp_path: Path, suffix: str) -> None:
    path = save(Image.fromarray(smooth(6, 10)), tmp_path / f"in{suffix}", exif=exif_with(3))
    data = read_image(path)
    out = tmp_path / f"out{suffix}"
    write_image(out, data)
    with Image.open(out) as im:
        assert im.getexif().get(0x0112) == 1 and im.getexif().get(0x010F) == "FMEN test camera"


def test_normalise_exif() -> None:
    raw = exif_with(6)
    assert raw.startswith(b"Exif\x00\x00")
    fixed, orientation = metadata.normalise_exif(raw)
    assert orientation == 6 and fixed is not None and len(fixed) == len(raw)
    assert metadata.normalise_exif(fixed) == (fixed, 1)
    assert metadata.normalise_exif(raw[6:]) == (fixed, 6)  # a bare TIFF header gets the Exif prefix
    assert metadata.normalise_exif(b"garbage") == (None, 1)
    assert metadata.normalise_exif(b"II*\x00\xff\xff\xff\x00") == (None, 1)


def test_icc_only_kept_when_it_fits_the_pixels(tmp_path: Path) -> None:
    rgb_profile = icc_bytes()
    gray_profile = bytes(16) + b"GRAY" + bytes(108)
    assert metadata.icc_fits(rgb_profile, grayscale=False) and not metadata.icc_fits(
        rgb_profile, grayscale=True
    )
    assert metadata.icc_fits(gray_profile, grayscale=True) and not metadata.icc_fits(
        gray_profile, grayscale=False
    )
    assert not metadata.icc_fits(b"short", grayscale=False) and not metadata.icc_fits(None, grayscale=False)
    gray = ImageData(rgb=np.zeros((4, 4, 3), np.uint8), alpha=None, grayscale=True, icc_profile=gray_profile)
    write_image(tmp_path / "gray.png", gray)
    write_image(tmp_path / "gray.webp", gray)  # WebP has no gray: written as RGB, profile dropped
    assert read_image(tmp_path / "gray.png").icc_profile == gray_profile
    assert read_image(tmp_path / "gray.webp").icc_profile is None


def test_write_resets_orientation_given_by_the_caller(tmp_path: Path) -> None:
    out = tmp_path / "out.jpg"
    write_image(out, ImageData(rgb=smooth(4, 6), alpha=None, exif=exif_with(8)))
    with Image.open(out) as im:
        assert im.getexif().get(0x0112) == 1


# --------------------------------------------------------------------------------------------
# Reading: size limit and bad files


def huge_png_header(path: Path, *, depth: int = 8, colour_type: int = 2) -> Path:
    header = struct.pack(">IIBBBBB", 40000, 40000, depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        png16.SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(("depth", "colour_type"), [(8, 2), (16, 2), (16, 6), (8, 0)])
def test_pixel_limit_fails_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int, colour_type: int
) -> None:
    import resource

    path = huge_png_header(tmp_path / "bomb.png", depth=depth, colour_type=colour_type)
    assert path.stat().st_size < 200
    calls: list[str] = []
    original_load = ImageFile.ImageFile.load

    def spy_load(self: ImageFile.ImageFile) -> object:
        calls.append("pillow")
        return original_load(self)

    def spy_png16(blob: bytes) -> object:
        calls.append("png16")
        raise AssertionError("must not decode")

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    monkeypatch.setattr(png16, "decode", spy_png16)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError) as info:
        read_image(path)
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert str(info.value) == "image is 40000×40000 (1600 MP), over the 200 MP limit"
    assert calls == []
    assert peak_after - peak_before < 100 * 1024  # KiB on Linux: far below the 4.8 GB it claims


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = save(Image.fromarray(noise(100, 100)), tmp_path / "a.png")
    with pytest.raises(ImageError, match=r"100×100 \(0.01 MP\), over the 0.005 MP limit"):
        read_image(path, max_pixels=5000)
    assert read_image(path, max_pixels=10_000).size == (100, 100)


def test_pillow_bomb_guard_does_not_preempt_our_limit(tmp_path: Path) -> None:
    # 15000 x 14000 = 210 MP is above Pillow's own 179 MP error threshold: the message must be ours.
    path = tmp_path / "big.png"
    header = struct.pack(">IIBBBBB", 15000, 14000, 8, 2, 0, 0, 0)
    path.write_bytes(png16.SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="over the 200 MP limit"):
        read_image(path)


def assert_read_fails(path: Path, message: str) -> None:
    before = sha256(path) if path.is_file() else None
    with pytest.raises(ImageError) as info:
        read_image(path)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text and str(path) not in text
    if before is not None:
        assert sha256(path) == before


def test_missing_file(tmp_path: Path) -> None:
    assert_read_fails(tmp_path / "nope.png", "file not found")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert_read_fails(folder, "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert_read_fails(path, "empty file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    assert_read_fails(path, "not a regular file")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.png", b"just some text, not an image\n"),
        ("page.png", b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n"),
        ("page.jpg", b"<html><head><title>x</title></head></html>"),
        ("binary.tif", bytes(range(256)) * 4),
    ],
)
def test_not_an_image(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert_read_fails(path, "not a supported image (cannot identify format)")


@pytest.mark.parametrize(
    ("suffix", "params"),
    [(".png", {}), (".jpg", {"quality": 90}), (".webp", {}), (".bmp", {}), (".tif", {}), (".gif", {})],
)
def test_truncated_files(tmp_path: Path, suffix: str, params: dict[str, Any]) -> None:
    image = Image.fromarray(noise(64, 64))
    if suffix == ".gif":
        image = image.quantize(256)
    path = save(image, tmp_path / f"whole{suffix}", **params)
    blob = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(blob[: len(blob) // 2])
    assert_read_fails(cut, "truncated or corrupt")


def test_truncated_16bit_png(tmp_path: Path) -> None:
    path = tmp_path / "whole.png"
    write_image(path, ImageData(rgb=noise(32, 32, dtype=np.uint16), alpha=None))
    blob = path.read_bytes()
    for length in (len(blob) // 2, len(blob) - 13, 40):
        cut = tmp_path / f"cut{length}.png"
        cut.write_bytes(blob[:length])
        assert_read_fails(cut, "truncated or corrupt")


def test_truncated_16bit_tiff(tmp_path: Path) -> None:
    path = tmp_path / "whole.tif"
    write_image(path, ImageData(rgb=noise(32, 32, dtype=np.uint16), alpha=noise(32, 32, None, np.uint16)))
    blob = path.read_bytes()
    # The IFD sits at the end of files written here, so corrupt a strip instead of cutting.
    bad = bytearray(blob)
    bad[8:200] = b"\x00" * 192
    (tmp_path / "bad.tif").write_bytes(bytes(bad))
    assert_read_fails(tmp_path / "bad.tif", "truncated or corrupt")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    path = save(Image.fromarray(noise(4, 4)), tmp_path / "secret.png")
    path.chmod(0)
    try:
        try:
            path.read_bytes()
        except PermissionError:
            pass
        else:
            pytest.skip("running with privileges that ignore file permissions")
        assert_read_fails(path, "permission denied")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_permission_error_on_open_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same path as test_unreadable_file, simulated so it also runs as root.
    path = save(Image.fromarray(noise(4, 4)), tmp_path / "secret.png")

    def deny(*args: object, **kwargs: object) -> object:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(images, "open", deny, raising=False)
    assert_read_fails(path, "permission denied")


def test_odd_file_names(tmp_path: Path) -> None:
    folder = tmp_path / "my pictures ünïcødé 写真"
    folder.mkdir()
    source = save(Image.fromarray(noise(6, 5, 4)), folder / "holiday photo é 日本.png")
    data = read_image(source)
    for name in [
        "up scaled ×4 — ok.png",
        "frühling 春.jpg",
        "space name .webp",
        "ß.tiff",
        "n" * 240 + ".png",
    ]:
        out = folder / name
        write_image(out, data)
        assert read_image(out).size == (5, 6)
    assert part_files(folder) == []


# --------------------------------------------------------------------------------------------
# Fuzzing: only ImageError may come out of read_image


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _seed_files() -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    seed_images: list[tuple[str, Image.Image, dict[str, Any]]] = [
        ("png8", Image.fromarray(noise(6, 7, 4)), {"format": "PNG"}),
        ("jpeg", Image.fromarray(smooth(8, 8)), {"format": "JPEG", "exif": exif_with(6)}),
        ("gif", Image.fromarray(smooth(8, 8)).quantize(8), {"format": "GIF"}),
        ("bmp", Image.fromarray(noise(4, 5)), {"format": "BMP"}),
        ("webp", Image.fromarray(noise(4, 5)), {"format": "WEBP", "lossless": True}),
    ]
    for key, image, params in seed_images:
        buffer = io.BytesIO()
        image.save(buffer, **params)
        seeds[key] = buffer.getvalue()
    for key, encoder in [("png16", png16.encode), ("tiff16", tiff16.write)]:
        buffer = io.BytesIO()
        encoder(buffer, noise(5, 6, 4, np.uint16), icc_profile=b"icc")
        seeds[key] = buffer.getvalue()
    return seeds


SEEDS = _seed_files()


def _read_fuzzed(folder: Path, blob: bytes) -> None:
    path = folder / "fuzz.png"
    path.write_bytes(blob)
    try:
        data = read_image(path, max_pixels=4096)
    except ImageError as exc:
        assert "\n" not in str(exc)
        return
    assert data.rgb.ndim == 3 and data.rgb.shape[2] == 3


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about some corrupt metadata
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(min_size=1, max_size=512))
def test_fuzz_random_bytes(fuzz_dir: Path, blob: bytes) -> None:
    _read_fuzzed(fuzz_dir, blob)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(min_value=1)),
)
def test_fuzz_corrupted_images(
    fuzz_dir: Path, seed: str, edits: list[tuple[int, int]], cut: int | None
) -> None:
    blob = bytearray(SEEDS[seed])
    for position, value in edits:
        blob[position % len(blob)] = value
    if cut is not None:
        blob = blob[: cut % len(blob) + 1]
    _read_fuzzed(fuzz_dir, bytes(blob))


# --------------------------------------------------------------------------------------------
# Writing


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".png", "RGBA"), (".webp", "RGBA"), (".tiff", "RGBA"), (".jpg", "RGB")]
)
def test_alpha_kept_except_jpeg(tmp_path: Path, suffix: str, mode: str) -> None:
    rgba = np.dstack([smooth(8, 10), np.full((8, 10), 128, np.uint8)])
    out = tmp_path / f"out{suffix}"
    write_image(out, ImageData(rgb=rgba[..., :3], alpha=rgba[..., 3]), quality=100)
    with Image.open(out) as im:
        assert im.mode == mode
    data = read_image(out)
    assert (data.alpha is None) == (suffix == ".jpg")
    if data.alpha is not None:
        assert np.all(data.alpha == 128)


@pytest.mark.parametrize(("suffix", "mode"), [(".png", "L"), (".jpg", "L"), (".tiff", "L"), (".webp", "RGB")])
def test_grayscale_written_as_grayscale(tmp_path: Path, suffix: str, mode: str) -> None:
    gray = np.repeat(noise(8, 8, 1), 3, axis=2)
    out = tmp_path / f"out{suffix}"
    write_image(out, ImageData(rgb=gray, alpha=None, grayscale=True), quality=100)
    with Image.open(out) as im:
        assert im.mode == mode
        if suffix in (".png", ".tiff"):
            assert np.array_equal(np.asarray(im), gray[..., 0])


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".png", "LA"), (".tiff", "LA"), (".webp", "RGBA"), (".jpg", "L")]
)
def test_grayscale_with_alpha(tmp_path: Path, suffix: str, mode: str) -> None:
    out = tmp_path / f"la{suffix}"
    alpha = noise(3, 3, None)
    write_image(out, ImageData(rgb=np.zeros((3, 3, 3), np.uint8), alpha=alpha, grayscale=True), quality=100)
    with Image.open(out) as im:
        assert im.mode == mode
    data = read_image(out)
    assert data.grayscale == (mode != "RGBA")
    if mode != "L":
        assert data.alpha is not None
        assert same(data.alpha, alpha) if suffix != ".webp" else data.alpha.shape == (3, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_16bit_to_8bit_formats(tmp_path: Path, suffix: str) -> None:
    rgb = np.zeros((8, 8, 3), np.uint16)
    rgb[..., 0] = 65535
    rgb[..., 1] = 257 * 100
    out = tmp_path / f"out{suffix}"
    write_image(out, ImageData(rgb=rgb, alpha=None), quality=100)
    data = read_image(out)
    assert data.bit_depth == 8
    assert abs(int(data.rgb[4, 4, 0]) - 255) <= 2 and abs(int(data.rgb[4, 4, 1]) - 100) <= 2


def test_to_8bit_rounding() -> None:
    values = np.array([0, 128, 129, 257, 385, 386, 65535], np.uint16)
    assert images.to_8bit(values).tolist() == [0, 0, 1, 1, 1, 2, 255]


def test_jpeg_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    original_save = Image.Image.save

    def spy(self: Image.Image, fp: Any, format: str | None = None, **params: Any) -> None:
        seen.append(params)
        original_save(self, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", spy)
    data = ImageData(rgb=smooth(8, 8), alpha=None)
    write_image(tmp_path / "a.jpg", data, quality=95)
    write_image(tmp_path / "b.jpg", data, quality=70)
    # Each JPEG is made with standard tables first, then with optimised ones where they fit.
    assert [p.get("optimize", False) for p in seen] == [False, True, False, True]
    assert seen[1]["subsampling"] == 0 and seen[1]["quality"] == 95
    assert "subsampling" not in seen[3] and seen[3]["quality"] == 70


@pytest.mark.parametrize("quality", [90, 95, 100])
def test_detailed_jpeg_at_high_quality_is_written(tmp_path: Path, quality: int) -> None:
    """Noise at high quality needs more than Pillow's buffer for optimised Huffman tables.

    It once failed with "broken data stream" (and libjpeg's "Suspension not allowed here" on
    stderr); it is now written with standard tables.
    """
    rgb = noise(300, 300)
    out = write_image(tmp_path / "detail.jpg", ImageData(rgb=rgb, alpha=None), quality=quality)
    with Image.open(out) as im:
        im.load()
        assert im.size == (300, 300) and im.format == "JPEG"
    assert os.path.getsize(out) > 300 * 300  # more than a byte per pixel: the case that failed


def test_quality_and_size_limits(tmp_path: Path) -> None:
    data = ImageData(rgb=smooth(4, 4), alpha=None)
    for bad in (0, 101):
        with pytest.raises(ImageError, match="quality"):
            write_image(tmp_path / "q.jpg", data, quality=bad)
    wide = ImageData(rgb=np.zeros((1, 65_501, 3), np.uint8), alpha=None)
    with pytest.raises(ImageError, match="too large for JPEG"):
        write_image(tmp_path / "wide.jpg", wide)
    with pytest.raises(ImageError, match="too large for WEBP"):
        write_image(tmp_path / "wide.webp", ImageData(rgb=np.zeros((16_384, 1, 3), np.uint8), alpha=None))
    assert list(tmp_path.iterdir()) == []


def test_fmt_overrides_extension(tmp_path: Path) -> None:
    out = tmp_path / "picture.out"
    write_image(out, ImageData(rgb=smooth(4, 4), alpha=None), fmt="JPEG")
    with Image.open(out) as im:
        assert im.format == "JPEG"
    with pytest.raises(ImageError, match="cannot tell the output format"):
        write_image(tmp_path / "picture.bmp", ImageData(rgb=smooth(4, 4), alpha=None))


def test_atomic_write_success_leaves_only_the_target(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"old content")
    write_image(out, ImageData(rgb=noise(5, 5), alpha=None), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert read_image(out).size == (5, 5)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_new_file_gets_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "new.png"
        write_image(out, ImageData(rgb=noise(2, 2), alpha=None))
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        existing = tmp_path / "existing.png"
        existing.write_bytes(b"x")
        existing.chmod(0o600)
        write_image(existing, ImageData(rgb=noise(2, 2), alpha=None), overwrite=True)
        assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_no_space_on_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"precious old result")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(ImageError, match="no space left on device"):
        write_image(out, ImageData(rgb=noise(5, 5), alpha=None), overwrite=True)
    assert part_files(tmp_path) == [] and out.read_bytes() == b"precious old result"


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_no_space_while_encoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bit_depth: int) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"precious old result")

    class FillingFile(io.FileIO):
        written = 0

        def write(self, data: object) -> int:
            self.written += 1
            if self.written > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)  # type: ignore[arg-type]

    def fdopen(fd: int, mode: str = "r", *args: object, **kwargs: object) -> object:
        return FillingFile(fd, "wb", closefd=True)

    monkeypatch.setattr(os, "fdopen", fdopen)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    with pytest.raises(ImageError, match="no space") as info:
        write_image(out, ImageData(rgb=noise(300, 300, dtype=dtype), alpha=None))
    assert "\n" not in str(info.value)
    assert part_files(tmp_path) == [] and out.read_bytes() == b"precious old result"


def _dev_full_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the writer's temp file a disk that is full: writes to /dev/full fail with ENOSPC.

    Unlike a Python-level fake, the failure comes from the kernel, where Pillow's C encoders
    would see it too if they were handed the file descriptor.
    """
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    real_fdopen = os.fdopen

    def fdopen(fd: int, mode: str = "r", *args: object, **kwargs: object) -> object:
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return real_fdopen(fd, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "fdopen", fdopen)


@pytest.mark.parametrize("name", ["out.jpg", "out.png", "out.webp", "out.tiff"])
def test_full_disk_says_no_space_for_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], name: str
) -> None:
    """A full disk while writing a JPEG once gave libjpeg's words, not "no space left"."""
    _dev_full_instead(monkeypatch)
    with pytest.raises(ImageError) as info:  # detailed: the JPEG that once failed inside libjpeg
        write_image(tmp_path / name, ImageData(rgb=noise(200, 300), alpha=None))
    assert str(info.value) == "no space left on device"
    assert list(tmp_path.iterdir()) == []
    assert capfd.readouterr().err == ""  # nothing from libjpeg or Pillow on stderr


def test_existing_file_is_not_replaced_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="output already exists"):
        write_image(out, ImageData(rgb=noise(5, 5), alpha=None))
    assert out.read_bytes() == b"precious" and sorted(tmp_path.iterdir()) == [out]


def _appears_while_encoding(monkeypatch: pytest.MonkeyPatch, intruder: Path, content: bytes) -> None:
    """Another program creates ``intruder`` after this job's check but before its final step."""
    real = images._encode

    def encode(fh: Any, *args: Any) -> None:
        real(fh, *args)
        intruder.write_bytes(content)

    monkeypatch.setattr(images, "_encode", encode)


def test_a_file_created_during_the_write_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.png"
    _appears_while_encoding(monkeypatch, out, b"someone else's result")
    with pytest.raises(OutputExistsError, match="appeared while this job ran"):
        write_image(out, ImageData(rgb=noise(5, 5), alpha=None))
    assert out.read_bytes() == b"someone else's result"
    assert sorted(tmp_path.iterdir()) == [out]  # no temp file either


def test_numbered_takes_the_next_free_name_when_one_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.png"
    (tmp_path / "out (2).png").write_bytes(b"older numbered result")
    _appears_while_encoding(monkeypatch, out, b"newcomer")
    written = write_image(out, ImageData(rgb=noise(5, 5), alpha=None), numbered=True)
    assert written == tmp_path / "out (3).png"
    assert read_image(written).size == (5, 5)
    assert out.read_bytes() == b"newcomer"
    assert (tmp_path / "out (2).png").read_bytes() == b"older numbered result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out (2).png", "out (3).png", "out.png"]


def test_keyboard_interrupt_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.png"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(out, ImageData(rgb=noise(5, 5), alpha=None))
    assert list(tmp_path.iterdir()) == []


def test_encoder_error_becomes_image_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("encoder exploded\nsecond line")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(ImageError) as info:
        write_image(tmp_path / "out.webp", ImageData(rgb=noise(5, 5), alpha=None))
    assert str(info.value) == "cannot encode the image as WEBP: encoder exploded"
    assert list(tmp_path.iterdir()) == []


def test_output_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="output folder does not exist"):
        write_image(tmp_path / "missing" / "out.png", ImageData(rgb=noise(2, 2), alpha=None))


def test_output_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        write_image(tmp_path / "out.png", ImageData(rgb=noise(2, 2), alpha=None))
    assert part_files(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_read_only_output_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK) or is_root():
            pytest.skip("running with privileges that ignore folder permissions")
        with pytest.raises(ImageError, match="permission denied"):
            write_image(folder / "out.png", ImageData(rgb=noise(2, 2), alpha=None))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(stat.S_IRWXU)


@pytest.mark.parametrize(
    ("code", "message"),
    [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system"), (errno.EDQUOT, "quota")],
)
def test_folder_errors_are_translated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, message: str
) -> None:
    # Simulated, so it also runs as root (which can write into read-only folders).
    def refuse(*args: object, **kwargs: object) -> object:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomicfiles.tempfile, "mkstemp", refuse)
    with pytest.raises(ImageError, match=message):
        write_image(tmp_path / "out.png", ImageData(rgb=noise(2, 2), alpha=None))


# --------------------------------------------------------------------------------------------
# Alpha resizing and previews


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_resize_alpha(dtype: type, scale: int) -> None:
    alpha = noise(7, 5, None, dtype)
    resized = resize_alpha(alpha, scale)
    assert resized.shape == (7 * scale, 5 * scale) and resized.dtype == dtype
    top = np.iinfo(dtype).max
    flat: np.ndarray = np.full((6, 4), top // 3, dtype)
    assert np.all(resize_alpha(flat, scale) == top // 3)  # a constant plane stays constant
    edge: np.ndarray = np.zeros((4, 8), dtype)
    edge[:, 4:] = top
    up = resize_alpha(edge, scale)
    assert up.min() == 0 and up.max() == top  # clipped, no wrap-around from bicubic overshoot
    with pytest.raises(ValueError):
        resize_alpha(alpha, 0)
    with pytest.raises(ValueError):
        resize_alpha(alpha.astype(np.float32), 2)


def test_make_preview_rgb8() -> None:
    rgb16 = np.full((3, 4, 3), 65535, np.uint16)
    preview = make_preview_rgb8(ImageData(rgb=rgb16, alpha=None))
    assert preview.shape == (3, 4, 3) and preview.dtype == np.uint8 and np.all(preview == 255)
    rgba = make_preview_rgb8(ImageData(rgb=noise(3, 4), alpha=noise(3, 4, None)))
    assert rgba.shape == (3, 4, 4) and rgba.flags.c_contiguous
