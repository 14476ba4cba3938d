"""Start-up from the command line, and exceptions in slots becoming visible errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from fmen_gui.gui.app import ErrorReporter, parse_args

ROOT = Path(__file__).resolve().parents[2]


def test_arguments() -> None:
    args = parse_args(["a.png", "folder", "--weights", "w.pt", "--upscale"])
    assert args.files == [Path("a.png"), Path("folder")] and args.weights == Path("w.pt") and args.upscale


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_is_logged_and_shown(qtbot, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self.text()) or 0)
    reporter = ErrorReporter()
    reporter.install()
    try:

        def broken_slot() -> None:
            raise RuntimeError("slot went wrong")

        with caplog.at_level(logging.ERROR):
            QTimer.singleShot(0, broken_slot)
            QTimer.singleShot(0, broken_slot)
            qtbot.waitUntil(lambda: reporter.count == 2, timeout=5000)
    finally:
        reporter.uninstall()
    assert shown and shown[0] == "RuntimeError: slot went wrong"
    assert "slot went wrong" in caplog.text and "Traceback" in caplog.text


def test_command_line_files_are_queued_upscaled_and_captured(
    tmp_path: Path, official_weights: Path, real_small_image: Path
) -> None:
    """``python -m fmen_gui FILE --upscale --screenshot``: the scripted path used for the docs."""
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.open(real_small_image).save(folder / "inside.png")
    shot = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmen_gui",
            str(real_small_image),
            str(folder),
            "--upscale",
            "--weights",
            str(official_weights),
            "--settings",
            str(tmp_path / "s.ini"),
            "--screenshot",
            str(shot),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Destroyed while thread" not in proc.stderr
    assert (real_small_image.parent / "baby24_fmen-s_x4.png").exists()
    assert (folder / "inside_fmen-s_x4.png").exists()
    assert Image.open(shot).size[0] > 800


def test_resources_icon_matches_the_embedded_one() -> None:
    """The desktop-entry icon file and the window icon are one drawing."""
    from fmen_gui.gui.icons import APP_ICON_SVG

    assert (ROOT / "resources" / "fmen-upscaler.svg").read_text(
        encoding="utf-8"
    ).strip() == APP_ICON_SVG.strip()
    assert "Exec=fmen-gui %F" in (ROOT / "resources" / "fmen-upscaler.desktop").read_text(encoding="utf-8")
