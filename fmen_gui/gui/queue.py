"""The queue of images: a list model of items and a compact card-style view.

Each item keeps everything the window needs to show it again later (thumbnail, original,
every finished result by label), so re-selecting an image is instant and two results of the
same picture (FMEN vs FMEN-S, or ×2 vs ×4) can be compared side by side.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec

from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QDesktopServices,
    QFont,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fmen_gui.engine.jpeg_quality import JpegQuality
from fmen_gui.engine.kinds import KindChoice
from fmen_gui.gui.eta import item_seconds_left
from fmen_gui.gui.theme import text_colour

if TYPE_CHECKING:
    from fmen_gui.gui.imaging import LoadedImage

P = ParamSpec("P")

PENDING, LOADING, RUNNING, DONE, FAILED, CANCELLED = (
    "pending",
    "loading",
    "running",
    "done",
    "failed",
    "cancelled",
)
FINISHED_STATES = frozenset({DONE, FAILED, CANCELLED})
STATUS_TEXT = {
    PENDING: "Queued",
    LOADING: "Reading…",
    RUNNING: "Upscaling…",
    DONE: "Done",
    FAILED: "Failed",
    CANCELLED: "Cancelled",
}
STATUS_COLOURS = {DONE: "#4caf50", FAILED: "#ef5350", CANCELLED: "#ffa726", RUNNING: "#4fc3f7"}
ItemRole = Qt.ItemDataRole.UserRole + 1
_keys = itertools.count(1)


@dataclass
class Result:
    """One finished upscale of an item."""

    label: str
    path: Path
    image: QImage
    size: tuple[int, int]
    seconds: float


@dataclass
class QueueItem:
    """One input image and everything known about it."""

    path: Path
    key: int = field(default_factory=lambda: next(_keys))
    status: str = LOADING
    message: str = ""
    thumb: QImage | None = None
    original: QImage | None = None
    in_size: tuple[int, int] | None = None
    frames: int = 1  # >1: an animation; only its first frame is upscaled
    jpeg_quality: JpegQuality | None = None  # estimated when read; None: never a JPEG
    kind_choice: KindChoice | None = None  # the network it gets under the current settings
    show_kind: bool = False  # say the kind on the card (only where there is a choice to make)
    expected_out: tuple[int, int] | None = None
    done: int = 0
    total: int = 0
    first_tile_at: float | None = None
    last_tile_at: float | None = None
    finish_estimate: float = 0.0  # seconds expected for encoding and writing after the last tile
    job_id: int | None = None
    job_label: str = ""  # model and scale of the job running or last started ("FMEN ×4")
    results: dict[str, Result] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def animation_note(self) -> str:
        """ "first frame only (animation of 12 frames)" for animations, else ""."""
        return f"first frame only (animation of {self.frames} frames)" if self.frames > 1 else ""

    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Time left: remaining tiles plus saving (None until it can be told); see ``gui.eta``."""
        if self.status != RUNNING:
            return None
        return item_seconds_left(
            time.monotonic() if now is None else now,
            self.first_tile_at,
            self.done,
            self.total,
            self.finish_estimate,
            self.last_tile_at,
        )

    def size_text(self) -> str:
        if self.in_size is None:
            return ""
        text = f"{self.in_size[0]}×{self.in_size[1]}"
        out = self.latest_result().size if self.results else self.expected_out
        if out is not None:
            text += f" → {out[0]}×{out[1]}"
        if self.frames > 1:
            text += " · first frame only"
        if self.show_kind and self.kind_choice is not None:
            text += f" · {self.kind_choice.kind.capitalize()}"
        return text

    def latest_result(self) -> Result:
        return list(self.results.values())[-1]

    # State changes. The batch changes an item only through these, called via
    # ``QueueModel.update`` so that each change repaints the item's card.
    def read(self, loaded: LoadedImage) -> None:
        """The input was decoded: keep its pictures, and queue it if it was waiting for them."""
        self.thumb, self.original, self.in_size = loaded.thumb, loaded.image, loaded.size
        self.frames, self.jpeg_quality = loaded.frames, loaded.jpeg_quality
        if self.status == LOADING:
            self.status = PENDING

    def expect(self, out_size: tuple[int, int] | None, kind_choice: KindChoice, show_kind: bool) -> None:
        """What the item will become under the current settings (size, network kind)."""
        if out_size is not None:
            self.expected_out = out_size
        self.kind_choice, self.show_kind = kind_choice, show_kind

    def grow_to(self, out_size: tuple[int, int]) -> None:
        """The running job's output has this size (the engine knows best, e.g. a weights file's scale)."""
        self.expected_out = out_size

    def start(self, job_id: int, label: str, finish_estimate: float) -> None:
        """Sent to the worker as job ``job_id`` (``label``: "FMEN ×4")."""
        self.status, self.message, self.done, self.total = RUNNING, "", 0, 0
        self.job_id, self.job_label = job_id, label
        self.first_tile_at = self.last_tile_at = None
        self.finish_estimate = finish_estimate

    def job_started(self) -> None:
        """The worker took the job: time it from now."""
        self.first_tile_at = time.monotonic()

    def engine_ready(self, label: str) -> None:
        """The network is loaded: the ETA is about tiles, not loading; the engine names the job."""
        self.first_tile_at = time.monotonic()
        self.job_label = label

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.last_tile_at = time.monotonic()

    def finish(self, result: Result, message: str) -> None:
        """Done: ``result`` replaces an earlier one of the same label and becomes the latest."""
        self.results.pop(result.label, None)
        self.add_result(result)
        self.status, self.message = DONE, message
        self.done = self.total = max(self.total, 1)

    def fail(self, message: str) -> None:
        self.status, self.message = FAILED, message

    def cancel(self) -> None:
        self.status, self.message, self.done, self.total = CANCELLED, "nothing was saved", 0, 0

    def requeue(self) -> None:
        """Queued again (a re-run keeps the earlier results, to compare)."""
        self.status, self.message, self.done, self.total = PENDING, "", 0, 0

    def restore(self, status: str, message: str) -> None:
        """The final state it had when the app last quit."""
        self.status, self.message = status, message

    def add_result(self, result: Result) -> None:
        """Keep ``result`` (in place of a same-label one, e.g. its picture read back from its file)."""
        self.results[result.label] = result


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


