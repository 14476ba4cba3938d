"""Settings persistence: every choice survives a restart; bad stored values never break start-up."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from fmen_gui.gui.settings import AppSettings, SettingsStore


def test_store_round_trip(settings_path: Path) -> None:
    store = SettingsStore.from_file(str(settings_path))
    chosen = AppSettings(
        model="fmen",
        scale=2,
        device="cuda:1",
        precision="fp16",
        tile=256,
        output_dir="/tmp/out",
        output_format="webp",
        quality=80,
        template="{stem}-up",
        theme="light",
        view_mode="side",
        smooth=True,
        geometry=b"\x01\x02",
    )
    store.save(chosen)
    again = SettingsStore.from_file(str(settings_path)).load()
    assert again == chosen


def test_malformed_values_fall_back_to_defaults(settings_path: Path) -> None:
    raw = QSettings(str(settings_path), QSettings.Format.IniFormat)
    for key, value in {
        "model": "gpt",
        "scale": "seven",
        "tile": "-5",
        "quality": "500",
        "output_format": "bmp",
        "theme": "auto",
        "view_mode": "3d",
        "smooth": "yes",
    }.items():
        raw.setValue(key, value)
    raw.sync()
    loaded = SettingsStore.from_file(str(settings_path)).load()
    defaults = AppSettings()
    assert loaded.model == defaults.model and loaded.scale == defaults.scale
    assert loaded.tile == defaults.tile and loaded.quality == 100
    assert (
        loaded.output_format == defaults.output_format == ""
        and loaded.theme == "dark"
        and loaded.view_mode == "slider"
    )
    assert loaded.smooth is True


def test_settings_survive_a_restart(qtbot, make_window, settings_path: Path, store) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    panel = window.panel
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("fmen"))
    panel.scale_buttons[3].setChecked(True)
    panel.tile_spin.setValue(192)
    panel.folder_edit.setText("/tmp/results")
    panel.format_combo.setCurrentIndex(panel.format_combo.findData("jpg"))
    panel.quality_spin.setValue(77)
    panel.template_edit.setText("{stem}@{scale}x")
    window.light_action.trigger()
    window.side_action.trigger()
    window.smooth_action.trigger()
    window.close()  # saves

    again = make_window(settings_store=SettingsStore.from_file(str(settings_path)))
    p = again.panel.settings()
    assert (p.model, p.scale, p.tile, p.output_dir, p.output_format, p.quality, p.template) == (
        "fmen",
        3,
        192,
        "/tmp/results",
        "jpg",
        77,
        "{stem}@{scale}x",
    )
    assert again.settings.theme == "light" and again.light_action.isChecked()
    assert again.view.mode == "side" and again.side_action.isChecked()
    assert again.view.smooth and again.smooth_action.isChecked()
    assert again.panel.quality_spin.isEnabled()  # JPEG has a quality
    again.dark_action.trigger()  # leave the application in the default theme for other tests
