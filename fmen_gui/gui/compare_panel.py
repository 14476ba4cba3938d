"""The centre of the window: a picker for each side over the compare view.

Each side shows the original or any finished result of the shown image, so two results of one
picture (FMEN vs FMEN-S, or ×2 vs ×4) can be compared; while the image's job runs, that job is
a side of its own, painted tile by tile over the dimmed original.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from fmen_gui.gui.compare_view import ORIGINAL, CompareView, Source
from fmen_gui.gui.queue import QueueItem

RUNNING_SIDE = "\x00running"  # side-picker data of the running job (never a result label)


class ComparePanel(QWidget):
    """Side pickers, the image's name and sizes, and the compare view of one queue item."""

    sides_shown = Signal()  # the view shows new sides of an item (what can be saved changed)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._item: QueueItem | None = None
        cv = QVBoxLayout(self)
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

    def show_item(self, item: QueueItem | None, running: bool = False) -> None:
        """Show ``item`` (None: nothing); ``running``: its job runs now, tiles will arrive."""
        self._item = item
        self._fill_side_pickers(item, running)
        if item is None:
            self.view.clear()
            return
        self._apply_sides(keep_view=False)
        if running and item.expected_out:
            self.view.begin_progress(QSize(*item.expected_out))
        info = item.size_text()
        self.image_info.setText(f"{item.name}  ·  {info}" if info else item.name)

    def right_side(self) -> str:
        """The result label (or ``ORIGINAL``, ``RUNNING_SIDE``) chosen for the right side."""
        return self._side_of(self.right_combo)

    def _fill_side_pickers(self, item: QueueItem | None, running: bool) -> None:
        """List the original, every finished result and, while it runs, the item's own job.

        Entries carry their result label as item data; the running job's entry carries
        ``RUNNING_SIDE`` and is shown on the right, so the pane and the dropdown name the model
        and scale of the job that is running, not of an earlier result of the same image.
        """
        entries = [(ORIGINAL, ORIGINAL), *((label, label) for label in (item.results if item else {}))]
        if item is not None and running:
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

    @staticmethod
    def _source_for(item: QueueItem, label: str) -> Source | None:
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
        item = self._item
        if item is None or item.original is None:
            self.view.clear()
            return
        left = self._source_for(item, self._side_of(self.left_combo))
        right = self._source_for(item, self._side_of(self.right_combo))
        original = Source(item.original, ORIGINAL, is_original=True)
        self.view.set_sources(left, right, original=original, keep_view=keep_view)
        self.sides_shown.emit()

    def _on_sides_changed(self, _index: int) -> None:
        self._apply_sides(keep_view=True)


class SpaceFlash(QObject):
    """Holding Space shows the original in ``view`` while ``window`` is active, unless typing.

    An application-wide event filter: the focus may be on any widget of the window.
    """

    def __init__(self, window: QWidget, view: CompareView) -> None:
        super().__init__(window)
        self._window, self._view = window, view
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def remove(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self._window.isActiveWindow():
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if key_event.key() == Qt.Key.Key_Space and not _typing():
                if not key_event.isAutoRepeat():
                    self._view.set_flash(event.type() == QEvent.Type.KeyPress)
                return True
        return super().eventFilter(obj, event)


def _typing() -> bool:
    focus = QApplication.focusWidget()
    return isinstance(focus, QLineEdit | QTextEdit | QAbstractSpinBox) or (
        isinstance(focus, QComboBox) and focus.isEditable()
    )
