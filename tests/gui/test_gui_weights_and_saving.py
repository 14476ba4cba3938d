"""Getting weights from the window (download, import) and saving a result under a new name."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtWidgets import QFileDialog

from fmen_gui.weights import fetch


def test_download_official_then_upscale_with_installed_weights(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, monkeypatch, official_weights: Path, real_small_image: Path
) -> None:
    # A file URL stands in for the network: same bytes, so the SHA-256 check is the real one.
    monkeypatch.setenv(fetch.ENV_OFFICIAL_URL, official_weights.as_uri())
    window = make_window()
    panel = window.panel
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("fmen-s"))
    assert not panel.scale_buttons[4].isEnabled() and panel.weights_problem()
    panel.download_button.click()
    qtbot.waitUntil(lambda: "Downloaded" in window.statusBar().currentMessage(), timeout=60000)
    assert panel.scale_buttons[4].isEnabled() and panel.download_button.isEnabled()
    assert panel.weights_problem() == ""
    assert "FMEN-S ×4 (official)" in panel.weights_label.text()
    # Now the registry, not an explicit file, provides the network.
    panel.scale_buttons[4].setChecked(True)
    window.add_paths([real_small_image])
    wait_loaded(window, 1)
    with qtbot.waitSignal(window.idle, timeout=120000):
        window.start()
    item = window.model.items()[0]
    assert item.status == "done", item.message
    assert item.latest_result().size == (96, 96)


def test_import_weights_enables_their_scale(qtbot, make_window, monkeypatch, official_weights: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(official_weights), ""))
    window = make_window()
    panel = window.panel
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("fmen-s"))
    assert not panel.scale_buttons[4].isEnabled()
    window.import_action.trigger()
    qtbot.waitUntil(lambda: "Imported" in window.statusBar().currentMessage(), timeout=60000)
    assert panel.scale_buttons[4].isEnabled()
    assert "FMEN-S ×4" in panel.scale_buttons[4].toolTip()


def test_importing_a_non_weights_file_says_why(qtbot, make_window, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(junk), ""))
    warnings: list[str] = []
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a: warnings.append(text))
    window = make_window()
    window.import_action.trigger()
    qtbot.waitUntil(lambda: bool(warnings), timeout=60000)
    assert warnings[0] and "\n" not in warnings[0]
    assert not any(b.isEnabled() for b in window.panel.scale_buttons.values())


def test_save_as_reencodes_the_shown_result(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, fake_pipeline, images_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    with qtbot.waitSignal(window.idle, timeout=20000):
        window.start()
    target = tmp_path / "saved" / "copy"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "JPEG (*.jpg)"))
    window.save_action.trigger()
    qtbot.waitUntil(lambda: target.with_suffix(".jpg").exists(), timeout=20000)
    saved = Image.open(target.with_suffix(".jpg"))
    assert saved.format == "JPEG" and saved.size == (96, 96)
