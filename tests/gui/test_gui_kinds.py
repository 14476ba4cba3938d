"""Auto (by input) in the window: each queue item says which network it gets, and why."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import Qt

from fmen_gui.engine.pipeline import Upscaler
from fmen_gui.gui.settings import AppSettings
from fmen_gui.weights.loading import load_weights
from tests.conftest import install_clean_and_photo


def test_auto_picks_per_item_shows_it_and_runs_that_network(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, store, tmp_path: Path
) -> None:
    _clean, photo = install_clean_and_photo(Path(os.environ["FMEN_WEIGHTS_DIR"]))
    store.save(AppSettings(scale=2, output_format="png"))
    rng = np.random.default_rng(8)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((40, 30))
    folder = tmp_path / "in"
    folder.mkdir()
    png, jpg = folder / "scan.png", folder / "phone.jpg"
    small.save(png)
    small.save(jpg, quality=60)

    window = make_window()
    assert window.panel.kind_combo.currentData() == "auto"  # the default
    window.add_paths([png, jpg])
    wait_loaded(window, 2)
    first, second = window.model.items()
    assert (first.kind_choice.kind, second.kind_choice.kind) == ("clean", "photo")
    assert first.size_text().endswith("· Clean") and second.size_text().endswith("· Photo")
    tip = window.model.data(window.model.index(1), Qt.ItemDataRole.ToolTipRole)
    assert "Network: JPEG quality ≈60: photo model" in tip

    # Forcing Clean changes what the queued items will get, on the cards too.
    window.panel.kind_combo.setCurrentIndex(window.panel.kind_combo.findData("clean"))
    assert second.kind_choice.kind == "clean" and second.size_text().endswith("· Clean")
    window.panel.kind_combo.setCurrentIndex(window.panel.kind_combo.findData("auto"))

    with qtbot.waitSignal(window.idle, timeout=120000):
        window.upscale_action.trigger()
    assert [i.status for i in window.model.items()] == ["done", "done"]
    assert second.latest_result().label == "FMEN-S ×2 photo"
    assert first.latest_result().label == "FMEN-S ×2"
    model, desc = load_weights(photo)
    expected = Upscaler(model, desc, torch.device("cpu"), torch.float32).upscale_rgb(
        np.asarray(Image.open(jpg).convert("RGB")), tile=0
    )
    assert np.array_equal(np.asarray(Image.open(second.latest_result().path).convert("RGB")), expected)
    window.shutdown()
    assert store.load().kind == "auto"


def test_a_png_that_was_a_jpeg_is_shown_as_photo_with_the_reason(  # type: ignore[no-untyped-def]
    make_window, wait_loaded, store, tmp_path: Path
) -> None:
    install_clean_and_photo(Path(os.environ["FMEN_WEIGHTS_DIR"]))
    store.save(AppSettings(scale=2, output_format="png"))
    rng = np.random.default_rng(8)
    picture = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize(
        (128, 96), Image.Resampling.BICUBIC
    )
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=60)
    png = tmp_path / "saved-from-the-web.png"
    Image.open(buf).save(png)  # a JPEG once, a PNG now: no tables, the blocks still in its pixels

    window = make_window()
    window.add_paths([png])
    wait_loaded(window, 1)
    (item,) = window.model.items()
    assert item.kind_choice.kind == "photo" and item.size_text().endswith("· Photo")
    tip = window.model.data(window.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "Network: Once a JPEG quality ≈60 (read from its pixels): photo model" in tip
    window.shutdown()
