"""The "best quality" mode: the geometric self-ensemble (eight flipped/rotated passes)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui.cli import run
from fmen_gui.engine.pipeline import DIHEDRAL, Upscaler, _dihedral, _dihedral_inverse
from fmen_gui.errors import Cancelled
from fmen_gui.weights.loading import load_weights
from fmen_gui.weights.registry import find_weights
from tests.conftest import BENCHMARK, need, outputs_psnr


@pytest.fixture(scope="module")
def shipped_x2() -> Upscaler:
    model, desc = load_weights(find_weights("fmen-s", 2).path)
    return Upscaler(model, desc, torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """An odd-sized crop of real content (so flips move the Winograd blocks off alignment)."""
    path = BENCHMARK / "Set14" / "x2" / "img_001_SRF_2_LR.png"
    if path.exists():
        return np.array(Image.open(path).convert("RGB"))[:77, :95]
    yy, xx = np.mgrid[0:77, 0:95]
    return np.stack([(xx * 2.5) % 256, (yy * 3.1) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)


def test_the_eight_transforms_invert() -> None:
    a = np.arange(6 * 5 * 3).reshape(6, 5, 3)
    seen = set()
    for turns, flip in DIHEDRAL:
        t = _dihedral(a, turns, flip)
        seen.add(t.tobytes())
        assert np.array_equal(_dihedral_inverse(t, turns, flip), a)
    assert len(seen) == 8


@pytest.mark.parametrize("tile", [32, 48])
def test_ensemble_tiled_equals_untiled_bit_for_bit(
    shipped_x2: Upscaler, photo: np.ndarray, tile: int
) -> None:
    whole = shipped_x2.upscale_rgb(photo, tile=0, ensemble=True)
    tiled = shipped_x2.upscale_rgb(photo, tile=tile, ensemble=True)
    assert whole.shape == (154, 190, 3) and whole.dtype == np.uint8
    assert np.array_equal(whole, tiled)
    plain = shipped_x2.upscale_rgb(photo, tile=0)
    assert not np.array_equal(whole, plain)  # it did average something
    assert np.abs(whole.astype(int) - plain.astype(int)).mean() < 2.0  # ...of the same picture


def test_ensemble_16_bit_and_grayscale_tile_exactly(shipped_x2: Upscaler, photo: np.ndarray) -> None:
    deep = photo.astype(np.uint16) * 257 + 100
    whole = shipped_x2.upscale_rgb(deep, tile=0, ensemble=True)
    assert whole.dtype == np.uint16 and np.array_equal(
        whole, shipped_x2.upscale_rgb(deep, tile=32, ensemble=True)
    )
    gray = np.repeat(photo[..., :1], 3, axis=2)
    out = shipped_x2.upscale_rgb(gray, tile=32, grayscale=True, ensemble=True)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert np.array_equal(out, shipped_x2.upscale_rgb(gray, tile=0, grayscale=True, ensemble=True))


def test_ensemble_progress_covers_all_passes_and_cancel_stops_it(
    shipped_x2: Upscaler, photo: np.ndarray
) -> None:
    seen: list[tuple[int, int]] = []
    shipped_x2.upscale_rgb(photo, tile=32, ensemble=True, progress=lambda d, t: seen.append((d, t)))
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1][0] == seen[-1][1] and len({t for _, t in seen}) == 1
    assert seen[-1][1] % 8 == 0
    cancel = threading.Event()

    def stop_early(done: int, _total: int) -> None:
        if done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        shipped_x2.upscale_rgb(photo, tile=32, ensemble=True, progress=stop_early, cancel=cancel)


def test_cli_ensemble_raises_set5_psnr(tmp_path: Path) -> None:
    inputs = sorted(need(BENCHMARK / "Set5" / "x4").glob("*_LR.png"))
    scores = []
    for extra in ([], ["--ensemble"]):
        out = tmp_path / (extra[0][2:] if extra else "plain")
        err = io.StringIO()
        code = run(
            [*map(str, inputs), "-o", str(out), "--scale", "4", "--quiet", *extra],
            stdout=io.StringIO(),
            stderr=err,
        )
        assert code == 0, err.getvalue()
        scores.append(outputs_psnr(inputs, out, 4))
    assert scores[1] > scores[0] + 0.05, scores
