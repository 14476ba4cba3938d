"""The worker's tasks besides upscaling: importing, removing and downloading models, Save As copies.

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

WEIGHTS_FILTER = "Models (*.pth *.pt *.ckpt *.bin *.safetensors);;All files (*)"


class BackgroundTasks(QObject):
    """Import, remove, download and copy tasks, with their messages."""

    message = Signal(str)  # for the status bar
    status = Signal(str)  # for the status bar until the next message: work under way
    weights_changed = Signal()  # a network was imported, removed or downloaded
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
        w.model_imported.connect(self._on_model_imported)
        self._imported: tuple[str, int] | None = None
        panel.import_requested.connect(self.import_weights)
        panel.remove_requested.connect(self.remove_model)
        panel.download_requested.connect(self.download_official)

    def import_weights(self) -> None:
        """Ask for a model file; the worker checks and installs it (torch stays off this thread)."""
        path, _ = QFileDialog.getOpenFileName(self.window, "Import model", str(Path.home()), WEIGHTS_FILTER)
        if path:
            self.status.emit(f"Checking {Path(path).name}…")
            self.controller.import_weights(path)

    def remove_model(self) -> None:
        """Remove the chosen imported model, after the user confirms (its file is deleted)."""
        entry = self.panel.imported_entry()
        if entry is None:
            return
        answer = QMessageBox.question(
            self.window,
            "Remove model",
            f"Remove {entry.label}?\n\nIts file is deleted from {entry.path.parent}; "
            "import it again to use it later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.status.emit(f"Removing {entry.display_name}…")
            self.controller.remove_model(str(entry.path))

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
        if kind in ("import", "remove", "download"):
            self.panel.refresh_weights()  # a removed model that was chosen falls back to FMEN-S
            if kind == "import" and self._imported is not None:
                self.panel.select_model(*self._imported)  # the user imported it to use it
            self.weights_changed.emit()  # a new network may change what Auto picks
        self._imported = None
        self.message.emit(message)

    def _on_model_imported(self, model: str, scale: int) -> None:
        self._imported = (model, scale)

    def _on_task_failed(self, kind: str, message: str) -> None:
        if kind == "download":
            self._set_downloading(False)
        self.message.emit(message)
        if kind in ("import", "remove", "save"):
            QMessageBox.warning(self.window, "FMEN Upscaler", message)
