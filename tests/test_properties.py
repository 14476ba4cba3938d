"""Property tests: exact sizes and exact tiling for any image, and only our own errors from any bytes.

A tiny FMEN-family network (8 channels, one block, receptive radius 14) with fixed random weights
keeps each example fast; tiling exactness is a property of the architecture and the tiler, not of
trained values (tests/test_engine.py checks the real FMEN-S on fixed cases).
"""

from __future__ import annotations

import functools
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from fmen_gui.arch.detect import describe
from fmen_gui.arch.fmen import FMEN, FMENConfig
from fmen_gui.engine.images import SUPPORTED_EXTENSIONS, ImageData, read_image
from fmen_gui.engine.pipeline import MIN_TILE, Upscaler
from fmen_gui.engine.tiling import plan_tiles
from fmen_gui.errors import Cancelled, EngineError, FmenError, ImageError, WeightsError
from fmen_gui.weights.loading import SUPPORTED_SUFFIXES, load_weights, read_state_dict, save_safetensors

EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small tensors run fastest on one thread, above all on a busy machine; put it back after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def tiny_config(scale: int) -> FMENConfig:
    return FMENConfig(channels=8, mid_channels=6, down_blocks=1, up_blocks=(1, 1), scale=scale)


@functools.cache
def tiny(scale: int) -> Upscaler:
    torch.manual_seed(scale)
    model = FMEN(tiny_config(scale)).eval()
    return Upscaler(model, describe(model.config, model), torch.device("cpu"), torch.float32)


def pixels(height: int, width: int, mode: str, seed: int) -> tuple[np.ndarray, bool]:
    """(H×W×3 pixels, grayscale flag) the way read_image hands them over for ``mode``."""
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if mode.endswith("16") else np.uint8
    top = np.iinfo(dtype).max + 1
    if mode.startswith("gray"):
        plane = rng.integers(0, top, (height, width, 1), dtype=dtype)
        return np.repeat(plane, 3, axis=2), True
    return rng.integers(0, top, (height, width, 3), dtype=dtype), False


sizes = st.integers(min_value=1, max_value=300)
modes = st.sampled_from(["rgb8", "rgb16", "gray8", "gray16"])
scales = st.sampled_from([2, 3, 4])
tiles = st.integers(min_value=MIN_TILE, max_value=128)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


# --------------------------------------------------------------------------------------------
# The engine


@EXAMPLES
@given(height=sizes, width=sizes, mode=modes, scale=scales, tile=tiles, seed=seeds)
def test_output_is_scale_times_input_and_tiled_equals_untiled(
    height: int, width: int, mode: str, scale: int, tile: int, seed: int
) -> None:
    up = tiny(scale)
    rgb, gray = pixels(height, width, mode, seed)
    whole = up.upscale_rgb(rgb, tile=0, grayscale=gray)
    assert whole.shape == (height * scale, width * scale, 3) and whole.dtype == rgb.dtype
    tiled = up.upscale_rgb(rgb, tile=tile, grayscale=gray)
    assert np.array_equal(tiled, whole)
    if gray:
        assert np.array_equal(whole[..., 0], whole[..., 1]) and np.array_equal(whole[..., 1], whole[..., 2])


class _OomAbove(Upscaler):
    """Fails like the CPU allocator for any network input larger than ``limit`` on a side."""

    limit = 10**9

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[2:]) > self.limit:
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB")
        return super()._forward(x)


@EXAMPLES
@given(
    height=sizes, width=sizes, scale=scales, tile=st.sampled_from([0, 32, 64, 128]), limit=sizes, seed=seeds
)
def test_out_of_memory_at_any_size_stays_exact_or_says_so(
    height: int, width: int, scale: int, tile: int, limit: int, seed: int
) -> None:
    base = tiny(scale)
    oom = _OomAbove(base.model, base.descriptor, base.device, base.dtype)
    oom.limit = limit
    rgb, _ = pixels(height, width, "rgb8", seed)
    try:
        result = oom.upscale_rgb(rgb, tile=tile)
    except EngineError as exc:
        assert "out of memory" in str(exc)
        # only when not even a 32-pixel tile with its context fits (a box may grow by one
        # pixel to start on an even coordinate: see Tile.box)
        assert limit < min(MIN_TILE + 2 * base.overlap + 1, max(height, width))
        return
    assert np.array_equal(result, base.upscale_rgb(rgb, tile=0))


@EXAMPLES
@given(height=sizes, width=sizes, tile=tiles, data=st.data())
def test_cancel_at_any_tile_raises_and_the_next_run_is_exact(
    height: int, width: int, tile: int, data: st.DataObject
) -> None:
    up = tiny(2)
    rgb, _ = pixels(height, width, "rgb8", height * 1000 + width)
    total = len(plan_tiles(height, width, tile))
    k = data.draw(st.integers(min_value=0, max_value=total - 1), label="cancel after tile")
    cancel = threading.Event()

    def progress(done: int, _total: int) -> None:
        if done == k:
            cancel.set()

    with pytest.raises(Cancelled):
        up.upscale_rgb(rgb, tile=tile, progress=progress, cancel=cancel)
    assert np.array_equal(up.upscale_rgb(rgb, tile=tile), up.upscale_rgb(rgb, tile=0))


