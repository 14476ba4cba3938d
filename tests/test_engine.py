"""The engine: exact tiling, sizes, progress, cancel and out-of-memory recovery."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui.arch.detect import describe
from fmen_gui.arch.fmen import FMEN, preset_config
from fmen_gui.engine.jobs import output_path, unique_path
from fmen_gui.engine.pipeline import Upscaler
from fmen_gui.engine.tiling import Tile, plan_tiles
from fmen_gui.errors import Cancelled, EngineError, ImageError
from tests.conftest import BENCHMARK, need


def _random_fmen_s(scale: int = 4, seed: int = 0) -> Upscaler:
    """FMEN-S with fixed random weights: tiling exactness does not depend on trained values."""
    torch.manual_seed(seed)
    model = FMEN(preset_config("fmen-s", scale)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.7)
    return Upscaler(model, describe(model.config, model), torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def upscaler() -> Upscaler:
    return _random_fmen_s()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """Real image content (Set14 when available, else a smooth synthetic picture)."""
    path = BENCHMARK / "Set14" / "x4" / "img_001_SRF_4_LR.png"
    if path.exists():
        return np.array(Image.open(path).convert("RGB"))[:83, :101]
    yy, xx = np.mgrid[0:83, 0:101]
    return np.stack([(xx * 2.5) % 256, (yy * 3.1) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("tile", [32, 48, 100])
def test_tiled_equals_untiled_bit_for_bit(upscaler: Upscaler, photo: np.ndarray, tile: int) -> None:
    whole = upscaler.upscale_rgb(photo, tile=0)
    tiled = upscaler.upscale_rgb(photo, tile=tile)
    assert len(plan_tiles(*photo.shape[:2], tile)) > 1
    assert whole.dtype == np.uint8 and whole.shape == (83 * 4, 101 * 4, 3)
    assert np.array_equal(whole, tiled)


def test_official_weights_tile_exactly(njujet: Path, photo: np.ndarray) -> None:
    from fmen_gui.weights.loading import load_weights

    model, desc = load_weights(njujet)
    up = Upscaler(model, desc, torch.device("cpu"), torch.float32)
    whole = up.upscale_rgb(photo, tile=0)
    for tile in (32, 48, 100):
        assert np.array_equal(whole, up.upscale_rgb(photo, tile=tile))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (1, 2), (3, 1), (7, 5), (33, 17)])
def test_output_is_exactly_scale_times_input(size: tuple[int, int], scale: int) -> None:
    up = _random_fmen_s(scale)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    out = up.upscale_rgb(rgb, tile=0)
    assert out.shape == (size[0] * scale, size[1] * scale, 3)
    assert np.array_equal(out, up.upscale_rgb(rgb, tile=32))


def test_sixteen_bit_and_grayscale(upscaler: Upscaler, photo: np.ndarray) -> None:
    rgb16 = photo.astype(np.uint16) * 257
    out16 = upscaler.upscale_rgb(rgb16, tile=0)
    out8 = upscaler.upscale_rgb(photo, tile=0)
    assert out16.dtype == np.uint16
    # same network, 16-bit output keeps the fine values the 8-bit one rounds away
    assert np.abs(out16.astype(np.int64) / 257 - out8).max() <= 0.51
    gray = upscaler.upscale_rgb(photo, tile=48, grayscale=True)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])


def test_progress_is_monotonic_and_ends_at_total(upscaler: Upscaler, photo: np.ndarray) -> None:
    seen: list[tuple[int, int]] = []
    boxes: list[tuple[int, int, int, int]] = []
    upscaler.upscale_rgb(
        photo, tile=32, progress=lambda d, t: seen.append((d, t)), on_tile=lambda out, box: boxes.append(box)
    )
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[-1][0] == seen[-1][1] == len(boxes) == 12
    covered = np.zeros((83 * 4, 101 * 4), bool)
    for y0, y1, x0, x1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def test_cancel_stops_between_tiles(upscaler: Upscaler, photo: np.ndarray) -> None:
    cancel = threading.Event()
    calls: list[int] = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        upscaler.upscale_rgb(photo, tile=32, progress=progress, cancel=cancel)
    assert max(calls) == 2


class _OomAbove(Upscaler):
    """Raises the CPU allocator's error for any input wider or taller than ``limit``."""

    limit = 64
    attempts: list[tuple[int, int]]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        self.attempts.append(tuple(x.shape[2:]))
        if max(x.shape[2:]) > self.limit:
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB")
        return super()._forward(x)


def test_out_of_memory_halves_the_tile_and_stays_exact(upscaler: Upscaler, photo: np.ndarray) -> None:
    photo = np.concatenate([photo, photo[:, :20]], axis=1)  # 83×121
    reference = upscaler.upscale_rgb(photo, tile=0)
    oom = _OomAbove(upscaler.model, upscaler.descriptor, upscaler.device, upscaler.dtype)
    oom.attempts = []
    oom.limit = 32 + 2 * 34 + 1  # only 32-pixel tiles fit (plus context, plus one for even corners)
    assert np.array_equal(oom.upscale_rgb(photo, tile=0), reference)
    assert len(oom.attempts) > 4
    oom.limit = 10
    with pytest.raises(EngineError, match="out of memory"):
        oom.upscale_rgb(photo, tile=0)


def test_tile_grid_halves_into_whole_tiles() -> None:
    big = plan_tiles(100, 70, 64)
    small = plan_tiles(100, 70, 32)
    for t in small:
        assert sum(t.within(b) for b in big) == 1
    assert plan_tiles(5, 5, 0) == [Tile(0, 5, 0, 5)]


def test_auto_tile_fits_the_budget(upscaler: Upscaler) -> None:
    assert upscaler.auto_tile(100, 100) == 0
    tile = upscaler.auto_tile(4000, 3000)
    assert 32 <= tile < 4000 and tile % 16 == 0


def test_output_names(tmp_path: Path) -> None:
    src = tmp_path / "holiday photo.JPG"
    assert output_path(src, model_key="fmen-s", scale=4).name == "holiday photo_fmen-s_x4.jpg"
    assert output_path(src, model_key="fmen", scale=2, fmt="png").name == "holiday photo_fmen_x2.png"
    assert output_path(tmp_path / "a.gif", model_key="fmen", scale=3).suffix == ".png"
    assert output_path(src, model_key="fmen", scale=2, out_dir=tmp_path / "o").parent == tmp_path / "o"
    with pytest.raises(ImageError, match="template"):
        output_path(src, model_key="fmen", scale=2, template="{nope}")
    taken = tmp_path / "x.png"
    taken.write_bytes(b"")
    assert unique_path(taken).name == "x (2).png"


def test_set5_psnr_through_the_engine(njujet: Path) -> None:
    from fmen_gui.metrics import psnr_y
    from fmen_gui.weights.loading import load_weights

    model, desc = load_weights(njujet)
    up = Upscaler(model, desc, torch.device("cpu"), torch.float32)
    lr = need(BENCHMARK / "Set5" / "x4" / "img_002_SRF_4_LR.png")
    hr = np.array(Image.open(str(lr).replace("_LR", "_HR")).convert("RGB"))
    out = up.upscale_rgb(np.array(Image.open(lr).convert("RGB")), tile=0)
    assert psnr_y(out, hr, 4) > 34.0
