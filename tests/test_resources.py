"""resources/: the desktop entry, the app icon in every size and format, the self-test's sample,
and ``make install-desktop`` / ``make uninstall-desktop``."""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "resources"
DESKTOP = RES / "fmen-upscaler.desktop"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
IMAGE_MIME_TYPES = {"image/png", "image/jpeg", "image/webp", "image/tiff", "image/bmp", "image/gif"}


def desktop_entry(path: Path = DESKTOP) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    assert parser.sections() == ["Desktop Entry"]
    return dict(parser["Desktop Entry"])


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fmen_resources_generate", RES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- desktop entry


def test_desktop_entry_passes_desktop_file_validate() -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate is not installed (Debian/Ubuntu: desktop-file-utils)")
    proc = subprocess.run([tool, str(DESKTOP)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in (proc.stdout + proc.stderr).lower()


def test_desktop_entry_opens_dropped_images() -> None:
    entry = desktop_entry()
    assert entry["Type"] == "Application" and entry["Name"] == "FMEN Upscaler"
    assert entry["Exec"].endswith(" %F")  # any number of files, dropped or "Open with"
    assert entry["Terminal"] == "false"
    mime = {m for m in entry["MimeType"].split(";") if m}
    assert mime >= IMAGE_MIME_TYPES and all(m.startswith("image/") for m in mime)


def test_desktop_entry_matches_the_running_window() -> None:
    """Icon name, desktop-file name (Wayland app id) and WM_CLASS (X11) all point at the entry."""
    from fmen_gui.gui.settings import APPLICATION

    entry = desktop_entry()
    assert entry["Icon"] == "fmen-upscaler" == DESKTOP.stem
    assert f'setDesktopFileName("{DESKTOP.stem}")' in (ROOT / "fmen_gui" / "gui" / "app.py").read_text(
        encoding="utf-8"
    )
    # Qt on X11 sets WM_CLASS to (program name, application name); the class part is the same
    # whether the venv script or the bundle runs, so the entry names that.
    assert entry["StartupWMClass"] == APPLICATION


# --------------------------------------------------------------------------- icons


def test_svg_master_is_square_svg() -> None:
    root = ET.parse(RES / "fmen-upscaler.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _x, _y, w, h = (float(v) for v in root.attrib["viewBox"].split())
    assert w == h > 0


@pytest.mark.parametrize("size", PNG_SIZES)
def test_png_icon_sizes(size: int) -> None:
    with Image.open(RES / "icons" / f"fmen-upscaler-{size}.png") as im:
        assert im.format == "PNG" and im.size == (size, size) and im.mode == "RGBA"
        alpha = np.asarray(im)[..., 3]
    assert alpha[0, 0] == 0 and alpha[size // 2, size // 2] == 255  # rounded corners, solid middle


def test_png_icons_are_renders_of_the_svg(qapp: object) -> None:
    """Regenerate with resources/generate.py after editing the SVG (this catches forgetting)."""
    fresh = np.asarray(generator().render_svg((RES / "fmen-upscaler.svg").read_bytes(), 64), dtype=float)
    committed = np.asarray(Image.open(RES / "icons" / "fmen-upscaler-64.png").convert("RGBA"), dtype=float)
    assert np.abs(fresh - committed).mean() < 2.0


def test_ico_holds_several_sizes() -> None:
    with Image.open(RES / "fmen-upscaler.ico") as im:
        assert im.format == "ICO"
        sizes = set(im.info["sizes"])
    assert {(16, 16), (24, 24), (32, 32), (48, 48), (256, 256)} <= sizes


def test_icns_for_macos() -> None:
    with Image.open(RES / "fmen-upscaler.icns") as im:
        assert im.format == "ICNS" and im.size[0] >= 512 and im.size[0] == im.size[1]


# --------------------------------------------------------------------------- sample


def test_sample_image_for_the_self_test() -> None:
    path = RES / "sample.png"
    assert path.stat().st_size < 16_000
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        w, h = im.size
        pixels = np.asarray(im)
    assert 64 <= w <= 128 and 48 <= h <= 96
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_sample_image_is_the_generated_one() -> None:
    drawn = np.asarray(generator().draw_sample(), dtype=int)
    committed = np.asarray(Image.open(RES / "sample.png"), dtype=int)
    assert drawn.shape == committed.shape
    assert np.abs(drawn - committed).mean() < 1.0


# --------------------------------------------------------------------------- make install-desktop


def _make(target: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def make_env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "share")
    return env


def _installed(data: Path) -> list[Path]:
    icons = data / "icons" / "hicolor"
    return [
        data / "applications" / "fmen-upscaler.desktop",
        icons / "scalable" / "apps" / "fmen-upscaler.svg",
        *(icons / f"{n}x{n}" / "apps" / "fmen-upscaler.png" for n in PNG_SIZES),
    ]


def test_install_and_uninstall_desktop(make_env: dict[str, str], tmp_path: Path) -> None:
    launcher = tmp_path / "my apps" / "fmen upscaler"  # spaces survive the Exec quoting
    launcher.parent.mkdir()
    launcher.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    launcher.chmod(0o755)
    data = Path(make_env["XDG_DATA_HOME"])

    proc = _make("install-desktop", make_env, f"DESKTOP_EXEC={launcher}")
    assert proc.returncode == 0, proc.stderr
    for path in _installed(data):
        assert path.is_file(), path
    entry_path = data / "applications" / "fmen-upscaler.desktop"
    entry = desktop_entry(entry_path)
    assert entry["Exec"] == f'"{launcher}" %F'
    assert entry["TryExec"] == str(launcher)
    assert entry["Icon"] == "fmen-upscaler"
    assert Image.open(data / "icons" / "hicolor" / "48x48" / "apps" / "fmen-upscaler.png").size == (48, 48)
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry_path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    proc = _make("uninstall-desktop", make_env)
    assert proc.returncode == 0, proc.stderr
    for path in _installed(data):
        assert not path.exists(), path


def test_install_desktop_defaults_to_the_venv_script(make_env: dict[str, str]) -> None:
    script = ROOT / ".venv" / "bin" / "fmen-gui"
    if not script.is_file():
        pytest.skip("needs .venv/bin/fmen-gui (make run creates it)")
    proc = _make("install-desktop", make_env)
    assert proc.returncode == 0, proc.stderr
    entry = desktop_entry(Path(make_env["XDG_DATA_HOME"]) / "applications" / "fmen-upscaler.desktop")
    assert entry["Exec"] == f'"{script}" %F'


def test_install_desktop_without_xdg_data_home_uses_the_home_folder(
    make_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in make_env.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(tmp_path / "home")
    proc = _make("install-desktop", env, "DESKTOP_EXEC=/bin/sh")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "home" / ".local" / "share" / "applications" / "fmen-upscaler.desktop").is_file()
    assert _make("uninstall-desktop", env).returncode == 0
    assert not (tmp_path / "home" / ".local" / "share" / "applications" / "fmen-upscaler.desktop").exists()


@pytest.mark.parametrize("exe", ["relative/fmen-gui", "/nonexistent/fmen-gui", '/tmp/a"b'])
def test_install_desktop_refuses_a_bad_launcher(make_env: dict[str, str], exe: str) -> None:
    proc = _make("install-desktop", make_env, f"DESKTOP_EXEC={exe}")
    assert proc.returncode != 0
    assert "install-desktop:" in proc.stderr
    assert not (Path(make_env["XDG_DATA_HOME"]) / "applications" / "fmen-upscaler.desktop").exists()