# --------------------------------------------------------------------------------------------
# The image loader: any bytes give pixels or one of our own errors


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def _png16(height: int, width: int) -> bytes:
    rows = np.random.default_rng(3).integers(0, 65536, (height, width, 3), dtype=np.uint16)
    raw = b"".join(b"\x01" + rows[y].astype(">u2").tobytes() for y in range(height))  # Sub filter
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _encoded(image: Image.Image, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **params)
    return buffer.getvalue()


def _image_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "png": _encoded(rgb, format="PNG"),
        "png-rgba": _encoded(rgb.convert("RGBA"), format="PNG"),
        "png16": _png16(6, 5),
        "jpeg": _encoded(rgb, format="JPEG", quality=90, exif=exif.tobytes()),
        "jpeg-cmyk": _encoded(rgb.convert("CMYK"), format="JPEG"),
        "gif": _encoded(rgb.quantize(16), format="GIF"),
    }


IMAGE_SEEDS = _image_seeds()


def _read_any(folder: Path, blob: bytes, suffix: str) -> None:
    path = folder / f"fuzz{suffix}"
    path.write_bytes(blob)
    try:
        data = read_image(path, max_pixels=1 << 16)
    except FmenError as exc:
        assert isinstance(exc, ImageError) and str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(data, ImageData) and data.rgb.ndim == 3 and data.rgb.shape[2] == 3
    assert path.read_bytes() == blob  # the loader never writes


suffixes = st.sampled_from(sorted(SUPPORTED_EXTENSIONS))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about some corrupt metadata
@EXAMPLES
@given(blob=st.binary(min_size=0, max_size=600), suffix=suffixes)
def test_random_bytes_into_the_image_loader(scratch: Path, blob: bytes, suffix: str) -> None:
    _read_any(scratch, blob, suffix)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(sorted(IMAGE_SEEDS)),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
    suffix=suffixes,
)
def test_damaged_images_into_the_image_loader(
    scratch: Path, seed: str, edits: list[tuple[int, int]], cut: int | None, suffix: str
) -> None:
    blob = bytearray(IMAGE_SEEDS[seed])
    for position, value in edits:
        blob[position % len(blob)] = value
    if cut is not None:
        blob = blob[: cut % len(blob)]
    _read_any(scratch, bytes(blob), suffix)


# --------------------------------------------------------------------------------------------
# The weights loader: any bytes give a network or a WeightsError


def _weights_seeds(folder: Path) -> dict[str, bytes]:
    torch.manual_seed(0)
    model = FMEN(tiny_config(2)).eval()
    seeds: dict[str, bytes] = {}
    torch.save(model.state_dict(), folder / "zip.pt")
    torch.save({"params_ema": model.state_dict()}, folder / "basicsr.pth")
    torch.save(model.state_dict(), folder / "legacy.pt", _use_new_zipfile_serialization=False)
    save_safetensors(model, folder / "tiny.safetensors")
    for name in ("zip.pt", "basicsr.pth", "legacy.pt", "tiny.safetensors"):
        seeds[name] = (folder / name).read_bytes()
    return seeds


@pytest.fixture(scope="module")
def weights_seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _weights_seeds(tmp_path_factory.mktemp("weights-seeds"))


def _load_any(folder: Path, blob: bytes, suffix: str) -> None:
    path = folder / f"fuzz{suffix}"
    path.write_bytes(blob)
    for load in (read_state_dict, load_weights):
        try:
            load(path)
        except FmenError as exc:
            assert isinstance(exc, WeightsError) and str(exc) and "\n" not in str(exc)
    assert path.read_bytes() == blob


weight_suffixes = st.sampled_from(sorted(SUPPORTED_SUFFIXES))
# Leading bytes that steer the loader into each of its parsers.
prefixes = st.sampled_from([b"", b"\x80\x02", b"\x80\x05", b"PK\x03\x04", struct.pack("<Q", 40) + b"{"])


@pytest.mark.filterwarnings("ignore::UserWarning")
@EXAMPLES
@given(prefix=prefixes, blob=st.binary(min_size=0, max_size=400), suffix=weight_suffixes)
def test_random_bytes_into_the_weights_loader(scratch: Path, prefix: bytes, blob: bytes, suffix: str) -> None:
    _load_any(scratch, prefix + blob, suffix)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(["zip.pt", "basicsr.pth", "legacy.pt", "tiny.safetensors"]),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(min_value=1)),
)
def test_damaged_checkpoints_into_the_weights_loader(
    scratch: Path,
    weights_seeds: dict[str, bytes],
    seed: str,
    edits: list[tuple[int, int]],
    cut: int | None,
) -> None:
    blob = bytearray(weights_seeds[seed])
    for position, value in edits:
        blob[position % len(blob)] = value
    if cut is not None:
        blob = blob[: cut % len(blob) + 1]
    assume(bytes(blob) != weights_seeds[seed])
    _load_any(scratch, bytes(blob), Path(seed).suffix)
