"""The photo models' training inputs, and reading a JPEG's quality (the Auto model choice)."""

from __future__ import annotations

import io
import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmen_gui.engine.jpeg_quality import PHOTO_MAX_QUALITY, estimate_quality, ijg_table, jpeg_quality
from fmen_gui.training.data import PatchSampler
from fmen_gui.training.degrade import CONDITIONS, PHOTO, Degradation, condition, degrade, gaussian_kernel
from tests.conftest import BENCHMARK, need

OFF = Degradation(blur_p=0.0, noise_p=0.0, jpeg_p=0.0)


@pytest.fixture(scope="module")
def hr() -> np.ndarray:
    path = BENCHMARK / "Set14" / "x4" / "img_001_SRF_4_HR.png"
    if path.exists():
        return np.array(Image.open(path).convert("RGB"))[:101, :130]
    rng = np.random.default_rng(0)
    return np.asarray(Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)).resize((130, 101)))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sizes_are_exact_and_values_in_range(hr: np.ndarray, scale: int) -> None:
    for seed in range(12):
        lr = degrade(hr, scale, np.random.default_rng(seed))
        assert lr.shape == (101 // scale, 130 // scale, 3) and lr.dtype == np.uint8


def test_same_seed_same_output_and_seeds_differ(hr: np.ndarray) -> None:
    a = degrade(hr, 4, np.random.default_rng(7))
    assert np.array_equal(a, degrade(hr, 4, np.random.default_rng(7)))
    always = replace(PHOTO, noise_p=1.0)  # every draw differs at least in its noise
    outs = {degrade(hr, 4, np.random.default_rng(s), always).tobytes() for s in range(8)}
    assert len(outs) == 8
    # The mix as trained: most inputs are degraded, a few are left clean (bicubic, nothing else).
    plain = np.asarray(Image.fromarray(hr).resize((130 // 4, 101 // 4), Image.Resampling.BICUBIC))
    untouched = sum(np.array_equal(degrade(hr, 4, np.random.default_rng(s)), plain) for s in range(200))
    assert 15 <= untouched <= 60  # expected ≈ 0.9 × 0.8 × 0.85 × 0.3 × 200 ≈ 37


def test_with_every_step_off_it_is_a_plain_resize(hr: np.ndarray) -> None:
    lr = degrade(hr, 2, np.random.default_rng(0), replace(OFF))
    kernels = [
        np.asarray(Image.fromarray(hr).resize((65, 50), k))
        for k in (Image.Resampling.BICUBIC, Image.Resampling.BILINEAR, Image.Resampling.BOX)
    ]
    assert any(np.array_equal(lr, k) for k in kernels)


def _high_freq(a: np.ndarray) -> float:
    y = a.astype(float).mean(axis=2)
    return float(np.abs(np.diff(y, axis=1)).mean())


def test_each_step_does_what_it_says(hr: np.ndarray) -> None:
    plain = degrade(hr, 2, np.random.default_rng(0), OFF)
    blurred = degrade(hr, 2, np.random.default_rng(0), replace(OFF, blur_p=1.0, blur_sigma=(1.5, 1.5)))
    assert _high_freq(blurred) < _high_freq(plain)
    flat = np.full((64, 64, 3), 128, np.uint8)
    noisy = degrade(
        flat, 2, np.random.default_rng(0), replace(OFF, noise_p=1.0, poisson_p=0.0, noise_sigma=(8, 8))
    )
    assert 5 < noisy.astype(float).std() < 11
    shot = degrade(flat, 2, np.random.default_rng(0), replace(OFF, noise_p=1.0, poisson_p=1.0))
    assert shot.astype(float).std() > 1
    jpeg = degrade(hr, 2, np.random.default_rng(0), replace(OFF, jpeg_p=1.0, jpeg_quality=(30, 30)))
    assert not np.array_equal(jpeg, plain)
    # 8×8 blocks: JPEG's error is larger across block borders than inside them.
    err = np.abs(jpeg.astype(float) - plain.astype(float)).mean(axis=2)
    assert err.mean() > 1


def test_kernel_is_normalised_and_rotates() -> None:
    k = gaussian_kernel(7, 2.0, 0.5, 0.0)
    assert k.sum() == pytest.approx(1.0) and k[3].sum() > k[:, 3].sum()
    turned = gaussian_kernel(7, 2.0, 0.5, np.pi / 2)
    assert np.allclose(turned, k.T, atol=1e-9)


def test_ranges_are_written_down() -> None:
    """Every field goes into the manifest, as JSON (tuples as lists), and reads back the same."""
    d = json.loads(json.dumps(PHOTO.describe()))
    assert set(d) == {f.name for f in fields(Degradation)}
    assert Degradation(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}) == PHOTO


@pytest.mark.parametrize(
    "bad",
    [
        {"jpeg_p": 1.5},
        {"noise_p": -0.1},
        {"blur_sigma": (0.8, 0.2)},
        {"noise_sigma": (0.0, 5.0)},
        {"jpeg_quality": (50, 101)},
        {"blur_kernel": 6},
        {"resize_weights": (0.0, 0.0, 0.0)},
        {"resize_weights": (1.0, 0.0)},
    ],
)
def test_impossible_mixes_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        replace(PHOTO, **bad)


def test_named_conditions(hr: np.ndarray) -> None:
    lr = np.ascontiguousarray(hr[:64, :80])
    made = {how: condition(lr, how, 3) for how in CONDITIONS}
    assert made["clean"][0] is lr and made["clean"][1] is None
    errors = {}
    for how, (out, data) in made.items():
        assert out.shape == lr.shape and out.dtype == np.uint8
        errors[how] = np.abs(out.astype(float) - lr).mean()
        if how.startswith("jpeg"):  # the bytes are the JPEG that was decoded, at that quality
            assert data is not None and data[:2] == b"\xff\xd8"
            assert estimate_quality(Image.open(io.BytesIO(data)).quantization) == int(how[4:])
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), out)
    assert errors["jpeg95"] < errors["jpeg75"] < errors["jpeg50"]
    assert 3 < errors["noise5"] < 5  # E|N(0, 5)| = 4.0, a little less where clipped
    assert np.array_equal(condition(lr, "noise5", 3)[0], made["noise5"][0])
    assert not np.array_equal(condition(lr, "noise5", 4)[0], made["noise5"][0])
    with pytest.raises(ValueError, match="condition must be one of"):
        condition(lr, "jpeg10", 0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        degrade(np.zeros((3, 3, 3), np.uint8), 4, np.random.default_rng(0))
    with pytest.raises(ValueError):
        degrade(np.zeros((8, 8), np.uint8), 2, np.random.default_rng(0))


def test_sampler_degrades_patches_on_the_fly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(path)
    clean = PatchSampler([path], 2, np.random.default_rng(1))
    photo = PatchSampler([path], 2, np.random.default_rng(1), PHOTO)
    (la, ha), (lb, hb) = clean.batch(4, 16), photo.batch(4, 16)
    assert la.shape == lb.shape == (4, 16, 16, 3) and ha.shape == hb.shape == (4, 32, 32, 3)
    for lr, hr in zip(lb, hb, strict=True):  # each LR is its own HR patch, degraded
        down = np.asarray(Image.fromarray(hr).resize((16, 16), Image.Resampling.BOX)).astype(float)
        assert np.abs(down - lr).mean() < 40
    again = PatchSampler([path], 2, np.random.default_rng(1), PHOTO).batch(4, 16)
    assert np.array_equal(again[0], lb) and not np.array_equal(la, lb)


# ------------------------------------------------------------------------ JPEG quality


@pytest.mark.parametrize("quality", [5, 20, 50, 51, 75, 90, 95, 100])
def test_pillow_jpeg_quality_is_read_back_exactly(quality: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(quality)
    path = tmp_path / "q.jpg"
    Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(path, quality=quality)
    assert jpeg_quality(path) == quality


def test_tables_follow_the_ijg_scaling() -> None:
    assert ijg_table(50)[:3] == [16, 11, 10]
    assert set(ijg_table(100)) == {1}
    assert estimate_quality(None) is None and estimate_quality({1: [1] * 64}) is None


def test_not_a_jpeg_has_no_quality(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    assert (
        jpeg_quality(png) is None
        and jpeg_quality(bad) is None
        and jpeg_quality(tmp_path / "none.jpg") is None
    )


def test_auto_threshold_separates_web_jpegs_from_near_lossless() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, "JPEG", quality=75)
    buf.seek(0)
    with Image.open(buf) as im:
        q = estimate_quality(im.quantization)
    assert q is not None and q <= PHOTO_MAX_QUALITY < 95


def test_set5_pngs_have_no_jpeg_quality() -> None:
    for png in sorted(need(BENCHMARK / "Set5" / "x4").glob("*.png")):
        assert jpeg_quality(png) is None
