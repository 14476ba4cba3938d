"""The engine runs any image-to-image model spandrel loads, not only FMEN.

Random-weight models of seven architectures (built with spandrel's own classes, see
:mod:`tests.spandrel_models`) are saved as ``.safetensors`` and ``.pth``, loaded through the
engine like a user's file, and run on real image content: output sizes, blended tiles against
the whole image, odd sizes, 16-bit and alpha, one-channel and 1× models, the self-ensemble,
spandrel's tiling advice and the out-of-memory recovery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui.engine.blend import BlendUpscaler, supported_dtype
from fmen_gui.engine.images import ImageData, read_image, write_image
from fmen_gui.engine.jobs import Job
from fmen_gui.engine.pipeline import MIN_TILE, Engine, EngineSettings, Upscaler
from fmen_gui.engine.tiling import plan_tiles
from fmen_gui.errors import Cancelled, EngineError
from tests import spandrel_models
from tests.conftest import BENCHMARK, ROOT

NAMES = list(spandrel_models.BUILDERS)
# Trained networks are calm; default initialisations amplify every input difference to
# saturation. 0.7 is the gain the FMEN tiling tests use on their random networks too.
GAIN = 0.7
# Seed 0's random RRDBNet outputs a black image (every value negative), which would make
# every comparison below vacuous; seed 2's output has texture.
SEEDS = {"esrgan_x4": 2}


def _scale(name: str) -> int:
    return spandrel_models.BUILDERS[name][2]


def _arch(name: str) -> str:
    return spandrel_models.BUILDERS[name][1]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """Real image content (Set14 when available, else a smooth synthetic picture), 128×144."""
    path = BENCHMARK / "Set14" / "x2" / "img_001_SRF_2_LR.png"
    if path.exists():
        return np.array(Image.open(path).convert("RGB"))[60:188, 50:194]
    yy, xx = np.mgrid[0:128, 0:144]
    return np.stack([(xx * 2.5) % 256, (yy * 3.1) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        (name, suffix): spandrel_models.save(name, folder, suffix, seed=SEEDS.get(name, 0), gain=GAIN)
        for name in NAMES
        for suffix in (".safetensors", ".pth")
    }


@pytest.fixture(scope="module")
def engines(model_files: dict[tuple[str, str], Path]) -> Callable[[str], Engine]:
    cache: dict[str, Engine] = {}

    def get(name: str) -> Engine:
        if name not in cache:
            path = model_files[(name, ".safetensors")]
            cache[name] = Engine(EngineSettings(weights=path, device="cpu"))
        return cache[name]

    return get


def _diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def _tileable(up: BlendUpscaler, monkeypatch: pytest.MonkeyPatch) -> BlendUpscaler:
    """The upscaler with spandrel's advice set to SUPPORTED, to measure blending on any model."""
    monkeypatch.setattr(up, "tiling", "supported")
    return up


# --------------------------------------------------------------------------------------------
# Loading and running


@pytest.mark.parametrize("name", NAMES)
def test_both_file_formats_load_and_upscale_by_the_scale(
    name: str, model_files: dict[tuple[str, str], Path], photo: np.ndarray
) -> None:
    rgb = photo[:24, :30]
    results = []
    for suffix in (".safetensors", ".pth"):
        engine = Engine(EngineSettings(weights=model_files[(name, suffix)], device="cpu"))
        assert isinstance(engine.upscaler, BlendUpscaler)
        assert engine.scale == _scale(name) and engine.label == f"{_arch(name)} ×{_scale(name)}"
        assert engine.model_key == name and engine.precision == "fp32"
        assert _arch(name) in engine.kernels
        out = engine.upscale_data(ImageData(rgb=rgb, alpha=None)).rgb
        assert out.shape == (24 * _scale(name), 30 * _scale(name), 3) and out.dtype == np.uint8
        assert out.std() > 2  # a picture, not a flat or saturated field
        results.append(out)
    assert np.array_equal(*results)  # the same weights, whichever the file format


