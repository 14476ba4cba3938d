"""The window's "Best quality" setting runs the self-ensemble through the real worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fmen_gui.engine.pipeline import Upscaler
from fmen_gui.weights.loading import load_weights
from tests.conftest import ROOT

WEIGHTS = ROOT / "weights" / "fmen_s_x2.safetensors"


def test_best_quality_setting_averages_the_eight_passes(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, store, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    src = tmp_path / "in" / "pic.png"
    src.parent.mkdir()
    pixels = np.asarray(Image.fromarray(small).resize((40, 30), Image.Resampling.BICUBIC))
    Image.fromarray(pixels).save(src)

    window = make_window(weights=WEIGHTS)
    assert not window.panel.ensemble_check.isChecked()  # off by default: 8× the time
    window.panel.ensemble_check.setChecked(True)
    window.add_paths([src])
    wait_loaded(window, 1)
    with qtbot.waitSignal(window.idle, timeout=120000):
        window.upscale_action.trigger()
    item = window.model.items()[0]
    assert item.status == "done", item.message
    saved = np.asarray(Image.open(item.latest_result().path).convert("RGB"))

    model, desc = load_weights(WEIGHTS)
    up = Upscaler(model, desc, torch.device("cpu"), torch.float32)
    assert np.array_equal(saved, up.upscale_rgb(pixels, tile=0, ensemble=True))
    assert not np.array_equal(saved, up.upscale_rgb(pixels, tile=0))
    # Remembered like every other setting.
    window.shutdown()
    assert store.load().ensemble is True
