"""Start-up and layering: the window appears before torch loads; widgets never touch the engine.

The import-linter contract will enforce the layering too; this test checks the same rule with
no extra tool and also covers lazy imports inside functions, which a linter may not see.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GUI = Path(__file__).resolve().parents[2] / "fmen_gui" / "gui"
FORBIDDEN = (
    "torch",
    "fmen_gui.arch",
    "fmen_gui.engine.pipeline",
    "fmen_gui.engine.devices",
    "fmen_gui.weights.loading",
)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


@pytest.mark.parametrize(
    "path", sorted(p for p in GUI.glob("*.py") if p.name != "worker.py"), ids=lambda p: p.name
)
def test_widgets_never_import_the_engine(path: Path) -> None:
    bad = {m for m in imported_modules(path) for f in FORBIDDEN if m == f or m.startswith(f + ".")}
    assert not bad, f"{path.name} imports {sorted(bad)}; only worker.py may"


def test_worker_imports_the_engine_only_lazily() -> None:
    tree = ast.parse((GUI / "worker.py").read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module)
    assert not {m for m in top for f in FORBIDDEN if m == f or m.startswith(f + ".")}


def test_window_is_shown_before_torch_is_imported(tmp_path: Path) -> None:
    """Run the real entry point in a fresh interpreter and look at sys.modules right after show()."""
    script = textwrap.dedent(
        f"""
        import sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from fmen_gui.gui import main_window

        original_show = main_window.MainWindow.show

        def show(self):
            original_show(self)
            QApplication.processEvents()
            print("TORCH_LOADED_AT_SHOW", "torch" in sys.modules, flush=True)
            QTimer.singleShot(0, self.close)

        main_window.MainWindow.show = show
        from fmen_gui.gui.app import main
        sys.exit(main(["--settings", {str(tmp_path / "s.ini")!r}]))
        """
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=GUI.parents[1],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TORCH_LOADED_AT_SHOW False" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert "Destroyed while thread" not in proc.stderr
