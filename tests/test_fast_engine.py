"""The fast CPU engine: fused convolutions, the composed stem, fixed-size tile boxes, bf16.

The default fp32 path must stay bit-exact between tiles and whole images, whichever kernels
it uses; the fused kernels must compute the same network as the plain layers; the bf16 fast
path may cost at most 0.05 dB on Set5.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui.arch.detect import describe
from fmen_gui.arch.fmen import FMEN, preset_config
from fmen_gui.engine import devices
from fmen_gui.engine.backends import cpu_fused, winograd
from fmen_gui.engine.backends.cpu_fused import CpuFused, compose_conv3x3
from fmen_gui.engine.pipeline import Upscaler
from fmen_gui.engine.tiling import Tile, plan_tiles
from tests.conftest import BENCHMARK, need

FUSED = cpu_fused._POINTWISE


def _model(key: str = "fmen-s", scale: int = 4, seed: int = 0) -> FMEN:
    torch.manual_seed(seed)
    model = FMEN(preset_config(key, scale)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.7)
    return model


def _photo(height: int, width: int) -> np.ndarray:
    path = BENCHMARK / "Set14" / "x4" / "img_003_SRF_4_LR.png"
    if path.exists():
        return np.array(Image.open(path).convert("RGB"))[:height, :width]
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([(xx * 2.5) % 256, (yy * 3.1) % 256, (xx * yy) % 256], axis=-1).astype(np.uint8)


@pytest.mark.skipif(not FUSED, reason="this PyTorch build has no oneDNN fused convolutions")
def test_fused_path_computes_the_plain_network() -> None:
    ref = _model()  # the network's own forward: stock layers
    x = torch.from_numpy(_photo(45, 61).copy()).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        fused = CpuFused(ref).forward_features(x.contiguous(memory_format=torch.channels_last))
        plain = ref.forward_features(x)
    assert fused.abs().max() > 10.0, "a vacuous comparison"
    assert (fused - plain).abs().max().item() < 2e-3


@pytest.mark.skipif(not FUSED, reason="this PyTorch build has no oneDNN fused convolutions")
def test_the_fused_path_is_the_one_the_engine_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = CpuFused._forward_fused

    def spy(self: CpuFused, x: torch.Tensor) -> torch.Tensor:
        calls.append("fused")
        return real(self, x)

    monkeypatch.setattr(CpuFused, "_forward_fused", spy)
    model = _model()
    up = Upscaler(model, describe(model.config, model), torch.device("cpu"), torch.float32)
    up.upscale_rgb(_photo(20, 20), tile=0)
    assert calls == ["fused"]


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (3, 2), (4, 4), (9, 13)])
def test_composed_stem_equals_the_two_layers_everywhere(size: tuple[int, int]) -> None:
    model = _model()
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(3)) * 255
    with torch.inference_mode():
        stem = CpuFused(model)._stem(x.contiguous(memory_format=torch.channels_last))
        two = model.warmup[0](model.head(x))
    assert (stem - two).abs().max().item() <= 1e-6 * two.abs().max().item() + 1e-4


def test_compose_conv3x3_is_the_composition_in_float64() -> None:
    torch.manual_seed(1)
    inner, outer = torch.nn.Conv2d(3, 7, 3, padding=1).double(), torch.nn.Conv2d(7, 5, 3, padding=1).double()
    weight, bias = compose_conv3x3(outer, inner, torch.float64)
    x = torch.randn(1, 3, 12, 10, dtype=torch.float64)
    with torch.no_grad():
        direct = outer(inner(x))
        composed = torch.nn.functional.conv2d(x, weight, bias, padding=2)
    # Equal away from the outermost ring, where the outer layer sees the inner one's zero padding.
    assert torch.allclose(direct[..., 1:-1, 1:-1], composed[..., 1:-1, 1:-1], atol=1e-10)
    assert not torch.allclose(direct, composed, atol=1e-6), "the border ring needs its correction"


@pytest.fixture
def winograd_build(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], bool]]:
    """``select("avx2")`` switches the kernel to that build; False where it cannot run here."""

    def select(name: str) -> bool:
        if name == "avx2":
            monkeypatch.setenv("FMEN_WINOGRAD_ISA", "avx2")
        winograd.reset()
        return winograd.isa() == name

    yield select
    monkeypatch.delenv("FMEN_WINOGRAD_ISA", raising=False)
    winograd.reset()


@pytest.mark.parametrize("path", ["winograd-avx512", "winograd-avx2", "onednn-fused", "separate-ops"])
@pytest.mark.parametrize("tile", [32, 40, 64])
def test_every_cpu_path_tiles_bit_exactly(
    monkeypatch: pytest.MonkeyPatch, winograd_build: Callable[[str], bool], path: str, tile: int
) -> None:
    if path != "separate-ops" and not FUSED:
        pytest.skip("this PyTorch build has no oneDNN fused convolutions")
    if path.startswith("winograd") and not winograd_build(path.split("-")[1]):
        pytest.skip(f"the {path} kernel is not built here or this CPU cannot run it")
    monkeypatch.setattr(cpu_fused, "_POINTWISE", path != "separate-ops")
    if not path.startswith("winograd"):
        monkeypatch.setattr(winograd, "available", lambda: False)
    model = _model(seed=tile)
    up = Upscaler(model, describe(model.config, model), torch.device("cpu"), torch.float32)
    photo = _photo(77, 93)
    whole = up.upscale_rgb(photo, tile=0)
    assert np.array_equal(whole, up.upscale_rgb(photo, tile=tile))


def test_fmen_tiles_bit_exactly_too() -> None:
    model = _model("fmen", 2)
    up = Upscaler(model, describe(model.config, model), torch.device("cpu"), torch.float32)
    photo = _photo(70, 101)
    assert np.array_equal(up.upscale_rgb(photo, tile=0), up.upscale_rgb(photo, tile=48))


def test_tile_boxes_have_one_size_even_corners_and_hold_their_context() -> None:
    for height, width in [(130, 205), (131, 204), (300, 300)]:
        tile, margin = 48, 34
        sizes = set()
        for t in plan_tiles(height, width, tile):
            box = t.box(margin, tile, height, width)
            sizes.add((box.y1 - box.y0, box.x1 - box.x0))
            assert t.padded(margin, height, width).within(box)
            assert box.y0 % 2 == 0 and box.x0 % 2 == 0, "Winograd blocks must align with the image's"
            assert box.y0 >= 0 and box.y1 <= height and box.x0 >= 0 and box.x1 <= width
        full = tile + 2 * margin
        # One size, plus one pixel more where a box at an odd-sized edge had to start earlier.
        assert {h for h, _ in sizes} <= {full, full + 1} and {w for _, w in sizes} <= {full, full + 1}
    # Smaller than one box: the box is the image.
    assert Tile(0, 20, 0, 30).box(34, 48, 20, 30) == Tile(0, 20, 0, 30)
    assert Tile(0, 5, 0, 5).box(34, 0, 5, 5) == Tile(0, 5, 0, 5)


@pytest.mark.skipif(not devices.cpu_bf16_native(), reason="this CPU has no native bf16 arithmetic")
def test_bf16_fast_path_costs_at_most_five_hundredths_of_a_db(njujet: Path) -> None:
    from fmen_gui.metrics import psnr_y
    from fmen_gui.weights.loading import load_weights

    lr_paths = sorted(need(BENCHMARK / "Set5" / "x4").glob("*_LR.png"))
    exact = Upscaler(*load_weights(njujet), torch.device("cpu"), torch.float32)
    fast = Upscaler(*load_weights(njujet), torch.device("cpu"), torch.bfloat16)
    a, b = [], []
    for lr_path in lr_paths:
        lr = np.array(Image.open(lr_path).convert("RGB"))
        hr = np.array(Image.open(str(lr_path).replace("_LR", "_HR")).convert("RGB"))
        a.append(psnr_y(exact.upscale_rgb(lr, tile=0), hr, 4))
        b.append(psnr_y(fast.upscale_rgb(lr, tile=0), hr, 4))
    assert len(a) == 5
    cost = float(np.mean(a) - np.mean(b))
    print(
        f"\nSet5 ×4 official FMEN-S: fp32 {np.mean(a):.3f} dB, bf16 {np.mean(b):.3f} dB, cost {cost:.3f} dB"
    )
    assert abs(np.mean(a) - 32.12) < 0.01
    assert cost <= 0.05
