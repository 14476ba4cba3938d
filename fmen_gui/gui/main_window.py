"""The main window: queue on the left, compare view in the centre, settings on the right.

The window builds the widgets and wires them. The batch (``gui.batch``) owns the queue and
decides what runs next; the planner (``gui.planner``) tells it what a job is under the current
settings; actions, menus and the toolbar come from ``gui.actions``, the weights tasks from
``gui.tasks``. The window keeps what is about the window: selection, display, settings saving.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import (
    QSize,
    Qt,
    QTimer,
    QUrl,
    SignalInstance,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
)
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QToolBar,
    QWidget,
)

from fmen_gui.engine.images import SUPPORTED_EXTENSIONS
from fmen_gui.gui import actions, clipboard, help_menu, icons, session
from fmen_gui.gui.batch import BatchController
from fmen_gui.gui.compare_panel import ComparePanel, SpaceFlash
from fmen_gui.gui.drop_overlay import DropOverlay
from fmen_gui.gui.files import collect_images
from fmen_gui.gui.formats import filter_for, save_filters, save_target
from fmen_gui.gui.jobs import JobOutcome, JobSpec
from fmen_gui.gui.planner import JobPlanner
from fmen_gui.gui.queue import (
    FINISHED_STATES,
    ItemRole,
    QueueItem,
    QueueModel,
    QueuePanel,
    Result,
    format_seconds,
)
from fmen_gui.gui.settings import AppSettings, SettingsStore
from fmen_gui.gui.settings_panel import SettingsPanel
from fmen_gui.gui.tasks import BackgroundTasks
from fmen_gui.gui.theme import apply_theme
from fmen_gui.gui.worker import WorkerController

log = logging.getLogger(__name__)

IMAGE_FILTER_EXTS = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
STATUS_MESSAGE_MS = 8000


class MainWindow(QMainWindow):
    """The application window. ``store`` and ``controller`` are injectable for tests."""

    # Made by ``actions.build_actions``.
    open_action: QAction
    paste_action: QAction
    upscale_action: QAction
    cancel_action: QAction
    save_action: QAction
    open_folder_action: QAction
    copy_action: QAction
    import_action: QAction
    remove_model_action: QAction
    download_action: QAction
    clear_action: QAction
    quit_action: QAction
    slider_action: QAction
    side_action: QAction
    smooth_action: QAction
    fit_action: QAction
    actual_action: QAction
    zoom_in_action: QAction
    zoom_out_action: QAction
    dark_action: QAction
    light_action: QAction
    about_action: QAction
    howto_action: QAction
    shortcuts_action: QAction
    zoom_label: QLabel
    toolbar: QToolBar

    def __init__(
        self,
        store: SettingsStore | None = None,
        controller: WorkerController | None = None,
        weights_override: Path | None = None,
        parent: QWidget | None = None,
        keep_queue: bool = True,
    ) -> None:
        super().__init__(parent)
        self.store = store if store is not None else SettingsStore()
        self.settings: AppSettings = self.store.load()
        self.controller = controller if controller is not None else WorkerController()
        self.setWindowTitle("FMEN Upscaler")
        self.setWindowIcon(icons.app_icon())
        self.setAcceptDrops(True)
        self.resize(1440, 880)

        self.panel = SettingsPanel(self.settings)
        self.planner = JobPlanner(self.settings, self.panel)
        self.batch = BatchController(self.controller, self.planner, self)
        self.tasks = BackgroundTasks(self.controller, self.panel, self)
        self._current_key: int | None = None
        self._follow = True  # show the running item unless the user picked another one
        self._closing = False
        self._last_run = ""
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_settings)
        self._queue_timer = QTimer(self)  # saves the queue shortly after it changes
        self._queue_timer.setSingleShot(True)
        self._queue_timer.setInterval(300)
        self._queue_timer.timeout.connect(self.save_queue)

        self._build_ui()
        actions.build_actions(self)
        self._connect()
        self.panel.set_weights_override(weights_override)
        self.set_theme(self.settings.theme, save=False)
        self._restore_layout()
        self._keep_queue = keep_queue  # restore the last queue and save this one (not in scripts)
        if keep_queue:
            self.restore_queue()
        self._update_actions()
        self._update_status_labels()
        self.space_flash = SpaceFlash(self, self.view)

    # The batch's queue and signals, under the names the window always had.
    @property
    def model(self) -> QueueModel:
        return self.batch.model

    @property
    def idle(self) -> SignalInstance:
        """Emitted when the batch ended (finished, failed or cancelled) and nothing runs."""
        return self.batch.idle

    @property
    def item_finished(self) -> SignalInstance:
        """Emitted with the queue key of an item that reached a final state."""
        return self.batch.item_finished

    def job_spec(self, item: QueueItem) -> JobSpec:
        """The job for ``item`` under the current settings."""
        return self.planner.job_spec(item)

    def is_busy(self) -> bool:
        return self.batch.is_busy()

    def queue_eta(self, now: float | None = None) -> float | None:
        """Seconds until the running image and every queued one are saved (None: not known yet)."""
        return self.batch.queue_eta(now)

    # ------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)

        # Left: the queue; centre: side pickers over the compare view.
        self.queue_panel = QueuePanel(self.model)
        self.queue_title = self.queue_panel.title
        self.clear_button = self.queue_panel.clear_button
        self.queue_view = self.queue_panel.view
        self.queue_view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.queue_view.remove_requested.connect(self.remove_items)
        self.queue_view.rerun_requested.connect(self.rerun_items)
        self.compare = ComparePanel()
        self.compare.sides_shown.connect(self._update_actions)
        self.view = self.compare.view
        self.left_combo, self.right_combo = self.compare.left_combo, self.compare.right_combo

        # Right: settings.
        self.panel.changed.connect(self._on_settings_changed)

        self.splitter.addWidget(self.queue_panel)
        self.splitter.addWidget(self.compare)
        self.splitter.addWidget(self.panel)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([290, 850, 300])
        self.setCentralWidget(self.splitter)

        self.overlay = DropOverlay(self)

        sb = self.statusBar()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(180)
        self.progress_bar.setMaximumHeight(14)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.device_label = QLabel()
        self.model_label = QLabel()
        self.run_label = QLabel()
        for w in (self.progress_bar, self.device_label, self.model_label, self.run_label):
            sb.addPermanentWidget(w)

    def _connect(self) -> None:
        """Wire the worker (what is not about the batch's jobs), the batch and the tasks."""
        w, b, t = self.controller.worker, self.batch, self.tasks
        w.engine_loading.connect(self.show_message)
        w.engine_ready.connect(self._on_engine_ready)
        w.devices_found.connect(self._on_devices)
        for source in (b, t):
            source.message.connect(self.show_message)
            source.changed.connect(self._update_actions)
        t.status.connect(lambda text: self.show_message(text, 0))
        t.weights_changed.connect(b.refresh_expected)
        b.ticked.connect(self._update_queue_title)
        b.item_updated.connect(self._on_item_updated)
        b.job_started.connect(self._on_job_started)
        b.progress.connect(self._on_progress)
        b.tile_ready.connect(self._on_tile)
        b.saved.connect(self._on_saved)
        b.job_ended.connect(self._on_job_ended)

    def _restore_layout(self) -> None:
        from PySide6.QtCore import QByteArray

        if self.settings.geometry:
            self.restoreGeometry(QByteArray(self.settings.geometry))
        if self.settings.window_state:
            self.restoreState(QByteArray(self.settings.window_state))
        if self.settings.splitter:
            self.splitter.restoreState(QByteArray(self.settings.splitter))

    # ------------------------------------------------------------------ settings and theme
    def set_theme(self, theme: str, save: bool = True) -> None:
        theme = apply_theme(theme)
        self.settings.theme = theme
        (self.dark_action if theme == "dark" else self.light_action).setChecked(True)
        actions.set_icons(self, theme)
        self.view.update()
        if save:
            self._schedule_save()

    def set_view_mode(self, mode: str) -> None:
        self.view.set_mode(mode)
        (self.slider_action if mode == "slider" else self.side_action).setChecked(True)
        self.settings.view_mode = mode
        self._schedule_save()

    def set_smooth(self, on: bool) -> None:
        self.view.set_smooth(on)
        self.settings.smooth = on
        self._schedule_save()

    def _on_settings_changed(self) -> None:
        self._merge_panel()
        self._update_status_labels()
        self.batch.refresh_expected()
        self._schedule_save()

    def _merge_panel(self) -> None:
        self.planner.merge_panel()

    def _schedule_save(self) -> None:
        self._save_timer.start()

    def save_settings(self) -> None:
        """Write the settings (and the window layout) now."""
        self._save_timer.stop()
        self._merge_panel()
        self.settings.geometry = bytes(self.saveGeometry().data())
        self.settings.window_state = bytes(self.saveState().data())
        self.settings.splitter = bytes(self.splitter.saveState().data())
        self.store.save(self.settings)

    # ------------------------------------------------------------------ queueing
    def add_paths(self, paths: list[Path]) -> list[QueueItem]:
        """Queue images (folders are scanned); report what was turned away in the status bar."""
        found = collect_images(paths, self.settings.template)
        added = self.batch.add(found.images)
        message = found.summary()
        if added:
            noun = "image" if len(added) == 1 else "images"
            prefix = f"Added {len(added)} {noun}"
            message = f"{prefix}. {message}" if message else prefix
        elif not message:
            message = "No images found"
        self.show_message(message)
        if added:
            self.queue_panel.select_range(added[0].key, added[-1].key)
        self._update_actions()
        self.batch.resume()
        return added

    def open_files(self) -> None:
        start = self.settings.last_open_dir or str(Path.home())
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", start, f"Images ({IMAGE_FILTER_EXTS});;All files (*)"
        )
        if files:
            self.settings.last_open_dir = str(Path(files[0]).parent)
            self._schedule_save()
            self.add_paths([Path(f) for f in files])

    def paste(self) -> None:
        """Queue files copied in a file manager, or an image copied from any application."""
        files = clipboard.copied_files()
        if files:
            self.add_paths(files)
            return
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.show_message("The clipboard holds no image")
            return
        try:
            path = clipboard.store_image(image, self.pasted_folder())
        except clipboard.PasteError as exc:
            self.show_message(str(exc))
            return
        self.add_paths([path])

    def pasted_folder(self) -> Path:
        """Where a pasted image (and so, by default, its result) is saved; see ``clipboard``."""
        return clipboard.pasted_folder(self.settings.output_dir)

    def output_folder(self) -> Path | None:
        """The folder results go to: of the shown result, the output setting, or the input's."""
        self._merge_panel()
        result = self.shown_result()
        if result is not None:
            return result.path.parent
        if self.settings.output_dir:
            return Path(self.settings.output_dir).expanduser()
        item = self.current_item()
        return item.path.parent if item is not None else None

    def open_output_folder(self) -> None:
        """Show the results' folder in the system's file manager."""
        folder = self.output_folder()
        if folder is None or not folder.is_dir():
            self.show_message("No output folder yet: set one under Output, or upscale an image first")
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.show_message(f"Could not open {folder}")

    def copy_result(self) -> None:
        """Put the shown result on the clipboard: its pixels (from the saved file) and its file."""
        result = self.shown_result()
        if result is None:
            self.show_message("No result to copy yet")
            return
        image = clipboard.copy_file(result.path, result.image)
        self.show_message(f"Copied {result.path.name} ({image.width()}×{image.height()})")

    def remove_items(self, keys: list[int]) -> None:
        removed = self.batch.remove(keys)
        if self._current_key in removed:
            self._current_key = None
            self.compare.show_item(None)

    def rerun_items(self, keys: list[int]) -> None:
        """Queue finished items again with the current settings (e.g. to compare models)."""
        self.batch.requeue(keys)
        self.start()

    def clear_finished(self) -> None:
        self.remove_items([i.key for i in self.model.items() if i.status in FINISHED_STATES])

    # ------------------------------------------------------------------ queue across restarts
    def save_queue(self) -> None:
        """Write the queue now (it is also written shortly after every change)."""
        self._queue_timer.stop()
        if self._keep_queue:
            session.save_queue(self.batch.records())

    def restore_queue(self) -> None:
        """Queue again what was there when the app last quit (or crashed), with its results."""
        restored = self.batch.restore(session.load_queue())
        if restored:
            noun = "image" if restored == 1 else "images"
            self.show_message(f"Restored the queue: {restored} {noun}")
            self.select(self.model.items()[0].key)

    # ------------------------------------------------------------------ selection and display
    def select(self, key: int) -> None:
        self.queue_panel.select(key)

    def current_item(self) -> QueueItem | None:
        return self.model.find(self._current_key) if self._current_key is not None else None

    def _on_current_changed(self, current: object, _previous: object) -> None:
        item = current.data(ItemRole) if current is not None and current.isValid() else None  # type: ignore[attr-defined]
        if item is None:
            return
        running = self.batch.running_key()
        if running is not None and item.key != running and self.queue_view.hasFocus():
            self._follow = False  # the user looks at something else: stop jumping to the job
        self._current_key = item.key
        self._show_item(item)

    def _show_item(self, item: QueueItem) -> None:
        self.compare.show_item(item, running=self.batch.running_key() == item.key)
        self.setWindowTitle(f"{item.name} — FMEN Upscaler")

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Upscale every queued image; with none queued, re-run the shown one (to compare)."""
        problem = self.panel.weights_problem()
        if problem:
            self.show_message(problem[:1].upper() + problem[1:])
            return
        self._follow = True
        self.batch.start(self.current_item())

    def cancel(self) -> None:
        """Stop the running job (within one tile) and the batch; pending items stay queued."""
        self.tasks.cancel_download()
        self.batch.cancel()

    def _on_item_updated(self, key: int) -> None:
        item = self.model.find(key)
        if item is not None and key == self._current_key:
            self._show_item(item)

    def _on_job_started(self, key: int) -> None:
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        item = self.model.find(key)
        if self._follow and self._current_key != key:
            self.select(key)
        elif item is not None and self._current_key == key:
            self._show_item(item)

    def _on_engine_ready(self, label: str, device_label: str) -> None:
        self.model_label.setText(label)
        self.device_label.setText(device_label)
        self.planner.remember_label(label)
        self.show_message(f"{label} ready on {device_label}", 3000)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)

    def _on_tile(self, key: int, tile: QImage, x: int, y: int, width: int, height: int) -> None:
        if key != self._current_key:
            return
        if not self.view.has_progress() or self.view.canvas_size() != QSize(width, height):
            self.model.update(key, QueueItem.grow_to, (width, height))
            self.view.begin_progress(QSize(width, height))
        self.view.paste_tile(tile, x, y)

    def _on_saved(self, outcome: JobOutcome) -> None:
        self._last_run = f"{outcome.label}: {format_seconds(outcome.seconds)}"
        self.model_label.setText(outcome.label)
        self.device_label.setText(outcome.device_label)
        self._update_status_labels()

    def _on_job_ended(self, key: int) -> None:
        self.view.end_progress()
        self.progress_bar.hide()
        self._on_item_updated(key)

    # ------------------------------------------------------------------ weights and devices
    def _on_devices(self, devices: list) -> None:
        self.panel.set_devices(devices)
        if not self.device_label.text() and devices:
            key = self.settings.device
            label = devices[0][1] if key == "auto" else self.panel.device_label(key)
            self.device_label.setText(label)

    # ------------------------------------------------------------------ saving
    def shown_result(self) -> Result | None:
        item = self.current_item()
        if item is None or not item.results:
            return None
        label = self.compare.right_side()
        return item.results.get(label) or item.latest_result()

    def save_as(self) -> None:
        result = self.shown_result()
        if result is None:
            self.show_message("No result to save yet")
            return
        path, chosen = QFileDialog.getSaveFileName(
            self, "Save result as", str(result.path), save_filters(), filter_for(result.path)
        )
        if not path:
            return
        dst, key = save_target(Path(path), chosen)
        self.controller.save_copy(str(result.path), str(dst), key, self.settings.quality)

    # ------------------------------------------------------------------ status and actions
    def show_message(self, text: str, msecs: int = STATUS_MESSAGE_MS) -> None:
        self.statusBar().showMessage(text, msecs)

    def _update_status_labels(self) -> None:
        if not self.model_label.text() or not self.is_busy():
            if self.panel.weights_override is not None:
                self.model_label.setText(self.panel.weights_override.name)
            else:
                self.model_label.setText(self.planner.job_label())
        self.run_label.setText(f"Last run: {self._last_run}" if self._last_run else "Last run: –")
        if not self.device_label.text():
            self.device_label.setText("Device: Auto")

    def _update_actions(self) -> None:
        has_items = self.model.rowCount() > 0
        in_batch = self.batch.in_batch()
        self.upscale_action.setEnabled(has_items and not in_batch)
        self.cancel_action.setEnabled(self.is_busy() or in_batch or self.tasks.downloading)
        self.save_action.setEnabled(self.shown_result() is not None)
        self.copy_action.setEnabled(self.shown_result() is not None)
        self._update_queue_title()
        if not self._closing:
            self._queue_timer.start()
        self.clear_action.setEnabled(any(i.status in FINISHED_STATES for i in self.model.items()))

    def _update_queue_title(self) -> None:
        self.queue_panel.update_title(self.queue_eta())

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(command, keys) of every action that has a shortcut; see ``actions.shortcut_rows``."""
        return actions.shortcut_rows(self)

    def show_shortcuts(self) -> QDialog:
        """A table of the window's shortcuts (non-modal, so it can stay open while working)."""
        return help_menu.shortcuts_dialog(self, self.shortcut_rows())

    def show_howto(self) -> QMessageBox:
        """The few steps of a first use, shown non-modally."""
        return help_menu.howto_box(self)

    def about(self) -> None:
        help_menu.about_box(self)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        self.overlay.enter(event)

    def dragMoveEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        event.acceptProposedAction()  # type: ignore[attr-defined]

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 - Qt override
        self.overlay.hide()
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.overlay.hide()
        mime = event.mimeData()
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        if paths:
            self.add_paths(paths)
        elif mime.hasUrls():
            self.show_message("Only local files and folders can be added")
        elif mime.hasImage():
            image = mime.imageData()
            QGuiApplication.clipboard().setImage(image)
            self.paste()
        event.acceptProposedAction()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.overlay.setGeometry(self.rect())

    # ------------------------------------------------------------------ closing
    def confirm_close_during_job(self) -> bool:
        """Ask before cancelling a running job to quit (tests replace this method)."""
        answer = QMessageBox.question(
            self,
            "Quit FMEN Upscaler?",
            "An upscale is running. Cancel it and quit? Nothing of the unfinished image is saved.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.is_busy() and not self.confirm_close_during_job():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Save, cancel everything and join every thread; idempotent."""
        if self._closing:
            return
        self._closing = True
        self.batch.shutdown()
        self.space_flash.remove()
        try:
            self.save_settings()
        except Exception:
            log.exception("could not save the settings")
        self.save_queue()
        self.controller.shutdown()
        self.batch.wait()
