"""The real app on a real X server: Xvfb, Qt's xcb platform, the window mapped and painted.

Every other GUI test uses Qt's offscreen platform, which needs none of the X11/xcb system
libraries, so they would all pass on a machine where ``make run`` cannot open a window. This
test starts ``python -m fmen_gui`` the way ``make run`` does, with ``QT_QPA_PLATFORM=xcb``, on
an Xvfb display of its own: it proves that the libraries ``scripts/system-deps.sh`` lists (and
checks) are what the window needs. CI (``.ci/run``) installs Xvfb and ``xwininfo`` for it;
elsewhere it skips, with the reason, when they are absent.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image, ImageGrab, features

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_DEPS = ROOT / "scripts" / "system-deps.sh"
SAMPLE = ROOT / "resources" / "sample.png"
TITLE = "FMEN Upscaler"
# Waits below are limits for a slow, busy machine, not expectations: each returns as soon as
# its condition holds.
WAIT_S = 120.0

T = TypeVar("T")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"needs {name} (Debian: {'xvfb' if name == 'Xvfb' else 'x11-utils'}); .ci/run installs it"
        )
    return path


def _wait_for(what: str, probe: Callable[[], T | None], alive: Callable[[], str | None]) -> T:
    """Poll ``probe`` until it returns a value; fail at once when ``alive`` reports a death."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = probe()
        if value is not None:
            return value
        died = alive()
        if died is not None:
            pytest.fail(f"while waiting for {what}: {died}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {WAIT_S:.0f} s")
        time.sleep(0.2)


@pytest.fixture
def display(tmp_path: Path) -> Iterator[str]:
    """A fresh Xvfb server on a display number it picks itself (-displayfd); stopped afterwards."""
    xvfb = _tool("Xvfb")
    read_end, write_end = os.pipe()
    log = (tmp_path / "xvfb.log").open("wb")
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "1920x1200x24", "-nolisten", "tcp", "-br"],
        pass_fds=(write_end,),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + WAIT_S
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([read_end], [], [], 1.0)
            if ready:
                chunk = os.read(read_end, 16)
                if not chunk:
                    break  # Xvfb exited
                number += chunk
        if not number.strip().isdigit():
            proc.kill()
            proc.wait()
            pytest.fail(f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text(errors='replace')[-2000:]}")
        yield f":{number.strip().decode()}"
    finally:
        os.close(read_end)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _xwininfo(xwininfo: str, display: str, *args: str) -> str:
    return subprocess.run([xwininfo, "-display", display, *args], capture_output=True, text=True).stdout


def _main_window(xwininfo: str, display: str) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the app's main window once it is mapped and viewable, else None.

    Qt also names its 1×1 client-leader window after the app, so every window with the title
    is looked at, and only a viewable one larger than a few pixels counts.
    """
    for line in _xwininfo(xwininfo, display, "-root", "-children").splitlines():
        match = re.match(r'\s*(0x[0-9a-f]+) "(.*)":', line)
        if not match or not (match[2] == TITLE or match[2].endswith(f"— {TITLE}")):
            continue
        info = _xwininfo(xwininfo, display, "-id", match[1])
        if "Map State: IsViewable" not in info:
            continue
        numbers = [
            re.search(rf"{key}:\s+(-?\d+)", info)
            for key in ("Absolute upper-left X", "Absolute upper-left Y", "Width", "Height")
        ]
        x, y, width, height = (int(m[1]) if m else 0 for m in numbers)
        if width > 16 and height > 16:
            return x, y, width, height
    return None


def test_system_libraries_for_the_xcb_platform_are_there() -> None:
    """What ``make run`` checks first: nothing Qt's xcb platform links is missing.

    Required wherever the real-window test runs (CI installs both); skipped with it elsewhere.
    """
    _tool("Xvfb")
    proc = subprocess.run(
        [str(SYSTEM_DEPS), "--check", sys.prefix],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "xcb"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == proc.stderr == ""  # quiet when all is there


def test_the_app_opens_a_real_window_under_xvfb(display: str, tmp_path: Path) -> None:
    """`python -m fmen_gui IMAGE` with the xcb platform: mapped, painted, and quits cleanly on SIGTERM."""
    xwininfo = _tool("xwininfo")
    if not features.check("xcb"):
        pytest.skip("needs Pillow built with XCB support to take the screenshot")
    # Shipped weights (not the empty folder the other tests get), isolated settings and data.
    env = {k: v for k, v in os.environ.items() if k not in {"FMEN_WEIGHTS_DIR", "WAYLAND_DISPLAY"}}
    env.update(
        QT_QPA_PLATFORM="xcb",
        DISPLAY=display,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    settings = tmp_path / "settings.ini"
    log_path = tmp_path / "app.log"
    with log_path.open("wb") as log:
        app = subprocess.Popen(
            [sys.executable, "-m", "fmen_gui", "--settings", str(settings), str(SAMPLE)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def alive() -> str | None:
            if app.poll() is None:
                return None
            return f"the app exited with status {app.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}"

        x, y, width, height = _wait_for(
            "mapped, viewable main window", lambda: _main_window(xwininfo, display), alive
        )
        assert width >= 400 and height >= 300, (width, height)

        # The queued picture is shown enlarged nearest-neighbour, so its most frequent colours
        # appear exactly on a 24-bit screen once it is decoded and painted.
        sample = np.asarray(Image.open(SAMPLE).convert("RGB")).reshape(-1, 3)
        colours, counts = np.unique(sample, axis=0, return_counts=True)
        main_colours = {tuple(c) for c in colours[np.argsort(counts)[-5:]]}

        def painted() -> np.ndarray | None:
            """The screen once the window shows its widgets and the queued picture."""
            screen = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
            inside = screen[y : y + height, x : x + width].reshape(-1, 3)
            shown = {tuple(c) for c in np.unique(inside, axis=0)}
            return screen if len(shown) >= 200 and main_colours <= shown else None

        screen = _wait_for("painted window with the queued picture", painted, alive)
        Image.fromarray(screen).save(tmp_path / "xcb-window.png")
        print(f"\nscreenshot of the real window: {tmp_path / 'xcb-window.png'}")
        # Around the window is the bare (black) root: what was painted is the app's own window.
        around = screen.copy()
        around[y : y + height, x : x + width] = 0
        assert around.max() == 0

        app.send_signal(signal.SIGTERM)
        status = app.wait(timeout=WAIT_S)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    log_text = log_path.read_text(errors="replace")
    assert status == 0, log_text[-3000:]
    assert "Traceback" not in log_text, log_text[-3000:]
    assert "Could not load the Qt platform plugin" not in log_text
