"""The main window: queue on the left, compare view in the centre, settings on the right.

The window owns the queue and decides what runs next; the worker only ever sees one job at a
time (``_dispatch``), so a settings change applies to the next image of a batch, a failure
marks its item and the batch goes on, and Cancel stops the batch cleanly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import (
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QMimeData,
    QObject,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QDesktopServices,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fmen_gui.engine.images import SUPPORTED_EXTENSIONS
from fmen_gui.engine.kinds import KindChoice, choose_kind
from fmen_gui.gui import icons, session
from fmen_gui.gui.compare_view import ORIGINAL, CompareView, Source
from fmen_gui.gui.eta import FinishRates, queue_seconds_left
from fmen_gui.gui.files import collect_images
from fmen_gui.gui.imaging import PREVIEW_MAX_PIXELS, ImageLoader, LoadedImage
from fmen_gui.gui.jobs import JobOutcome, JobSpec, next_job_id
from fmen_gui.gui.queue import (
    CANCELLED,
    DONE,
    FAILED,
    FINISHED_STATES,
    LOADING,
    PENDING,
    RUNNING,
    ItemRole,
    QueueItem,
    QueueModel,
    QueueView,
    Result,
    format_seconds,
)
from fmen_gui.gui.settings import BACKGROUNDS, FORMATS, AppSettings, SettingsStore, background_rgb
from fmen_gui.gui.settings_panel import SettingsPanel
from fmen_gui.gui.theme import apply_theme, icon_colours
from fmen_gui.gui.worker import WorkerController

log = logging.getLogger(__name__)

IMAGE_FILTER_EXTS = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
STATUS_MESSAGE_MS = 8000
HOWTO_TITLE = "Make pictures larger and sharper in four steps"
HOWTO = (
    "<ol>"
    "<li><b>Add images</b>: drop files or folders on the window, Open… (Ctrl+O), or paste "
    "(Ctrl+V).</li>"
    "<li><b>Choose</b> on the right: FMEN (quality) or FMEN-S (speed), the scale, and where and "
    "how to save (by default beside the input, in its own format).</li>"
    "<li><b>Upscale</b> (Ctrl+Enter). Tiles appear as they finish; Esc cancels and saves "
    "nothing.</li>"
    "<li><b>Compare</b>: drag the divider, wheel to zoom, drag to pan, hold Space for the "
    "original. Copy Result (Ctrl+Shift+C) or Open Output Folder (Ctrl+Shift+O).</li>"
    "</ol>"
    "<p>Right-click a queue item to upscale it again with other settings and compare both "
    "results side by side.</p>"
)
HOWTO_KEYS = (
    "In the view: ←/→ move the divider, hold Space to see the original. In the queue: Delete removes."
)
RUNNING_SIDE = "\x00running"  # side-picker data of the running job (never a result label)


class DropOverlay(QWidget):
    """A translucent highlight shown over the window while files are dragged over it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.text = "Drop to add to the queue"
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = QColor("#4fc3f7")
        fill = QColor(accent)
        fill.setAlpha(38)
        p.fillRect(self.rect(), fill)
        p.setPen(QPen(accent, 3, Qt.PenStyle.DashLine))
        p.drawRoundedRect(self.rect().adjusted(8, 8, -8, -8), 16, 16)
        font = p.font()
        font.setPointSizeF(font.pointSizeF() * 1.7)
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(self.text) + 48, fm.height() + 28
        box = self.rect().center()
        pill = self.rect().adjusted(0, 0, 0, 0)
        pill.setSize(QSize(w, h))
        pill.moveCenter(box)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 170))
        p.drawRoundedRect(pill, h / 2, h / 2)
        p.setPen(QColor("white"))
        p.drawText(pill, Qt.AlignmentFlag.AlignCenter, self.text)


