"""Models from other projects in the window: import, list, run, compare, remove (issue #15).

Everything goes through the real worker thread (imports load torch there) with tiny seeded
models built by spandrel's own classes (``tests/spandrel_models.py``), the shipped FMEN-S
weights and a crop of a real photograph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image
from PySide6.QtWidgets import QFileDialog, QMessageBox

from fmen_gui.gui.settings import SettingsStore
from fmen_gui.weights import registry
from tests import spandrel_models
from tests.gui.conftest import ROOT

TINY = "4x-Tiny"  # the imported file's stem: the menu names the model by it
TINY_KEY = "4x-tiny"  # the registry's slug of it: the model key


def tiny_esrgan(folder: Path, suffix: str = ".pth") -> Path:
    """A tiny ESRGAN ×4 saved as ``4x-Tiny<suffix>``, as a community model would be named."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = spandrel_models.save("esrgan_x4", folder, suffix=suffix)
    return saved.rename(folder / f"{TINY}{suffix}")


def esrgan_params() -> int:
    return sum(p.numel() for p in spandrel_models.build("esrgan_x4").parameters())


def import_through_window(qtbot, window, path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """File ▸ Import Model… with ``path`` chosen in the dialog; wait for the worker's answer."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.import_action.trigger()
    qtbot.waitUntil(lambda: "Imported" in window.statusBar().currentMessage(), timeout=120000)


def menu_items(window) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Model menu: key -> text (separators left out)."""
    combo = window.panel.model_combo
    return {
        str(combo.itemData(i)): combo.itemText(i)
        for i in range(combo.count())
        if combo.itemData(i) is not None
    }


def choose(window, model: str, scale: int) -> None:  # type: ignore[no-untyped-def]
    panel = window.panel
    panel.model_combo.setCurrentIndex(panel.model_combo.findData(model))
    panel.scale_buttons[scale].setChecked(True)
    assert panel.settings().model == model and panel.settings().scale == scale


def run_current(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.idle, timeout=300000):
        window.upscale_action.trigger()
    item = window.model.items()[0]
    assert item.status == "done", item.message


def test_imported_model_is_listed_chosen_and_remembered(  # type: ignore[no-untyped-def]
    qtbot, make_window, monkeypatch, store, settings_path: Path, tmp_path: Path
) -> None:
    source = tiny_esrgan(tmp_path / "downloads")
    window = make_window()
    assert "Import Model" in window.import_action.text()
    assert not window.remove_model_action.isEnabled()  # FMEN-S is chosen: nothing to remove
    assert "come with the app" in window.remove_model_action.toolTip()

    import_through_window(qtbot, window, source, monkeypatch)
    panel = window.panel
    expected = f"{TINY} — ESRGAN ×4, {registry.params_text(esrgan_params())}"
    assert menu_items(window)[TINY_KEY] == expected
    assert {"fmen", "fmen-s"} <= set(menu_items(window))  # the presets stay
    # The import chose it, at its own scale; the other scales say why they are off.
    assert panel.settings().model == TINY_KEY and panel.settings().scale == 4
    assert panel.scale_buttons[4].isChecked() and panel.scale_buttons[4].isEnabled()
    for s in (2, 3):
        assert not panel.scale_buttons[s].isEnabled()
        assert "×4 model: its scale is fixed" in panel.scale_buttons[s].toolTip()
    assert not panel.kind_combo.isEnabled() and "FMEN presets" in panel.kind_combo.toolTip()
    assert panel.remove_button.isEnabled() and window.remove_model_action.isEnabled()
    assert "ESRGAN" in panel.weights_label.text() and panel.weights_problem() == ""
    assert window.planner.job_label() == f"{TINY} ×4"
    # The file was copied into the data folder; the original is untouched.
    entry = panel.imported_entry()
    assert entry is not None and entry.path.parent == registry.user_weights_dir()
    assert entry.path.read_bytes() == source.read_bytes()

    window.close()  # saves the settings
    assert store.load().model == TINY_KEY
    again = make_window(settings_store=SettingsStore.from_file(str(settings_path)))
    assert again.panel.settings().model == TINY_KEY and again.panel.settings().scale == 4
    # Back to a preset: its scales and the Photo/Clean choice come back.
    choose(again, "fmen-s", 2)
    assert again.panel.kind_combo.isEnabled() and not again.remove_model_action.isEnabled()


def test_remove_model_from_the_window(  # type: ignore[no-untyped-def]
    qtbot, make_window, monkeypatch, store, settings_path: Path, tmp_path: Path
) -> None:
    window = make_window()
    import_through_window(qtbot, window, tiny_esrgan(tmp_path / "downloads", ".safetensors"), monkeypatch)
    entry = window.panel.imported_entry()
    assert entry is not None and entry.path.is_file()
    questions: list[str] = []

    def answer(reply):  # type: ignore[no-untyped-def]
        def ask(_parent, _title, text, *a):  # type: ignore[no-untyped-def]
            questions.append(text)
            return reply

        return ask

    # "No" keeps it.
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    window.remove_model_action.trigger()
    assert questions and TINY in questions[-1] and entry.path.is_file()
    assert TINY_KEY in menu_items(window)

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    window.panel.remove_button.click()
    qtbot.waitUntil(lambda: "Removed" in window.statusBar().currentMessage(), timeout=60000)
    assert TINY_KEY not in menu_items(window)
    assert not entry.path.exists()
    assert registry.imported_models() == []
    assert all(r.get("model") != TINY_KEY for r in registry.read_manifest(registry.user_weights_dir()))
    # It was chosen: the choice falls back to FMEN-S, and that is what is saved.
    assert window.panel.settings().model == "fmen-s"
    assert window.panel.kind_combo.isEnabled() and not window.remove_model_action.isEnabled()
    window.close()
    assert store.load().model == "fmen-s"


def test_a_remembered_model_that_is_gone_falls_back_to_fmen_s(  # type: ignore[no-untyped-def]
    make_window, store, tmp_path: Path
) -> None:
    entry = registry.import_weights(tiny_esrgan(tmp_path / "downloads"))
    from fmen_gui.gui.settings import AppSettings

    store.save(AppSettings(model=entry.model, scale=entry.scale))
    registry.remove_weights(entry)  # e.g. by the command line, while the window was closed
    window = make_window()
    assert window.panel.settings().model == "fmen-s" and window.panel.settings().scale == 4
    assert TINY_KEY not in menu_items(window)


def test_run_an_imported_model_and_compare_it_with_fmen_s(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, monkeypatch, real_small_image: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("FMEN_WEIGHTS_DIR", str(ROOT / "weights"))  # the shipped FMEN-S
    window = make_window()
    window.panel.format_combo.setCurrentIndex(window.panel.format_combo.findData("png"))
    import_through_window(qtbot, window, tiny_esrgan(tmp_path / "downloads"), monkeypatch)
    window.add_paths([real_small_image])
    wait_loaded(window, 1)
    item = window.model.items()[0]
    assert item.expected_out == (96, 96)

    run_current(qtbot, window)  # with the imported model, as chosen by the import
    imported = item.latest_result()
    assert imported.size == (96, 96) and TINY_KEY in imported.path.name
    assert TINY in imported.label
    out = np.asarray(Image.open(imported.path).convert("RGB"))
    assert out.shape == (96, 96, 3)
    # The network the window ran is the imported file's: compare with spandrel running it directly.
    model = spandrel_models.build("esrgan_x4")
    rgb = np.asarray(Image.open(real_small_image).convert("RGB"), dtype=np.float32) / 255
    with torch.no_grad():
        direct = model(torch.from_numpy(rgb).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0)
    direct_u8 = (direct.numpy() * 255).round().astype(np.int16)
    assert np.abs(out.astype(np.int16) - direct_u8).max() <= 1

    choose(window, "fmen-s", 4)
    run_current(qtbot, window)
    choose(window, "fmen-s", 2)
    run_current(qtbot, window)
    assert set(item.results) == {imported.label, "FMEN-S ×4", "FMEN-S ×2"}
    assert item.results["FMEN-S ×4"].path != imported.path  # both files kept

    # Any two results side by side: the user picks each side.
    panel = window.compare
    panel.left_combo.setCurrentIndex(panel.left_combo.findData("FMEN-S ×4"))
    panel.right_combo.setCurrentIndex(panel.right_combo.findData(imported.label))
    left, right = window.view.sources()
    assert left is not None and right is not None
    assert (left.label, right.label) == ("FMEN-S ×4", imported.label)
    assert not left.is_original and not right.is_original
    assert left.image == item.results["FMEN-S ×4"].image and right.image == imported.image
    assert window.view.canvas_size().width() == 96
    # Different scales share the larger one's canvas: the ×2 result is enlarged to match.
    panel.left_combo.setCurrentIndex(panel.left_combo.findData("FMEN-S ×2"))
    left, right = window.view.sources()
    assert left is not None and left.logical_size().width() == 48
    assert window.view.canvas_size().width() == 96
    assert window.view.shown_label(left) == "FMEN-S ×2 (shown enlarged 2×)"
    assert window.view.shown_label(right) == imported.label


def test_hostile_and_wrong_purpose_files_give_one_line_and_add_nothing(  # type: ignore[no-untyped-def]
    qtbot, make_window, monkeypatch, tmp_path: Path
) -> None:
    from tests.test_reliability_cli import _weights_cases, plant_evil_module

    marker = plant_evil_module(tmp_path, monkeypatch)
    folder = tmp_path / "downloads"
    folder.mkdir()
    evil = _weights_cases(folder, marker)["evil-import.pth"][0]
    # A face-restoration model's signature keys (spandrel detects GFPGAN from them).
    face = folder / "GFPGANv1.4.safetensors"
    safetensors.torch.save_file(
        {"toRGB.0.weight": torch.zeros(3, 8, 1, 1), "stylegan_decoder.style_mlp.1.weight": torch.zeros(8, 8)},
        str(face),
    )
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a: warnings.append(text))
    window = make_window()
    before = menu_items(window)
    for n, path in enumerate((evil, face), 1):
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, path=path, **k: (str(path), ""))
        window.import_action.trigger()
        qtbot.waitUntil(lambda n=n: len(warnings) == n, timeout=120000)
        message = warnings[-1]
        assert message and "\n" not in message and "internal error" not in message, message
        assert window.statusBar().currentMessage() == message
    assert "unsafe pickle" in warnings[0], warnings[0]
    assert "GFPGAN is a face-restoration model" in warnings[1], warnings[1]
    assert not marker.exists(), "a hostile pickle ran code"
    assert menu_items(window) == before and window.panel.settings().model == "fmen-s"
    weights = registry.user_weights_dir()
    assert not weights.exists() or not any(weights.iterdir()), "something was installed"


@pytest.fixture(autouse=True)
def _no_real_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected dialog fails the test instead of waiting for a click that never comes."""

    def refuse(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("an unexpected message box")

    monkeypatch.setattr(QMessageBox, "critical", refuse)
