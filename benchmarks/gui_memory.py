"""Peak memory of one big upscale: the desktop window against the command line.

    python -m benchmarks.gui_memory [--size 4000x3000] [--scale 4] [--format jpg]

Each side runs in a fresh subprocess and reports its peak resident set (``VmHWM`` from
/proc/self/status, Linux only) after the job; the window runs offscreen with the real worker
and paints the progressive tiles as on screen. The window should stay within the CLI's peak
plus 300 MB (issue 11): it must not keep full-size copies it does not show.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(os.environ.get("FMEN_ROOT", Path(__file__).resolve().parents[1]))

_CLI = """
import sys
from fmen_gui.cli import run
code = run([sys.argv[1], "-o", sys.argv[2], "--scale", sys.argv[3], "--quiet", "--overwrite"])
assert code == 0, code
"""

_GUI = """
import sys
from pathlib import Path
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from fmen_gui.gui.main_window import MainWindow
from fmen_gui.gui.settings import SettingsStore
store = SettingsStore.from_file(str(Path(sys.argv[2]).with_suffix(".ini")))
window = MainWindow(store=store, keep_queue=False)
window.confirm_close_during_job = lambda: True
window.show()
panel = window.panel
panel.scale_buttons[int(sys.argv[3])].click()
panel.format_combo.setCurrentIndex(panel.format_combo.findData(Path(sys.argv[2]).suffix.lstrip(".")))
panel.folder_edit.setText(str(Path(sys.argv[2]).parent))
window.add_paths([Path(sys.argv[1])])
loop = QEventLoop()
window.idle.connect(loop.quit)
QTimer.singleShot(3000, window.start)  # after the input is read
loop.exec()
item = window.model.items()[0]
assert item.status == "done", item.message
window.shutdown()
"""

_PEAK = """
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print("PEAK_KB", line.split()[1])
"""


def peak_mb(code: str, *args: str) -> float:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code + _PEAK, *args], env=env, capture_output=True, text=True, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("PEAK_KB")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"run failed:\n{out.stdout}\n{out.stderr}")
    return int(lines[-1].split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--scale", default="4")
    parser.add_argument("--format", default="jpg", help="jpg keeps the encode short; png works too")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.png"
        # A smooth picture with some texture: like a photo for the encoders, quick to make.
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        rgb = np.stack([(xx / w) * 255, (yy / h) * 255, 128 + 60 * np.sin(xx / 37) * np.cos(yy / 23)], axis=2)
        Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(src)
        cli = peak_mb(_CLI, str(src), str(Path(tmp) / f"cli.{args.format}"), args.scale)
        gui = peak_mb(_GUI, str(src), str(Path(tmp) / f"gui.{args.format}"), args.scale)
    print(
        f"{w}×{h} ×{args.scale} → {args.format}: CLI peak {cli:.0f} MB, window peak {gui:.0f} MB, "
        f"difference {gui - cli:+.0f} MB"
    )


if __name__ == "__main__":
    main()