def test_display_name_labels_the_model(model_files: dict[tuple[str, str], Path]) -> None:
    path = model_files[("compact_x2", ".pth")]
    engine = Engine(EngineSettings(weights=path, device="cpu"), display_name="2x-Test")
    assert engine.label == "2x-Test ×2" and engine.descriptor is None


@pytest.mark.parametrize("name", NAMES)
def test_blended_tiles_match_the_whole_image(
    name: str, engines: Callable[[str], Engine], photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = _tileable(engines(name).upscaler, monkeypatch)  # type: ignore[arg-type]
    whole = up.upscale_rgb(photo, tile=0)
    tiled = up.upscale_rgb(photo, tile=32)
    assert len(plan_tiles(*photo.shape[:2], 32)) == 20
    # a box (tile, margin, alignment) is smaller than the image: tiles really cut context
    assert 32 + 2 * up.overlap < min(photo.shape[:2])
    assert whole.shape == (128 * _scale(name), 144 * _scale(name), 3)
    assert _diff(whole, tiled) <= 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(37, 29), (10, 9), (1, 2)])
def test_sizes_the_model_does_not_take_are_padded_and_cropped(
    name: str, size: tuple[int, int], engines: Callable[[str], Engine], photo: np.ndarray
) -> None:
    rgb = np.ascontiguousarray(photo[40 : 40 + size[0], 50 : 50 + size[1]])
    up = engines(name).upscaler
    out = up.upscale_rgb(rgb, tile=0)
    s = _scale(name)
    assert out.shape == (size[0] * s, size[1] * s, 3)
    assert _diff(out, up.upscale_rgb(rgb, tile=MIN_TILE)) <= 1


@pytest.mark.parametrize("name", ["compact_x2", "dncnn_gray_x1"])
def test_sixteen_bit_png_with_alpha_through_a_job(
    name: str, engines: Callable[[str], Engine], photo: np.ndarray, tmp_path: Path
) -> None:
    engine = engines(name)
    rgb8 = np.ascontiguousarray(photo[:40, :52])
    alpha = np.linspace(0, 65535, 40 * 52).reshape(40, 52).astype(np.uint16)
    src = write_image(tmp_path / "deep.png", ImageData(rgb=rgb8.astype(np.uint16) * 257, alpha=alpha))
    before = src.read_bytes()
    result = engine.run(Job(src, out_dir=tmp_path / "out"))
    s = engine.scale
    assert result.dst == tmp_path / "out" / f"deep_{name}_x{s}.png"
    assert src.read_bytes() == before
    out = read_image(result.dst)
    assert out.bit_depth == 16 and out.rgb.shape == (40 * s, 52 * s, 3) and out.alpha is not None
    assert out.alpha.shape == (40 * s, 52 * s)
    # the same network on the 8-bit pixels, rounded to 8 bits, within one level
    out8 = engine.upscaler.upscale_rgb(rgb8, tile=0)
    assert np.abs(out.rgb.astype(np.float64) / 257 - out8).max() <= 1.0


def test_one_channel_model_runs_on_each_colour_plane(
    engines: Callable[[str], Engine], photo: np.ndarray
) -> None:
    engine = engines("dncnn_gray_x1")
    assert engine.scale == 1 and engine.upscaler.per_plane  # type: ignore[attr-defined]
    rgb = np.ascontiguousarray(photo[:30, :40])
    out = engine.upscaler.upscale_rgb(rgb, tile=0)
    assert out.shape == rgb.shape
    assert not np.array_equal(out[..., 0], out[..., 2])  # colour stays colour
    # each plane is what the model makes of that plane alone (a gray image is three equal planes)
    for c in range(3):
        plane = np.repeat(rgb[..., c : c + 1], 3, axis=2)
        gray = engine.upscaler.upscale_rgb(plane, tile=0, grayscale=True)
        assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
        assert np.array_equal(gray[..., 0], out[..., c])