class QueueModel(QAbstractListModel):
    """A flat list of :class:`QueueItem`, addressed by their stable ``key``."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[QueueItem] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._items)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.name
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = str(item.path)
            if item.frames > 1:
                tip += f"\n{item.animation_note().capitalize()}"
            if item.show_kind and item.kind_choice is not None:
                reason = item.kind_choice.reason
                tip += f"\nNetwork: {reason[0].upper()}{reason[1:]}"
            if item.message:
                tip += f"\n{item.message}"
            return tip
        if role == ItemRole:
            return item
        return None

    def items(self) -> list[QueueItem]:
        return list(self._items)

    def add(self, path: Path) -> QueueItem:
        item = QueueItem(path=path)
        row = len(self._items)
        self.beginInsertRows(QModelIndex(), row, row)
        self._items.append(item)
        self.endInsertRows()
        return item

    def find(self, key: int) -> QueueItem | None:
        return next((i for i in self._items if i.key == key), None)

    def row_of(self, key: int) -> int:
        return next((r for r, i in enumerate(self._items) if i.key == key), -1)

    def update(
        self, key: int, change: Callable[Concatenate[QueueItem, P], None], *args: P.args, **kwargs: P.kwargs
    ) -> QueueItem | None:
        """Apply a state change (a ``QueueItem`` method) to item ``key`` and repaint it.

        The one way items change, so no change can forget to tell the views. None: no such item.
        """
        item = self.find(key)
        if item is not None:
            change(item, *args, **kwargs)
            self.changed(key)
        return item

    def changed(self, key: int) -> None:
        """Repaint one item (after ``update``, or when time alone changed its ETA)."""
        row = self.row_of(key)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def remove(self, keys: set[int]) -> None:
        for row in reversed(range(len(self._items))):
            if self._items[row].key in keys:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._items[row]
                self.endRemoveRows()

    def next_pending(self) -> QueueItem | None:
        return next((i for i in self._items if i.status == PENDING), None)


class QueueDelegate(QStyledItemDelegate):
    """Paints an item as a card: thumbnail, name, sizes, status and a thin progress bar."""

    HEIGHT = 64
    THUMB = 48

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return QSize(160, self.HEIGHT)

    def paint(
        self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        item: QueueItem | None = index.data(ItemRole)
        if item is None:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        rect: QRect = option.rect  # type: ignore[attr-defined]
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        state = option.state  # type: ignore[attr-defined]
        card = QRectF(rect).adjusted(4, 2, -4, -2)
        if state & QStyle.StateFlag.State_Selected:
            accent = QColor(STATUS_COLOURS[RUNNING])
            hl = QColor(accent)
            hl.setAlpha(40)
            p.setPen(QPen(accent, 1))
            p.setBrush(hl)
            p.drawRoundedRect(card.adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        elif state & QStyle.StateFlag.State_MouseOver:
            hover = QColor(palette.color(QPalette.ColorRole.Text))
            hover.setAlpha(18)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(hover)
            p.drawRoundedRect(card, 6, 6)

        thumb_box = QRect(
            int(card.left()) + 6,
            int(card.top()) + (int(card.height()) - self.THUMB) // 2,
            self.THUMB,
            self.THUMB,
        )
        shown = item.thumb  # small already: scaling it per paint is cheap
        if shown is not None and not shown.isNull():
            scaled = shown.scaled(
                thumb_box.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            x = thumb_box.left() + (thumb_box.width() - scaled.width()) // 2
            y = thumb_box.top() + (thumb_box.height() - scaled.height()) // 2
            p.drawImage(x, y, scaled)
        else:
            ph = QColor(palette.color(QPalette.ColorRole.Text))
            ph.setAlpha(30)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(ph)
            p.drawRoundedRect(QRectF(thumb_box), 4, 4)

        text_left = thumb_box.right() + 10
        text_w = int(card.right()) - text_left - 8
        name_font = QFont(option.font)  # type: ignore[attr-defined]
        name_font.setWeight(QFont.Weight.DemiBold)
        p.setFont(name_font)
        p.setPen(palette.color(QPalette.ColorRole.Text))
        fm = p.fontMetrics()
        top = int(card.top()) + 7
        p.drawText(
            QRect(text_left, top, text_w, fm.height()),
            Qt.AlignmentFlag.AlignLeft,
            fm.elidedText(item.name, Qt.TextElideMode.ElideMiddle, text_w),
        )

        small = QFont(option.font)  # type: ignore[attr-defined]
        small.setPointSizeF(max(7.5, small.pointSizeF() * 0.88))
        p.setFont(small)
        sfm = p.fontMetrics()
        dim = QColor(text_colour("dim"))
        line2 = top + fm.height() + 2
        p.setPen(dim)
        p.drawText(
            QRect(text_left, line2, text_w, sfm.height()),
            Qt.AlignmentFlag.AlignLeft,
            sfm.elidedText(item.size_text(), Qt.TextElideMode.ElideRight, text_w),
        )

        status = STATUS_TEXT.get(item.status, item.status)
        if item.status == DONE and item.results:
            status = f"Done · {format_seconds(item.latest_result().seconds)}"
        elif item.status == RUNNING and item.total:
            status = f"{round(100 * item.fraction())}%"
            eta = item.eta_seconds()
            if eta is not None:
                status += f" · {format_seconds(eta)} left"
        elif item.status in (FAILED, CANCELLED) and item.message:
            status = f"{status}: {item.message}"
        line3 = line2 + sfm.height() + 1
        colour = text_colour(item.status) if item.status in STATUS_COLOURS else None
        p.setPen(QColor(colour) if colour else dim)
        p.drawText(
            QRect(text_left, line3, text_w, sfm.height()),
            Qt.AlignmentFlag.AlignLeft,
            sfm.elidedText(status, Qt.TextElideMode.ElideRight, text_w),
        )

        if item.status == RUNNING:
            bar = QRectF(text_left, card.bottom() - 6, text_w, 3)
            track = QColor(palette.color(QPalette.ColorRole.Text))
            track.setAlpha(40)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(bar, 1.5, 1.5)
            p.setBrush(QColor(STATUS_COLOURS[RUNNING]))
            p.drawRoundedRect(
                QRectF(bar.left(), bar.top(), bar.width() * item.fraction(), bar.height()), 1.5, 1.5
            )
        p.restore()


class QueueView(QListView):
    """The list of queued images; Delete removes the selected ones (except a running job)."""

    remove_requested = Signal(list)  # keys
    rerun_requested = Signal(list)  # keys

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(QueueDelegate(self))
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setMouseTracking(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(220)

    def selected_items(self) -> list[QueueItem]:
        return (
            [i.data(ItemRole) for i in self.selectionModel().selectedRows()] if self.selectionModel() else []
        )

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 - Qt override
        items = self.selected_items()
        if not items:
            return
        menu = QMenu(self)
        keys = [i.key for i in items]
        rerun = menu.addAction("Upscale Again")
        rerun.setEnabled(any(i.status in FINISHED_STATES and i.original is not None for i in items))
        folder = menu.addAction("Show Result Folder")
        done = [i for i in items if i.results]
        folder.setEnabled(bool(done))
        menu.addSeparator()
        remove = menu.addAction("Remove from Queue")
        remove.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        chosen = menu.exec(event.globalPos())
        if chosen is rerun:
            self.rerun_requested.emit(keys)
        elif chosen is folder and done:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(done[0].latest_result().path.parent)))
        elif chosen is remove:
            self.remove_requested.emit(keys)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            keys = [i.key for i in self.selected_items()]
            if keys:
                self.remove_requested.emit(keys)
                event.accept()
                return
        super().keyPressEvent(event)


class QueuePanel(QWidget):
    """The left of the window: the queue's title (how far it got), a clear button and the list."""

    def __init__(self, model: QueueModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        qv = QVBoxLayout(self)
        qv.setContentsMargins(8, 6, 0, 6)
        qv.setSpacing(4)
        header = QHBoxLayout()
        self.title = QLabel("Queue")
        self.title.setObjectName("panelTitle")
        header.addWidget(self.title)
        header.addStretch(1)
        self.clear_button = QToolButton()
        self.clear_button.setToolTip("Remove finished items from the queue")
        self.clear_button.setAutoRaise(True)
        header.addWidget(self.clear_button)
        qv.addLayout(header)
        self.view = QueueView()
        self.view.setModel(model)
        qv.addWidget(self.view, 1)

    def update_title(self, eta: float | None) -> None:
        """ "Queue · 2/5 done · 1 failed · about 3 min left": failures are never counted as done."""
        items = self.model.items()
        if not items:
            self.title.setText("Queue")
            return
        done = sum(1 for i in items if i.status == DONE)
        failed = sum(1 for i in items if i.status == FAILED)
        parts = [f"Queue · {done}/{len(items)} done"]
        if failed:
            parts.append(f"{failed} failed")
        if eta is not None:
            parts.append(f"about {format_seconds(eta)} left")
        self.title.setText(" · ".join(parts))

    def select(self, key: int) -> None:
        """Make item ``key`` the current one (the window shows it)."""
        row = self.model.row_of(key)
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))

    def select_range(self, first_key: int, last_key: int) -> None:
        """Select what was just added and scroll it into view: the user looks for it there."""
        first, last = self.model.row_of(first_key), self.model.row_of(last_key)
        self.view.scrollTo(self.model.index(last))
        self.select(first_key)
        selection = QItemSelection(self.model.index(first), self.model.index(last))
        self.view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.view.scrollTo(self.model.index(first))
