"""The one job pipeline's rules as the window applies them (the CLI's side: tests/test_jobs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)
    return path


def test_folder_drops_skip_hidden_folders_and_the_results_of_the_template_in_use(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, fake_pipeline, tmp_path: Path
) -> None:
    folder = tmp_path / "pics"
    _png(folder / "a.png")
    _png(folder / "a-big.png")  # a result of the template below
    _png(folder / "b_fmen-s_x4.png")  # a result of the default template: a picture here
    _png(folder / ".cache" / "c.png")
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.panel.template_edit.setText("{stem}-big")
    window.add_paths([folder])
    wait_loaded(window, 2)
    assert sorted(i.name for i in window.model.items()) == ["a.png", "b_fmen-s_x4.png"]


def test_a_name_that_lands_on_the_input_is_numbered_and_the_input_kept(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, fake_pipeline, tmp_path: Path
) -> None:
    src = _png(tmp_path / "in" / "a.png")
    before = src.read_bytes()
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.panel.template_edit.setText("{stem}")
    window.panel.format_combo.setCurrentIndex(window.panel.format_combo.findData("png"))
    window.add_paths([src])
    wait_loaded(window, 1)
    with qtbot.waitSignal(window.idle, timeout=20000):
        window.start()
    item = window.model.items()[0]
    assert item.status == "done", item.message
    assert item.latest_result().path.name == "a (2).png"
    assert src.read_bytes() == before
