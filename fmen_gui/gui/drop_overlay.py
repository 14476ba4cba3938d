"""The highlight shown over the window while files are dragged over it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QDragEnterEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget


class DropOverlay(QWidget):
    """A translucent highlight shown over the window while files are dragged over it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.text = "Drop to add to the queue"
        self.hide()

    def enter(self, event: QDragEnterEvent) -> None:
        """Files are dragged in: show over the whole window for local files, accept a picture too."""
        mime = event.mimeData()
        if mime.hasUrls():
            n = sum(1 for u in mime.urls() if u.isLocalFile())
            self.text = "Drop to add to the queue" if n != 1 else "Drop to add it to the queue"
            self.setGeometry(self._window.rect())
            self.raise_()
            self.show()
            event.acceptProposedAction()
        elif mime.hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

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
