"""Import Weights… with hostile files: one clear line, nothing installed, no code run.

Goes through the real worker thread (where the GUI imports weights) with the same hostile files
the CLI is tested with, plus a checkpoint of an unsupported form.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject

from fmen_gui.gui.worker import WorkerController
from fmen_gui.weights.registry import user_weights_dir
from tests.test_reliability_cli import WEIGHTS_CASES, _weights_cases, plant_evil_module


class _Collect(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.done: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str]] = []

    def on_done(self, kind: str, message: str) -> None:
        self.done.append((kind, message))

    def on_failed(self, kind: str, message: str) -> None:
        self.failed.append((kind, message))


@pytest.fixture
def controller(qtbot):  # type: ignore[no-untyped-def]
    ctl = WorkerController()
    sink = _Collect()
    ctl.worker.task_done.connect(sink.on_done)
    ctl.worker.task_failed.connect(sink.on_failed)
    yield ctl, sink
    assert ctl.shutdown()


def test_hostile_weights_are_not_imported(  # type: ignore[no-untyped-def]
    controller, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctl, sink = controller
    marker = plant_evil_module(tmp_path, monkeypatch)
    folder = tmp_path / "downloads"
    folder.mkdir()
    cases = _weights_cases(folder, marker)
    installed_before = (
        sorted(p.name for p in user_weights_dir().glob("*")) if user_weights_dir().exists() else []
    )
    for n, name in enumerate(WEIGHTS_CASES, 1):
        path, fragment = cases[name]
        ctl.import_weights(str(path))
        qtbot.waitUntil(lambda n=n: len(sink.failed) + len(sink.done) == n, timeout=60000)
        assert not sink.done, f"{name} was imported: {sink.done}"
        kind, message = sink.failed[-1]
        assert kind == "import" and "\n" not in message and message, (name, message)
        assert fragment in message, (name, message)
        assert "internal error" not in message and "Traceback" not in message
    assert not marker.exists(), "a hostile pickle ran code"
    installed_after = (
        sorted(p.name for p in user_weights_dir().glob("*")) if user_weights_dir().exists() else []
    )
    assert installed_after == installed_before, "something was installed"