def test_colour_model_on_a_grayscale_image_gives_gray(
    engines: Callable[[str], Engine], photo: np.ndarray
) -> None:
    up = engines("span_x4").upscaler
    gray = np.repeat(photo[:20, :24, :1], 3, axis=2)
    out = up.upscale_rgb(gray, tile=0, grayscale=True)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


@pytest.mark.parametrize("name", ["compact_x2", "dncnn_gray_x1"])
def test_self_ensemble(
    name: str, engines: Callable[[str], Engine], photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = _tileable(engines(name).upscaler, monkeypatch)  # type: ignore[arg-type]
    rgb = np.ascontiguousarray(photo[:100, :112])
    seen: list[tuple[int, int]] = []
    whole = up.upscale_rgb(rgb, tile=0, ensemble=True, progress=lambda d, t: seen.append((d, t)))
    plain = up.upscale_rgb(rgb, tile=0)
    s = _scale(name)
    assert whole.shape == (100 * s, 112 * s, 3)
    assert seen[-1] == (8, 8)  # eight passes of one whole-image tile
    assert not np.array_equal(whole, plain) and _diff(whole, plain) < 64  # a mean of similar passes
    assert _diff(whole, up.upscale_rgb(rgb, tile=32, ensemble=True)) <= 1


# --------------------------------------------------------------------------------------------
# Progress, cancel, memory


def test_progress_and_cancel_per_tile(
    engines: Callable[[str], Engine], photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = _tileable(engines("compact_x2").upscaler, monkeypatch)  # type: ignore[arg-type]
    seen: list[tuple[int, int]] = []
    boxes: list[tuple[int, int, int, int]] = []
    out = up.upscale_rgb(
        photo, tile=64, progress=lambda d, t: seen.append((d, t)), on_tile=lambda o, box: boxes.append(box)
    )
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[-1] == (6, 6)
    assert boxes[-1] == (0, out.shape[0], 0, out.shape[1])  # the final, blended picture
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        up.upscale_rgb(photo, tile=64, progress=progress, cancel=cancel)


def test_memory_estimate_drives_the_plan(engines: Callable[[str], Engine], photo: np.ndarray) -> None:
    engine = engines("compact_x2")
    up = engine.upscaler
    # Compact's widest maps are its 16 features per input pixel, four of them alive
    assert up.bytes_per_pixel() >= 4 * 16 * 4
    assert up.host_bytes(1000, 1000, 128) < up.host_bytes(1000, 1000, 256) < up.host_bytes(1000, 1000, 0)
    assert up.auto_tile(64, 64) == 0
    tile = engines("esrgan_x4").upscaler.auto_tile(4000, 3000)
    assert MIN_TILE <= tile < 3000 and tile % 16 == 0
    rgb = np.ascontiguousarray(np.tile(photo, (2, 2, 1)))  # 256×288
    data = ImageData(rgb=rgb, alpha=None)
    whole = engine.plan(data, tile=0, available=1 << 50)
    assert whole.tile == 0 and whole.notes == ()
    # room for 32-pixel tiles, not for the whole image
    room = whole.needed - (up.host_bytes(256, 288, 0) - up.host_bytes(256, 288, 32)) // 2
    tight = engine.plan(data, tile=0, available=room)
    assert tight.tile > 0 and tight.needed <= room < whole.needed and "tiles" in tight.notes[0]
    out = engine.upscale_data(data, plan=tight).rgb
    assert _diff(out, up.upscale_rgb(rgb, tile=0)) <= 1
    with pytest.raises(EngineError, match="not enough memory"):
        engine.plan(data, tile=0, available=1)


def _oom_above(
    limit: int, attempts: list[tuple[int, int]]
) -> Callable[[BlendUpscaler, torch.Tensor], torch.Tensor]:
    """A BlendUpscaler._forward that fails like the CPU allocator for inputs larger than ``limit``."""
    real = BlendUpscaler._forward

    def forward(self: BlendUpscaler, x: torch.Tensor) -> torch.Tensor:
        attempts.append((int(x.shape[2]), int(x.shape[3])))
        if max(x.shape[2:]) > limit:
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB")
        return real(self, x)

    return forward


@pytest.mark.parametrize("name", ["span_x4", "safmn_x2"])
def test_out_of_memory_shrinks_the_tiles(
    name: str, engines: Callable[[str], Engine], photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = engines(name).upscaler
    reference = up.upscale_rgb(photo, tile=0)
    attempts: list[tuple[int, int]] = []
    monkeypatch.setattr(BlendUpscaler, "_forward", _oom_above(112, attempts))
    assert _diff(up.upscale_rgb(photo, tile=0), reference) <= 1
    assert attempts[0] == (128, 144) and len(attempts) > 2  # the whole image failed, smaller tiles did not
    monkeypatch.setattr(BlendUpscaler, "_forward", _oom_above(20, []))
    with pytest.raises(EngineError, match=f"out of memory on CPU.*even with {MIN_TILE}-pixel tiles"):
        up.upscale_rgb(photo, tile=0)


def test_internal_tiling_never_tiles(
    engines: Callable[[str], Engine], photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engines("compact_x2")
    up = engine.upscaler
    monkeypatch.setattr(up, "tiling", "internal")
    data = ImageData(rgb=np.ascontiguousarray(photo[:64, :80]), alpha=None)
    assert up.resolve_tile(32, 64, 80) == 0 and up.resolve_tile("auto", 4000, 3000) == 0
    whole = engine.plan(data, tile=32, available=1 << 50)
    assert whole.tile == 0
    with pytest.raises(EngineError, match="not enough memory"):
        engine.plan(data, tile=32, available=whole.needed - 1)  # no smaller tile is tried
    attempts: list[tuple[int, int]] = []
    monkeypatch.setattr(BlendUpscaler, "_forward", _oom_above(40, attempts))
    with pytest.raises(EngineError, match="cannot run in tiles") as err:
        engine.upscale_data(data, tile=32)
    assert "\n" not in str(err.value) and attempts == [(64, 80)]


def test_discouraged_tiling_runs_whole_unless_memory_forces_tiles(
    engines: Callable[[str], Engine], photo: np.ndarray
) -> None:
    engine = engines("swinir_x2")
    assert engine.upscaler.tiling == "discouraged"  # type: ignore[attr-defined]
    data = ImageData(rgb=np.ascontiguousarray(np.tile(photo, (2, 2, 1))), alpha=None)  # 256×288
    roomy = engine.plan(data, tile=32, available=1 << 50)
    assert roomy.tile == 0 and roomy.notes == ()
    up = engine.upscaler
    room = roomy.needed - (up.host_bytes(256, 288, 0) - up.host_bytes(256, 288, 32)) // 2
    tight = engine.plan(data, tile=32, available=room)
    assert tight.tile > 0 and any("works best on the whole image" in n for n in tight.notes)
    result = engine.upscale_data(data, plan=tight)
    assert result.rgb.shape == (512, 576, 3) and any("seams" in n for n in result.notes)


def test_precision_follows_what_the_model_supports(model_files: dict[tuple[str, str], Path]) -> None:
    from fmen_gui.weights.models import load_file

    swinir = load_file(model_files[("swinir_x2", ".safetensors")])  # no fp16 in spandrel's book
    dtype, note = supported_dtype(swinir, torch.float16, "auto")
    assert dtype == torch.float32 and note == "SwinIR does not run in fp16: using fp32"
    assert supported_dtype(swinir, torch.bfloat16, "bf16") == (torch.bfloat16, None)
    span = load_file(model_files[("span_x4", ".pth")])
    assert supported_dtype(span, torch.float16, "fp16") == (torch.float16, None)
    assert supported_dtype(span, torch.float32, "fp32") == (torch.float32, None)


def test_fmen_keeps_its_exact_upscaler() -> None:
    engine = Engine(EngineSettings(weights=ROOT / "weights" / "fmen_s_x2.safetensors", device="cpu"))
    assert type(engine.upscaler) is Upscaler and engine.descriptor is not None
    assert engine.label == "FMEN-S ×2" and engine.model_key == "fmen-s"