class MainWindow(QMainWindow):
    """The application window. ``store`` and ``controller`` are injectable for tests."""

    idle = Signal()  # the batch ended (finished, failed or cancelled) and nothing runs
    item_finished = Signal(int)  # queue key of an item that reached a final state

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

        self.model = QueueModel(self)
        self.loader = ImageLoader(self)
        self._current_key: int | None = None
        self._running: tuple[int, int] | None = None  # (job_id, item key)
        self._batch = False
        self._active = False  # a batch was started and has not yet gone idle
        self._follow = True  # show the running item unless the user picked another one
        self._downloading = False
        self._closing = False
        self._last_run = ""
        self._finish_rates = FinishRates()  # learned seconds per output megapixel of saving
        self._engine_labels: dict[str, str] = {}  # weights file -> label the engine reported
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_settings)
        self._queue_timer = QTimer(self)  # saves the queue shortly after it changes
        self._queue_timer.setSingleShot(True)
        self._queue_timer.setInterval(300)
        self._queue_timer.timeout.connect(self.save_queue)
        self._result_requests: dict[int, tuple[int, str, tuple[int, int], float]] = {}
        self._next_result_request = -1
        self._eta_timer = QTimer(self)
        self._eta_timer.setInterval(500)
        self._eta_timer.timeout.connect(self._tick_eta)

        self._build_ui()
        self._build_actions()
        self._connect_worker()
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        # Finished results of a restored queue, held at display size like new ones.
        self.result_loader = ImageLoader(self, max_pixels=PREVIEW_MAX_PIXELS)
        self.result_loader.loaded.connect(self._on_result_loaded)
        self.panel.set_weights_override(weights_override)
        self.set_theme(self.settings.theme, save=False)
        self._restore_layout()
        self._keep_queue = keep_queue  # restore the last queue and save this one (not in scripts)
        if keep_queue:
            self.restore_queue()
        self._update_actions()
        self._update_status_labels()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    # ------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)

        # Left: the queue.
        queue_panel = QWidget()
        qv = QVBoxLayout(queue_panel)
        qv.setContentsMargins(8, 6, 0, 6)
        qv.setSpacing(4)
        header = QHBoxLayout()
        self.queue_title = QLabel("Queue")
        self.queue_title.setObjectName("panelTitle")
        header.addWidget(self.queue_title)
        header.addStretch(1)
        self.clear_button = QToolButton()
        self.clear_button.setToolTip("Remove finished items from the queue")
        self.clear_button.setAutoRaise(True)
        header.addWidget(self.clear_button)
        qv.addLayout(header)
        self.queue_view = QueueView()
        self.queue_view.setModel(self.model)
        qv.addWidget(self.queue_view, 1)
        self.queue_view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.queue_view.remove_requested.connect(self.remove_items)
        self.queue_view.rerun_requested.connect(self.rerun_items)

        # Centre: source pickers over the compare view.
        centre = QWidget()
        cv = QVBoxLayout(centre)
        cv.setContentsMargins(0, 6, 0, 0)
        cv.setSpacing(4)
        pickers = QHBoxLayout()
        pickers.setContentsMargins(6, 0, 6, 0)
        self.left_combo = QComboBox()
        self.right_combo = QComboBox()
        for combo, tip in ((self.left_combo, "Left side"), (self.right_combo, "Right side")):
            combo.setToolTip(f"{tip}: the original or any finished result of this image")
            combo.setMinimumContentsLength(12)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        pickers.addWidget(QLabel("Left"))
        pickers.addWidget(self.left_combo)
        pickers.addStretch(1)
        self.image_info = QLabel()
        self.image_info.setObjectName("hint")
        pickers.addWidget(self.image_info)
        pickers.addStretch(1)
        pickers.addWidget(QLabel("Right"))
        pickers.addWidget(self.right_combo)
        cv.addLayout(pickers)
        self.view = CompareView()
        cv.addWidget(self.view, 1)
        self.left_combo.currentIndexChanged.connect(self._on_sides_changed)
        self.right_combo.currentIndexChanged.connect(self._on_sides_changed)

        # Right: settings.
        self.panel = SettingsPanel(self.settings)
        self.panel.changed.connect(self._on_settings_changed)
        self.panel.import_requested.connect(self.import_weights)
        self.panel.download_requested.connect(self.download_official)

        self.splitter.addWidget(queue_panel)
        self.splitter.addWidget(centre)
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

    def _action(
        self,
        text: str,
        slot: object,
        shortcuts: list[str] | None = None,
        tip: str = "",
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip or shortcuts:
            keys = f" ({shortcuts[0]})" if shortcuts else ""
            action.setToolTip(f"{tip or text.replace('…', '').replace('&', '')}{keys}")
            action.setStatusTip(tip)
        action.setCheckable(checkable)
        if checkable:
            action.toggled.connect(slot)  # type: ignore[arg-type]
        else:
            action.triggered.connect(slot)  # type: ignore[arg-type]
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open…", self.open_files, ["Ctrl+O"], "Add images to the queue")
        self.paste_action = self._action(
            "&Paste", self.paste, ["Ctrl+V"], "Queue an image from the clipboard"
        )
        self.upscale_action = self._action(
            "&Upscale", self.start, ["Ctrl+Return", "Ctrl+Enter"], "Upscale the queued images"
        )
        self.cancel_action = self._action("&Cancel", self.cancel, ["Esc"], "Stop the running job")
        self.save_action = self._action(
            "&Save As…", self.save_as, ["Ctrl+S"], "Save the shown result elsewhere"
        )
        self.open_folder_action = self._action(
            "Open Output &Folder", self.open_output_folder, ["Ctrl+Shift+O"], "Show the results' folder"
        )
        self.copy_action = self._action(
            "&Copy Result", self.copy_result, ["Ctrl+Shift+C"], "Copy the shown result to the clipboard"
        )
        self.import_action = self._action("&Import Weights…", self.import_weights)
        self.download_action = self._action("&Download Official FMEN-S ×4", self.download_official)
        self.clear_action = self._action("Remove &Finished", self.clear_finished)
        self.quit_action = self._action("&Quit", self.close, ["Ctrl+Q"])
        self.slider_action = self._action(
            "&Slider",
            lambda on: on and self.set_view_mode("slider"),
            ["1"],
            "Before/after slider",
            checkable=True,
        )
        self.side_action = self._action(
            "Side &by Side",
            lambda on: on and self.set_view_mode("side"),
            ["2"],
            "Two synchronized panes",
            checkable=True,
        )
        mode_group = QActionGroup(self)
        mode_group.addAction(self.slider_action)
        mode_group.addAction(self.side_action)
        self.smooth_action = self._action(
            "S&mooth Original",
            self._on_smooth,
            [],
            "Enlarge the original smoothly instead of as pixels",
            checkable=True,
        )
        self.fit_action = self._action("&Fit", self.view.fit, ["Ctrl+0"], "Fit the image in the view")
        self.actual_action = self._action("&100%", self.view.actual_size, ["Ctrl+1"], "Actual pixels")
        self.zoom_in_action = self._action("Zoom &In", lambda: self.view.zoom_by(1.25), ["Ctrl++", "Ctrl+="])
        self.zoom_out_action = self._action("Zoom &Out", lambda: self.view.zoom_by(0.8), ["Ctrl+-"])
        self.dark_action = self._action("&Dark", lambda on: on and self.set_theme("dark"), checkable=True)
        self.light_action = self._action("&Light", lambda on: on and self.set_theme("light"), checkable=True)
        theme_group = QActionGroup(self)
        theme_group.addAction(self.dark_action)
        theme_group.addAction(self.light_action)
        self.about_action = self._action("&About FMEN Upscaler", self.about)
        self.howto_action = self._action("&How to Use", self.show_howto, ["F1"], "A short how-to")
        self.shortcuts_action = self._action(
            "&Keyboard Shortcuts", self.show_shortcuts, ["Ctrl+/"], "Every keyboard shortcut"
        )
        self.clear_button.setDefaultAction(self.clear_action)

        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.open_action, self.paste_action, self.save_action, self.copy_action):
            m.addAction(a)
        m.addAction(self.open_folder_action)
        m.addSeparator()
        m.addAction(self.import_action)
        m.addAction(self.download_action)
        m.addSeparator()
        m.addAction(self.quit_action)
        m = mb.addMenu("&Process")
        for a in (self.upscale_action, self.cancel_action, self.clear_action):
            m.addAction(a)
        m = mb.addMenu("&View")
        for a in (self.slider_action, self.side_action):
            m.addAction(a)
        m.addSeparator()
        for a in (
            self.fit_action,
            self.actual_action,
            self.zoom_in_action,
            self.zoom_out_action,
            self.smooth_action,
        ):
            m.addAction(a)
        m.addSeparator()
        tm = m.addMenu("&Theme")
        tm.addAction(self.dark_action)
        tm.addAction(self.light_action)
        m = mb.addMenu("&Help")
        m.addAction(self.howto_action)
        m.addAction(self.shortcuts_action)
        m.addSeparator()
        m.addAction(self.about_action)

        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.open_action)
        tb.addAction(self.paste_action)
        tb.addSeparator()
        tb.addAction(self.upscale_action)
        tb.addAction(self.cancel_action)
        tb.addAction(self.save_action)
        tb.addSeparator()
        tb.addAction(self.slider_action)
        tb.addAction(self.side_action)
        tb.addAction(self.smooth_action)
        spacer = QWidget()
        spacer.setSizePolicy(
            spacer.sizePolicy().horizontalPolicy().Expanding, spacer.sizePolicy().verticalPolicy().Preferred
        )
        tb.addWidget(spacer)
        tb.addAction(self.zoom_out_action)
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(52)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.zoom_label.setToolTip("Zoom (mouse wheel zooms around the cursor)")
        tb.addWidget(self.zoom_label)
        tb.addAction(self.zoom_in_action)
        tb.addAction(self.fit_action)
        tb.addAction(self.actual_action)
        self.addToolBar(tb)
        self.toolbar = tb
        for a in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_action):
            tb.widgetForAction(a).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.widgetForAction(self.upscale_action).setObjectName("primaryAction")
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))

        (self.slider_action if self.settings.view_mode == "slider" else self.side_action).setChecked(True)
        self.view.set_mode(self.settings.view_mode)
        self.smooth_action.setChecked(self.settings.smooth)
        self.view.set_smooth(self.settings.smooth)

    def _set_icons(self, theme: str) -> None:
        normal, disabled = icon_colours(theme)
        for action, name in (
            (self.open_action, "open"),
            (self.paste_action, "paste"),
            (self.upscale_action, "upscale"),
            (self.cancel_action, "cancel"),
            (self.save_action, "save"),
            (self.slider_action, "slider"),
            (self.side_action, "side"),
            (self.smooth_action, "smooth"),
            (self.fit_action, "fit"),
            (self.actual_action, "actual"),
            (self.zoom_in_action, "zoom_in"),
            (self.zoom_out_action, "zoom_out"),
            (self.clear_action, "clear"),
        ):
            action.setIcon(icons.icon(name, normal, disabled))
        # The primary button has an accent background: a dark glyph reads better on it.
        self.upscale_action.setIcon(icons.icon("upscale", "#061018", disabled))

    def _connect_worker(self) -> None:
        w = self.controller.worker
        w.job_started.connect(self._on_job_started)
        w.engine_loading.connect(self._on_engine_loading)
        w.engine_ready.connect(self._on_engine_ready)
        w.progress.connect(self._on_progress)
        w.tile_ready.connect(self._on_tile)
        w.job_finished.connect(self._on_job_finished)
        w.job_failed.connect(self._on_job_failed)
        w.job_cancelled.connect(self._on_job_cancelled)
        w.devices_found.connect(self._on_devices)
        w.task_done.connect(self._on_task_done)
        w.task_failed.connect(self._on_task_failed)
        w.download_progress.connect(self._on_download_progress)

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
        self._set_icons(theme)
        self.view.update()
        if save:
            self._schedule_save()

    def set_view_mode(self, mode: str) -> None:
        self.view.set_mode(mode)
        (self.slider_action if mode == "slider" else self.side_action).setChecked(True)
        self.settings.view_mode = mode
        self._schedule_save()

    def _on_smooth(self, on: bool) -> None:
        self.view.set_smooth(on)
        self.settings.smooth = on
        self._schedule_save()

    def _on_settings_changed(self) -> None:
        self._merge_panel()
        self._update_status_labels()
        self._refresh_expected_sizes()
        self._schedule_save()

    def _merge_panel(self) -> None:
        p = self.panel.settings()
        for name in (
            "model",
            "scale",
            "device",
            "precision",
            "tile",
            "ensemble",
            "kind",
            "output_dir",
            "output_format",
            "quality",
            "template",
            "background",
        ):
            setattr(self.settings, name, getattr(p, name))

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
        added = []
        for path in found.images:
            item = self.model.add(path)
            added.append(item)
            self.loader.request(item.key, path)
        message = found.summary()
        if added:
            noun = "image" if len(added) == 1 else "images"
            prefix = f"Added {len(added)} {noun}"
            message = f"{prefix}. {message}" if message else prefix
        elif not message:
            message = "No images found"
        self.show_message(message)
        if added:
            self._select_new(added)
        self._update_actions()
        if self._batch:
            self._dispatch()
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
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasUrls() and any(u.isLocalFile() for u in mime.urls()):
            self.add_paths([Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()])
            return
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.show_message("The clipboard holds no image")
            return
        folder = self.pasted_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.show_message(f"Could not create {folder}: {exc.strerror or exc}")
            return
        path = folder / time.strftime("clipboard-%Y%m%d-%H%M%S.png")
        n = 2
        while path.exists():
            path = folder / time.strftime(f"clipboard-%Y%m%d-%H%M%S-{n}.png")
            n += 1
        if not image.save(str(path), "PNG"):
            self.show_message(f"Could not store the pasted image in {folder}")
            return
        self.add_paths([path])

    def pasted_folder(self) -> Path:
        """Where a pasted image (and so, by default, its result) is saved: where users look.

        The output folder when one is set, otherwise ``Pictures/FMEN Upscaler``; never a
        hidden application folder, where results could not be found again.
        """
        if self.settings.output_dir:
            return Path(self.settings.output_dir).expanduser()
        import platformdirs

        return Path(platformdirs.user_pictures_dir()) / "FMEN Upscaler"

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
        image = QImage(str(result.path))  # full size, as saved (the window may show less)
        if image.isNull():
            image = result.image
        mime = QMimeData()
        mime.setImageData(image)
        mime.setUrls([QUrl.fromLocalFile(str(result.path))])
        QGuiApplication.clipboard().setMimeData(mime)
        self.show_message(f"Copied {result.path.name} ({image.width()}×{image.height()})")

    def remove_items(self, keys: list[int]) -> None:
        running_key = self._running[1] if self._running else None
        removable = {k for k in keys if k != running_key}
        if self._current_key in removable:
            self._current_key = None
            self.view.clear()
            self._fill_side_pickers(None)
        self.model.remove(removable)
        self._update_actions()

    def rerun_items(self, keys: list[int]) -> None:
        """Queue finished items again with the current settings (e.g. to compare models)."""
        for key in keys:
            item = self.model.find(key)
            if item is not None and item.status in FINISHED_STATES and item.original is not None:
                item.status, item.message, item.done, item.total = PENDING, "", 0, 0
                self.model.changed(key)
        self.start()

    def clear_finished(self) -> None:
        self.remove_items([i.key for i in self.model.items() if i.status in FINISHED_STATES])

    def _on_loaded(self, key: int, loaded: LoadedImage) -> None:
        item = self.model.find(key)
        if item is None:
            return
        item.thumb, item.original, item.in_size = loaded.thumb, loaded.image, loaded.size
        item.frames = loaded.frames
        item.jpeg_quality = loaded.jpeg_quality
        if item.frames > 1:
            self.show_message(f"{item.name}: {item.animation_note()}")
        if item.status == LOADING:
            item.status = PENDING
        self._set_expected(item)
        self.model.changed(key)
        if key == self._current_key:
            self._show_item(item)
        self._update_actions()
        if self._batch:
            self._dispatch()

    def _on_load_failed(self, key: int, reason: str) -> None:
        item = self.model.find(key)
        if item is None:
            return
        item.status, item.message = FAILED, reason
        self.model.changed(key)
        self.show_message(f"{item.name}: {reason}")
        self._update_actions()
        self.item_finished.emit(key)
        if self._batch:
            self._dispatch()

    def _set_expected(self, item: QueueItem) -> None:
        """What the item will become under the current settings: size and network kind."""
        if item.in_size is not None:
            s = self.settings.scale
            item.expected_out = (item.in_size[0] * s, item.in_size[1] * s)
        item.kind_choice = self._kind_choice(item)
        item.show_kind = self.panel.photo_available(self.settings.model, self.settings.scale)

    def _kind_choice(self, item: QueueItem) -> KindChoice:
        """Clean or photo network for ``item`` (per item under Auto); see ``engine/kinds.py``."""
        s = self.settings
        return choose_kind(s.kind, item.jpeg_quality, self.panel.photo_available(s.model, s.scale))

    def _refresh_expected_sizes(self) -> None:
        for item in self.model.items():
            if item.status in (PENDING, LOADING):
                self._set_expected(item)
                self.model.changed(item.key)

    # ------------------------------------------------------------------ queue across restarts
    def queue_records(self) -> list[dict[str, object]]:
        """The queue as plain records; a running or unread item comes back as queued."""
        records: list[dict[str, object]] = []
        for item in self.model.items():
            status = item.status if item.status in FINISHED_STATES else PENDING
            records.append(
                {
                    "path": str(item.path),
                    "status": status,
                    "message": item.message if status in FINISHED_STATES else "",
                    "results": [
                        {"label": r.label, "path": str(r.path), "size": list(r.size), "seconds": r.seconds}
                        for r in item.results.values()
                    ],
                }
            )
        return records

    def save_queue(self) -> None:
        """Write the queue now (it is also written shortly after every change)."""
        self._queue_timer.stop()
        if self._keep_queue:
            session.save_queue(self.queue_records())

    def restore_queue(self) -> None:
        """Queue again what was there when the app last quit (or crashed), with its results.

        Inputs that are gone are skipped; results whose files are gone are dropped, and an item
        left without any goes back to the queue instead of claiming "done".
        """
        restored = 0
        for record in session.load_queue():
            path = Path(str(record["path"]))
            if not path.is_file():
                continue
            item = self.model.add(path)
            restored += 1
            results = [r for r in record.get("results", []) if isinstance(r, dict)]
            kept = [r for r in results if Path(str(r.get("path", ""))).is_file()]
            status = str(record.get("status", PENDING))
            if status in FINISHED_STATES and (kept or status != DONE):
                item.status, item.message = status, str(record.get("message", ""))
            for r in kept:
                request = self._next_result_request
                self._next_result_request -= 1
                size = r.get("size") or [0, 0]
                self._result_requests[request] = (
                    item.key,
                    str(r.get("label", "")),
                    (int(size[0]), int(size[1])),
                    float(r.get("seconds", 0.0)),
                )
                self.result_loader.request(request, Path(str(r["path"])))
                item.results[str(r.get("label", ""))] = Result(
                    str(r.get("label", "")), Path(str(r["path"])), QImage(), (int(size[0]), int(size[1])), 0.0
                )
            self.loader.request(item.key, path)
        if restored:
            noun = "image" if restored == 1 else "images"
            self.show_message(f"Restored the queue: {restored} {noun}")
            self.select(self.model.items()[0].key)

    def _on_result_loaded(self, request: int, loaded: LoadedImage) -> None:
        info = self._result_requests.pop(request, None)
        item = self.model.find(info[0]) if info else None
        if info is None or item is None or info[1] not in item.results:
            return
        _key, label, size, seconds = info
        item.results[label] = Result(label, loaded.path, loaded.image, size, seconds)
        self.model.changed(item.key)
        if item.key == self._current_key:
            self._show_item(item)

    # ------------------------------------------------------------------ selection and display
    def select(self, key: int) -> None:
        row = self.model.row_of(key)
        if row >= 0:
            self.queue_view.setCurrentIndex(self.model.index(row))

    def _select_new(self, added: list[QueueItem]) -> None:
        """Select what was just added and scroll it into view: the user looks for it there."""
        first, last = self.model.row_of(added[0].key), self.model.row_of(added[-1].key)
        self.queue_view.scrollTo(self.model.index(last))
        self.select(added[0].key)
        selection = QItemSelection(self.model.index(first), self.model.index(last))
        self.queue_view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.queue_view.scrollTo(self.model.index(first))

    def current_item(self) -> QueueItem | None:
        return self.model.find(self._current_key) if self._current_key is not None else None

    def _on_current_changed(self, current: object, _previous: object) -> None:
        item = current.data(ItemRole) if current is not None and current.isValid() else None  # type: ignore[attr-defined]
        if item is None:
            return
        if self._running and item.key != self._running[1] and self.queue_view.hasFocus():
            self._follow = False  # the user looks at something else: stop jumping to the job
        self._current_key = item.key
        self._show_item(item)

    def _show_item(self, item: QueueItem) -> None:
        self._fill_side_pickers(item)
        self._apply_sides(keep_view=False)
        if self._running and self._running[1] == item.key and item.expected_out:
            self.view.begin_progress(QSize(*item.expected_out))
        self.setWindowTitle(f"{item.name} — FMEN Upscaler")
        info = item.size_text()
        self.image_info.setText(f"{item.name}  ·  {info}" if info else item.name)

    def _is_running(self, item: QueueItem) -> bool:
        return self._running is not None and self._running[1] == item.key

    def _fill_side_pickers(self, item: QueueItem | None) -> None:
        """List the original, every finished result and, while it runs, the item's own job.

        Entries carry their result label as item data; the running job's entry carries
        ``RUNNING_SIDE`` and is shown on the right, so the pane and the dropdown name the model
        and scale of the job that is running, not of an earlier result of the same image.
        """
        entries = [(ORIGINAL, ORIGINAL), *((label, label) for label in (item.results if item else {}))]
        if item is not None and self._is_running(item):
            entries.append((f"{item.job_label} (running…)", RUNNING_SIDE))
        for combo, default in ((self.left_combo, ORIGINAL), (self.right_combo, entries[-1][1])):
            combo.blockSignals(True)
            combo.clear()
            for text, data in entries:
                combo.addItem(text, data)
            combo.setCurrentIndex(max(0, combo.findData(default)))
            combo.setEnabled(item is not None)
            combo.blockSignals(False)

    @staticmethod
    def _side_of(combo: QComboBox) -> str:
        """The label (or ``RUNNING_SIDE``) chosen in a side picker."""
        data = combo.currentData()
        return str(data) if data else ORIGINAL

    def _source_for(self, item: QueueItem, label: str) -> Source | None:
        if label == RUNNING_SIDE and item.original is not None:
            # The running job's tiles are painted over the dimmed original, under its own label.
            return Source(item.original, item.job_label, is_original=True)
        if label == ORIGINAL or label not in item.results:
            return Source(item.original, ORIGINAL, is_original=True) if item.original is not None else None
        result = item.results[label]
        shown = result.image.width()
        if 0 < shown < result.size[0]:  # a big result is held as a reduced copy: say so
            label = f"{label} (preview {round(100 * shown / result.size[0])}%)"
        return Source(result.image, label, size=QSize(*result.size))

    def _apply_sides(self, keep_view: bool = True) -> None:
        item = self.current_item()
        if item is None or item.original is None:
            self.view.clear()
            return
        left = self._source_for(item, self._side_of(self.left_combo))
        right = self._source_for(item, self._side_of(self.right_combo))
        original = Source(item.original, ORIGINAL, is_original=True)
        self.view.set_sources(left, right, original=original, keep_view=keep_view)
        self._update_actions()

    def _running_label(self) -> str:
        """The label of a job started now with the current settings (before the engine says)."""
        if self.panel.weights_override is not None:
            return self._engine_labels.get(str(self.panel.weights_override), self.panel.weights_override.name)
        s = self.settings
        return f"{'FMEN-S' if s.model == 'fmen-s' else 'FMEN'} ×{s.scale}"

    def _on_sides_changed(self, _index: int) -> None:
        self._apply_sides(keep_view=True)

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Upscale every queued image; with none queued, re-run the shown one (to compare)."""
        problem = self.panel.weights_problem()
        if problem:
            self.show_message(problem[:1].upper() + problem[1:])
            return
        pending = [i for i in self.model.items() if i.status in (PENDING, LOADING)]
        if not pending:
            item = self.current_item()
            if item is None or item.status == RUNNING or item.original is None:
                self.show_message("Nothing to upscale: drop or open images first")
                return
            item.status, item.message, item.done, item.total = PENDING, "", 0, 0
            self.model.changed(item.key)
        self._batch = True
        self._active = True
        self._follow = True
        self._dispatch()

    def _dispatch(self) -> None:
        """Send the next pending item to the worker if none is running, or go idle."""
        if self._closing:
            return
        if self._running is not None:
            self._update_actions()
            return
        item = self.model.next_pending() if self._batch else None
        if item is None:
            if self._batch and any(i.status == LOADING for i in self.model.items()):
                self._update_actions()  # more images are still being read: wait for them
                return
            self._batch = False
            self._eta_timer.stop()
            self.progress_bar.hide()
            self._update_actions()
            if self._active:
                self._active = False
                self.idle.emit()
            return
        spec = self.job_spec(item)
        item.job_label = self._running_label()
        item.status, item.message, item.done, item.total = RUNNING, "", 0, 0
        item.job_id, item.started_at, item.first_tile_at = spec.job_id, time.monotonic(), None
        item.last_tile_at = None
        self._set_expected(item)
        item.job_fmt = self._output_format_key(item)
        item.finish_estimate = self._finish_seconds(item)
        self._running = (spec.job_id, item.key)
        self.model.changed(item.key)
        self.controller.submit(spec)
        self._eta_timer.start()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        if self._follow and self._current_key != item.key:
            self.select(item.key)
        elif self._current_key == item.key:
            self._show_item(item)
        self._update_actions()

    def job_spec(self, item: QueueItem) -> JobSpec:
        """The job for ``item`` under the current settings."""
        self._merge_panel()
        s = self.settings
        return JobSpec(
            job_id=next_job_id(),
            src=item.path,
            model=s.model,
            scale=s.scale,
            weights=self.panel.weights_override,
            device=s.device,
            precision=s.precision,
            tile="auto" if s.tile == 0 else s.tile,
            ensemble=s.ensemble,
            kind=self._kind_choice(item).kind,
            out_dir=Path(s.output_dir).expanduser() if s.output_dir else None,
            fmt=s.output_format or None,  # None: the input's format, decided by the engine
            quality=s.quality,
            template=s.template,
            background=background_rgb(s.background),
        )

    def cancel(self) -> None:
        """Stop the running job (within one tile) and the batch; pending items stay queued."""
        if self._downloading:
            self.controller.cancel_download()
        if self._running is None:
            if self._batch:
                self._batch = False
                self._dispatch()
            return
        self._batch = False
        self.controller.cancel(self._running[0])
        self.show_message("Cancelling…")
        self._update_actions()

    def is_busy(self) -> bool:
        return self._running is not None

    def _running_item(self, job_id: int) -> QueueItem | None:
        if self._running is None or self._running[0] != job_id:
            return None
        return self.model.find(self._running[1])

    def _on_job_started(self, job_id: int) -> None:
        item = self._running_item(job_id)
        if item is not None:
            item.started_at = time.monotonic()
            item.first_tile_at = item.started_at

    def _on_engine_loading(self, text: str) -> None:
        self.show_message(text)

    def _on_engine_ready(self, label: str, device_label: str) -> None:
        self.model_label.setText(label)
        self.device_label.setText(device_label)
        if self.panel.weights_override is not None:
            self._engine_labels[str(self.panel.weights_override)] = label
        if self._running:
            item = self.model.find(self._running[1])
            if item is not None:
                item.first_tile_at = time.monotonic()  # the ETA is about tiles, not loading
                if item.job_label != label:  # the engine knows best (e.g. a weights file's scale)
                    item.job_label = label
                    if item.key == self._current_key:
                        self._show_item(item)
        self.show_message(f"{label} ready on {device_label}", 3000)

    def _on_progress(self, job_id: int, done: int, total: int) -> None:
        item = self._running_item(job_id)
        if item is None:
            return
        item.done, item.total = done, total
        item.last_tile_at = time.monotonic()
        self.model.changed(item.key)
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)

    def _on_tile(self, job_id: int, tile: QImage, x: int, y: int, width: int, height: int) -> None:
        item = self._running_item(job_id)
        if item is None or item.key != self._current_key:
            return
        if not self.view.has_progress() or self.view.canvas_size() != QSize(width, height):
            item.expected_out = (width, height)
            self.view.begin_progress(QSize(width, height))
        self.view.paste_tile(tile, x, y)

    def _tick_eta(self) -> None:
        if self._running:
            self.model.changed(self._running[1])
        self._update_queue_title()

    def _output_format_key(self, item: QueueItem) -> str:
        """The output format an item's job writes ("png"), for the saving-time estimate."""
        key = self.settings.output_format or item.path.suffix.lower().lstrip(".")
        return {"jpeg": "jpg", "tif": "tiff"}.get(key, key)

    def _finish_seconds(self, item: QueueItem, fmt: str | None = None) -> float:
        if item.expected_out is None:
            return 0.0
        pixels = item.expected_out[0] * item.expected_out[1]
        return self._finish_rates.seconds(fmt or self._output_format_key(item), pixels)

    def queue_eta(self, now: float | None = None) -> float | None:
        """Seconds until the running image and every queued one are saved (None: not known yet)."""
        item = self.model.find(self._running[1]) if self._running else None
        if item is None or item.expected_out is None:
            return None
        queued = [
            (i.expected_out[0] * i.expected_out[1], self._finish_seconds(i))
            for i in self.model.items()
            if i.status == PENDING and i.expected_out is not None and self._batch
        ]
        return queue_seconds_left(
            time.monotonic() if now is None else now,
            item.first_tile_at,
            item.done,
            item.total,
            item.expected_out[0] * item.expected_out[1],
            item.finish_estimate,
            queued,
            item.last_tile_at,
        )

    def _job_done(self, item: QueueItem | None) -> None:
        self._running = None
        self.view.end_progress()
        self.progress_bar.hide()
        if item is not None:
            self.model.changed(item.key)
            if item.key == self._current_key:
                self._show_item(item)
            self.item_finished.emit(item.key)
        self._dispatch()

    def _on_job_finished(self, outcome: JobOutcome, preview: QImage) -> None:
        item = self._running_item(outcome.job_id)
        if item is None:
            return
        if item.last_tile_at is not None:  # learn how long saving took, for the next estimates
            fmt = outcome.dst.suffix.lower().lstrip(".")
            fmt = {"jpeg": "jpg", "tif": "tiff"}.get(fmt, fmt)
            pixels = outcome.out_size[0] * outcome.out_size[1]
            self._finish_rates.learn(fmt, pixels, time.monotonic() - item.last_tile_at)
        item.results.pop(outcome.label, None)  # a re-run replaces, and moves to the end
        item.results[outcome.label] = Result(
            outcome.label, outcome.dst, preview, outcome.out_size, outcome.seconds
        )
        saved = f"Saved {outcome.dst}"
        if outcome.filled_with:
            fill = BACKGROUNDS.get(outcome.filled_with, outcome.filled_with)
            saved += f" (JPEG has no transparency: transparent areas filled with {fill})"
        if item.frames > 1:
            saved += f"; {item.animation_note()}"
        item.status, item.message = DONE, saved
        item.done = item.total = max(item.total, 1)
        self._last_run = f"{outcome.label}: {format_seconds(outcome.seconds)}"
        self.model_label.setText(outcome.label)
        self.device_label.setText(outcome.device_label)
        self._update_status_labels()
        self.show_message(saved)
        self._job_done(item)

    def _on_job_failed(self, job_id: int, reason: str) -> None:
        item = self._running_item(job_id)
        if item is None:
            return
        item.status, item.message = FAILED, reason
        self.show_message(f"{item.name}: {reason}")
        self._job_done(item)

    def _on_job_cancelled(self, job_id: int) -> None:
        item = self._running_item(job_id)
        if item is None:
            return
        item.status, item.message, item.done, item.total = CANCELLED, "nothing was saved", 0, 0
        self.show_message(f"Cancelled {item.name}; nothing was saved")
        self._job_done(item)

    # ------------------------------------------------------------------ weights and devices
    def _on_devices(self, devices: list) -> None:
        self.panel.set_devices(devices)
        if not self.device_label.text() and devices:
            key = self.settings.device
            label = devices[0][1] if key == "auto" else self.panel.device_label(key)
            self.device_label.setText(label)

    def import_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import FMEN weights",
            str(Path.home()),
            "Weights (*.pt *.pth *.ckpt *.safetensors *.bin);;All files (*)",
        )
        if path:
            self.show_message(f"Checking {Path(path).name}…", 0)
            self.controller.import_weights(path)

    def download_official(self) -> None:
        if self._downloading:
            return
        self._downloading = True
        self.panel.download_button.setEnabled(False)
        self.show_message("Downloading the official FMEN-S ×4 weights… (Esc cancels)", 0)
        self.controller.download_official()

    def _on_download_progress(self, received: int, total: int) -> None:
        if total > 0:
            self.show_message(f"Downloading FMEN-S ×4: {received * 100 // total}%", 0)

    def _on_task_done(self, kind: str, message: str) -> None:
        if kind == "download":
            self._downloading = False
            self.panel.download_button.setEnabled(True)
        if kind in ("import", "download"):
            self.panel.refresh_weights()
            self._refresh_expected_sizes()  # a new network may change what Auto picks
        self.show_message(message)

    def _on_task_failed(self, kind: str, message: str) -> None:
        if kind == "download":
            self._downloading = False
            self.panel.download_button.setEnabled(True)
        self.show_message(message)
        if kind in ("import", "save"):
            QMessageBox.warning(self, "FMEN Upscaler", message)

    # ------------------------------------------------------------------ saving
    def shown_result(self) -> Result | None:
        item = self.current_item()
        if item is None or not item.results:
            return None
        label = self._side_of(self.right_combo)
        return item.results.get(label) or item.latest_result()

    def save_as(self) -> None:
        result = self.shown_result()
        if result is None:
            self.show_message("No result to save yet")
            return
        filters = ";;".join(f"{text} (*.{key})" for key, text in FORMATS.items())
        suffix = result.path.suffix.lstrip(".").lower()
        current = next((f"{t} (*.{k})" for k, t in FORMATS.items() if k == suffix), None)
        path, chosen = QFileDialog.getSaveFileName(
            self, "Save result as", str(result.path), filters, current or ""
        )
        if not path:
            return
        dst = Path(path)
        key = dst.suffix.lstrip(".").lower()
        key = {"jpeg": "jpg", "tif": "tiff"}.get(key, key)
        if key not in FORMATS:
            key = next((k for k, t in FORMATS.items() if chosen.startswith(t)), "png")
            dst = dst.with_suffix(f".{key}")
        self.controller.save_copy(str(result.path), str(dst), key, self.settings.quality)

    # ------------------------------------------------------------------ status and actions
    def show_message(self, text: str, msecs: int = STATUS_MESSAGE_MS) -> None:
        self.statusBar().showMessage(text, msecs)

    def _update_status_labels(self) -> None:
        if not self.model_label.text() or not self._running:
            if self.panel.weights_override is not None:
                self.model_label.setText(self.panel.weights_override.name)
            else:
                self.model_label.setText(self._running_label())
        self.run_label.setText(f"Last run: {self._last_run}" if self._last_run else "Last run: –")
        if not self.device_label.text():
            self.device_label.setText("Device: Auto")

    def _update_actions(self) -> None:
        busy = self._running is not None
        has_items = self.model.rowCount() > 0
        self.upscale_action.setEnabled(has_items and not self._batch)
        self.cancel_action.setEnabled(busy or self._batch or self._downloading)
        self.save_action.setEnabled(self.shown_result() is not None)
        self.copy_action.setEnabled(self.shown_result() is not None)
        self._update_queue_title()
        if not self._closing:
            self._queue_timer.start()
        self.clear_action.setEnabled(any(i.status in FINISHED_STATES for i in self.model.items()))

    def _update_queue_title(self) -> None:
        """ "Queue · 2/5 done · 1 failed · about 3 min left": failures are never counted as done."""
        items = self.model.items()
        if not items:
            self.queue_title.setText("Queue")
            return
        done = sum(1 for i in items if i.status == DONE)
        failed = sum(1 for i in items if i.status == FAILED)
        parts = [f"Queue · {done}/{len(items)} done"]
        if failed:
            parts.append(f"{failed} failed")
        eta = self.queue_eta()
        if eta is not None:
            parts.append(f"about {format_seconds(eta)} left")
        self.queue_title.setText(" · ".join(parts))

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(command, keys) of every action that has a shortcut, read from the actions themselves.

        Generated, not written out, so the list cannot drift from what the keys really do.
        """
        rows = []
        for action in self.actions():
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
            if keys:
                rows.append((action.text().replace("&", "").replace("…", ""), " or ".join(keys)))
        return rows

    def show_shortcuts(self) -> QDialog:
        """A table of the window's shortcuts (non-modal, so it can stay open while working)."""
        dialog = QDialog(self)
        dialog.setObjectName("shortcutsDialog")
        dialog.setWindowTitle("Keyboard Shortcuts — FMEN Upscaler")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        rows = self.shortcut_rows()
        table = QTableWidget(len(rows), 2, dialog)
        table.setHorizontalHeaderLabels(["Command", "Keys"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for r, (command, keys) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(command))
            table.setItem(r, 1, QTableWidgetItem(keys))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        layout.addWidget(QLabel(HOWTO_KEYS))
        dialog.resize(460, 560)
        dialog.show()
        return dialog

    def show_howto(self) -> QMessageBox:
        """The few steps of a first use, shown non-modally."""
        box = QMessageBox(QMessageBox.Icon.Information, "How to use FMEN Upscaler", HOWTO_TITLE, parent=self)
        box.setObjectName("howtoDialog")
        box.setInformativeText(HOWTO)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()
        return box

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About FMEN Upscaler",
            "<h3>FMEN Upscaler</h3><p>Image super-resolution with FMEN and FMEN-S "
            "(Du et al., NTIRE 2022 Efficient SR).</p>"
            "<p>Drag the divider or use ←/→, wheel to zoom, drag to pan, hold Space to see the "
            "original, 1/2 switch the view.</p>",
        )

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            n = sum(1 for u in event.mimeData().urls() if u.isLocalFile())
            self.overlay.text = "Drop to add to the queue" if n != 1 else "Drop to add it to the queue"
            self.overlay.setGeometry(self.rect())
            self.overlay.raise_()
            self.overlay.show()
            event.acceptProposedAction()
        elif event.mimeData().hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

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

    # ------------------------------------------------------------------ Space: flash the original
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self.isActiveWindow():
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if key_event.key() == Qt.Key.Key_Space and not self._typing():
                if not key_event.isAutoRepeat():
                    self.view.set_flash(event.type() == QEvent.Type.KeyPress)
                return True
        return super().eventFilter(obj, event)

    def _typing(self) -> bool:
        focus = QApplication.focusWidget()
        return isinstance(focus, QLineEdit | QTextEdit | QAbstractSpinBox) or (
            isinstance(focus, QComboBox) and focus.isEditable()
        )

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
        if self._running is not None and not self.confirm_close_during_job():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Save, cancel everything and join every thread; idempotent."""
        if self._closing:
            return
        self._closing = True
        self._batch = False
        self._eta_timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        try:
            self.save_settings()
        except Exception:
            log.exception("could not save the settings")
        self.save_queue()
        self.controller.shutdown()
        self.loader.wait()
        self.result_loader.wait()
