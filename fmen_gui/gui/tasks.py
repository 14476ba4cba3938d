"""The worker's tasks besides upscaling: importing and downloading weights, Save As copies.

They run on the worker thread like the jobs; this object asks for them, keeps the download
button honest while one runs, and turns the answers into status messages (and a dialog for
the failures a user must not miss).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from fmen_gui.gui.settings_panel import SettingsPanel

if TYPE_CHECKING:
    from fmen_gui.gui.worker import WorkerController

WEIGHTS_FILTER = "Weights (*.pt *.pth *.ckpt *.safetensors *.bin);;All files (*)"


class BackgroundTasks(QObject):
    """Import, download and copy tasks, with their messages."""

    message = Signal(str)  # for the status bar
    status = Signal(str)  # for the status bar until the next message: work under way
    weights_changed = Signal()  # a network was imported or downloaded
    changed = Signal()  # a download started or ended (Cancel applies to it)

    def __init__(self, controller: WorkerController, panel: SettingsPanel, window: QWidget) -> None:
        super().__init__(window)
        self.controller = controller
        self.panel = panel
        self.window = window
        self.downloading = False
        w = controller.worker
        w.task_done.connect(self._on_task_done)
        w.task_failed.connect(self._on_task_failed)
        w.download_progress.connect(self._on_download_progress)
        panel.import_requested.connect(self.import_weights)
        panel.download_requested.connect(self.download_official)

    def import_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Import FMEN weights", str(Path.home()), WEIGHTS_FILTER
        )
        if path:
            self.status.emit(f"Checking {Path(path).name}…")
            self.controller.import_weights(path)

    def download_official(self) -> None:
        if self.downloading:
            return
        self._set_downloading(True)
        self.status.emit("Downloading the official FMEN-S ×4 weights… (Esc cancels)")
        self.controller.download_official()

    def cancel_download(self) -> None:
        if self.downloading:
            self.controller.cancel_download()

    def _set_downloading(self, on: bool) -> None:
        self.downloading = on
        self.panel.download_button.setEnabled(not on)
        self.changed.emit()

    def _on_download_progress(self, received: int, total: int) -> None:
        if total > 0:
            self.status.emit(f"Downloading FMEN-S ×4: {received * 100 // total}%")

    def _on_task_done(self, kind: str, message: str) -> None:
        if kind == "download":
            self._set_downloading(False)
        if kind in ("import", "download"):
            self.panel.refresh_weights()
            self.weights_changed.emit()  # a new network may change what Auto picks
        self.message.emit(message)

    def _on_task_failed(self, kind: str, message: str) -> None:
        if kind == "download":
            self._set_downloading(False)
        self.message.emit(message)
        if kind in ("import", "save"):
            QMessageBox.warning(self.window, "FMEN Upscaler", message)
