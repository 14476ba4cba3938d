"""The before/after compare view: a slider mode and a synchronized side-by-side mode.

Design choices, and why:

* One widget paints both modes from one view state (zoom + offset in *canvas* pixels), so the
  two sides can never drift apart: side-by-side panes share the state by construction.
* The canvas is the size of the largest source (normally the result). Smaller sources (the
  original, or a ×2 result next to a ×4 one, e.g. FMEN-S ×2 against an imported ×4 model) are
  stretched onto it, so both sides always show the same region of the picture at the same
  size, as a person compares them on screen; a smaller result's label says it is enlarged.
  (Reducing the larger one instead would throw away the very detail being compared.)
* Only the visible part of each image is drawn (``drawImage`` with a source rectangle), so a
  4K result pans and zooms without a full-size rescale per frame.
* The divider position is a fraction of the widget width, not an image coordinate: it stays
  where the user put it while they zoom and pan, as in every slider comparison tool.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

MAX_ZOOM = 8.0
ZOOM_STEP = 1.25
DIVIDER_GRAB_PX = 12
PANE_GAP = 4
ORIGINAL = "Original"


@dataclass
class Source:
    """One side's picture and its label."""

    image: QImage
    label: str
    is_original: bool = False
    size: QSize | None = None  # the picture's true size when ``image`` is a reduced display copy

    def logical_size(self) -> QSize:
        return self.size if self.size is not None else self.image.size()


PROGRESS_MAX_PIXELS = 16_000_000  # the running job's tile canvas (64 MB); larger jobs are reduced
CHECKER_SQUARE = 8  # screen pixels per checkerboard square
CHECKER_COLOURS = ("#cccccc", "#ffffff")


def checkerboard() -> QPixmap:
    """One 2×2-square tile of the transparency checkerboard (built once, then cached)."""
    global _checker
    if _checker is None:
        n = CHECKER_SQUARE
        tile = QPixmap(2 * n, 2 * n)
        tile.fill(QColor(CHECKER_COLOURS[1]))
        p = QPainter(tile)
        p.fillRect(0, 0, n, n, QColor(CHECKER_COLOURS[0]))
        p.fillRect(n, n, n, n, QColor(CHECKER_COLOURS[0]))
        p.end()
        _checker = tile
    return _checker


_checker: QPixmap | None = None


class CompareView(QWidget):
    """Paints two sources for comparison, with zoom, pan, divider and a flash of the original."""

    zoom_changed = Signal(float)
    divider_changed = Signal(float)
    mode_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self._left: Source | None = None
        self._right: Source | None = None
        self._original: Source | None = None  # what Space flashes
        self._partial: QImage | None = None  # tiles of a running job, over a dimmed original
        self._partial_size = QSize()  # the job's output size; _partial may be a reduced copy
        self._mode = "slider"
        self._zoom = 1.0
        self._offset = QPointF(0.0, 0.0)  # canvas point at the top-left of every pane
        self._fit_mode = True
        self._divider = 0.5
        self._smooth = False
        self._flash = False
        self._drag: str | None = None  # "divider" | "pan"
        self._drag_origin = QPointF()
        self._drag_offset = QPointF()
        self._empty_title = "Drop images or folders here"
        self._empty_hint = "or Open… (Ctrl+O) · Paste (Ctrl+V)"

    # ------------------------------------------------------------------ sources
    def set_sources(
        self,
        left: Source | None,
        right: Source | None,
        *,
        original: Source | None = None,
        keep_view: bool = False,
    ) -> None:
        """Show ``left`` and ``right``; refit unless ``keep_view`` (then the region is kept)."""
        old = self.canvas_size()
        self._left, self._right = left, right
        self._original = original or (left if left and left.is_original else None)
        if self._partial is not None and self._partial_size != self.canvas_size():
            self._partial = None
        if keep_view:
            self._canvas_changed(old)
        else:
            self.fit()
        self.update()

    def sources(self) -> tuple[Source | None, Source | None]:
        return self._left, self._right

    def shown_label(self, src: Source) -> str:
        """The label painted for ``src``: a result smaller than the canvas says it is enlarged."""
        width, canvas = src.logical_size().width(), self.canvas_size().width()
        if src.is_original or not 0 < width < canvas:
            return src.label
        return f"{src.label} (shown enlarged {canvas / width:.3g}×)"

    def clear(self) -> None:
        self._left = self._right = self._original = None
        self._partial = None
        self.update()

    def begin_progress(self, out_size: QSize) -> None:
        """Start showing a job's tiles on the right side, over the dimmed original."""
        old = self.canvas_size()
        # Tiles are painted into a canvas of at most PROGRESS_MAX_PIXELS: a full-size one for a
        # 384-megapixel result would be 1.5 GB of memory for a picture shown at screen size.
        f = min(1.0, (PROGRESS_MAX_PIXELS / max(1, out_size.width() * out_size.height())) ** 0.5)
        reduced = QSize(max(1, round(out_size.width() * f)), max(1, round(out_size.height() * f)))
        image = QImage(reduced, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        self._partial = image
        self._partial_size = QSize(out_size)
        self._canvas_changed(old)
        self.update()

    def _canvas_changed(self, old: QSize) -> None:
        """Keep showing the same part of the picture when the canvas size changes.

        The canvas grows when a result (or a running job) joins the original; scaling zoom and
        offset by the same factor keeps the view on the same region instead of jumping.
        """
        new = self.canvas_size()
        if new == old:
            return
        if self._fit_mode or old.isEmpty() or new.isEmpty():
            self.fit()
            return
        factor = new.width() / old.width()
        self._offset = self._offset * factor
        lo, hi = self.zoom_limits()
        self._zoom = min(hi, max(lo, self._zoom / factor))
        self._clamp_offset()
        self.zoom_changed.emit(self._zoom)

    def paste_tile(self, tile: QImage, x: int, y: int) -> None:
        """Copy a finished tile into the progressive result and repaint only that region."""
        if self._partial is None:
            return
        p = QPainter(self._partial)
        if self._partial.size() == self._partial_size:
            p.drawImage(x, y, tile)
        else:
            sx = self._partial.width() / self._partial_size.width()
            sy = self._partial.height() / self._partial_size.height()
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(QRectF(x * sx, y * sy, tile.width() * sx, tile.height() * sy), tile)
        p.end()
        self.update()

    def end_progress(self) -> None:
        self._partial = None
        self.update()

    def has_progress(self) -> bool:
        return self._partial is not None

    def canvas_size(self) -> QSize:
        """Size of the shared coordinate system: the largest shown source (or partial result)."""
        w = h = 0
        sizes = [
            s.logical_size() for s in (self._left, self._right) if s is not None and not s.image.isNull()
        ]
        if self._partial is not None:
            sizes.append(self._partial_size)
        for size in sizes:
            w, h = max(w, size.width()), max(h, size.height())
        return QSize(w, h)

    # ------------------------------------------------------------------ view state
    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        """``"slider"`` or ``"side"``; the zoom is refit if the user was in fit mode."""
        if mode not in ("slider", "side") or mode == self._mode:
            return
        centre = self._visible_centre()
        self._mode = mode
        if self._fit_mode:
            self.fit()
        else:
            self._centre_on(centre)
        self.mode_changed.emit(mode)
        self.update()

    @property
    def smooth(self) -> bool:
        return self._smooth

    def set_smooth(self, smooth: bool) -> None:
        """How the original is enlarged: nearest neighbour (honest pixels) or smooth."""
        self._smooth = bool(smooth)
        self.update()

    @property
    def divider(self) -> float:
        return self._divider

    def set_divider(self, fraction: float) -> None:
        value = min(1.0, max(0.0, float(fraction)))
        if value != self._divider:
            self._divider = value
            self.divider_changed.emit(value)
            self.update()

    def divider_x(self) -> float:
        """The divider's x in widget pixels."""
        return self.width() * self._divider

    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def offset(self) -> QPointF:
        return QPointF(self._offset)

    @property
    def flashing(self) -> bool:
        return self._flash

    def set_flash(self, on: bool) -> None:
        """While on, both sides show the original in place (hold Space)."""
        if on != self._flash:
            self._flash = on
            self.update()

    def panes(self) -> list[QRect]:
        """The screen rectangles that each show the shared view (one, or two side by side)."""
        r = self.rect()
        if self._mode == "side":
            half = (r.width() - PANE_GAP) // 2
            return [QRect(0, 0, half, r.height()), QRect(r.width() - half, 0, half, r.height())]
        return [r]

    def fit_zoom(self) -> float:
        c = self.canvas_size()
        if c.isEmpty():
            return 1.0
        pane = self.panes()[0]
        return max(1e-4, min(pane.width() / c.width(), pane.height() / c.height()))

    def zoom_limits(self) -> tuple[float, float]:
        """From fit (or 100% when the picture is smaller than the pane) up to 800%."""
        fit = self.fit_zoom()
        return min(fit, 1.0), max(MAX_ZOOM, fit)

    def fit(self) -> None:
        """Zoom so the whole canvas fits a pane, centred (Ctrl+0)."""
        self._fit_mode = True
        self._zoom = self.fit_zoom()
        self._centre_on(QPointF(self.canvas_size().width() / 2, self.canvas_size().height() / 2))
        self.zoom_changed.emit(self._zoom)
        self.update()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the canvas point under ``anchor`` (widget coordinates) fixed on screen."""
        lo, hi = self.zoom_limits()
        zoom = min(hi, max(lo, zoom))
        if anchor is None:
            pane = self.panes()[0]
            anchor = QPointF(pane.center())
        _index, local = self._pane_local(anchor)
        canvas_pt = self._offset + local / self._zoom
        self._zoom = zoom
        self._fit_mode = abs(zoom - self.fit_zoom()) < 1e-9
        self._offset = canvas_pt - local / zoom
        self._clamp_offset()
        self.zoom_changed.emit(self._zoom)
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_zoom(self._zoom * factor, anchor)

    def actual_size(self) -> None:
        """100% zoom, keeping the centre of the view where it is (Ctrl+1)."""
        centre = self._visible_centre()
        lo, hi = self.zoom_limits()
        self._zoom = min(hi, max(lo, 1.0))
        self._fit_mode = False
        self._centre_on(centre)
        self.zoom_changed.emit(self._zoom)
        self.update()

    def widget_to_canvas(self, pos: QPointF) -> tuple[int, QPointF]:
        """(pane index, canvas point) under a widget position."""
        index, local = self._pane_local(pos)
        return index, self._offset + local / self._zoom

    def canvas_to_widget(self, point: QPointF, pane: int = 0) -> QPointF:
        r = self.panes()[min(pane, len(self.panes()) - 1)]
        return QPointF(r.topLeft()) + (point - self._offset) * self._zoom

    def visible_canvas_rect(self, pane: int = 0) -> QRectF:
        r = self.panes()[min(pane, len(self.panes()) - 1)]
        return QRectF(self._offset, QSize(r.width(), r.height()).toSizeF() / self._zoom)

    def image_rect(self, pane: int = 0) -> QRectF:
        """Where the picture is on screen inside ``pane`` (clipped to the pane)."""
        r = self.panes()[min(pane, len(self.panes()) - 1)]
        c = self.canvas_size()
        top_left = QPointF(r.topLeft()) - self._offset * self._zoom
        return QRectF(top_left, c.toSizeF() * self._zoom).intersected(QRectF(r))

    def _pane_local(self, pos: QPointF) -> tuple[int, QPointF]:
        panes = self.panes()
        for i, r in enumerate(panes):
            if pos.x() < r.right() + 1 or i == len(panes) - 1:
                return i, QPointF(pos) - QPointF(r.topLeft())
        return 0, QPointF(pos)

    def _visible_centre(self) -> QPointF:
        r = self.panes()[0]
        return self._offset + QPointF(r.width(), r.height()) / (2 * self._zoom)

    def _centre_on(self, point: QPointF) -> None:
        r = self.panes()[0]
        self._offset = point - QPointF(r.width(), r.height()) / (2 * self._zoom)
        self._clamp_offset()

    def _clamp_offset(self) -> None:
        """Keep the picture on screen: centred when smaller than the pane, else edge to edge."""
        c = self.canvas_size()
        r = self.panes()[0]
        vw, vh = r.width() / self._zoom, r.height() / self._zoom
        x, y = self._offset.x(), self._offset.y()
        x = (c.width() - vw) / 2 if vw >= c.width() else min(max(x, 0.0), c.width() - vw)
        y = (c.height() - vh) / 2 if vh >= c.height() else min(max(y, 0.0), c.height() - vh)
        self._offset = QPointF(x, y)

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), self._background())
        if self.canvas_size().isEmpty():
            self._paint_empty(p)
            p.end()
            return
        left, right = self._left, self._right
        if self._flash and self._original is not None:
            left = right = self._original
        if self._mode == "side":
            panes = self.panes()
            for pane, src, partial in ((panes[0], left, False), (panes[1], right, True)):
                p.save()
                p.setClipRect(pane)
                self._paint_source(p, pane, src, partial and not self._flash)
                p.restore()
                self._paint_label(p, pane, src, Qt.AlignmentFlag.AlignLeft, running=partial)
        else:
            pane = self.panes()[0]
            split = round(self.divider_x())
            p.save()
            p.setClipRect(QRect(0, 0, split, self.height()))
            self._paint_source(p, pane, left, False)
            p.restore()
            p.save()
            p.setClipRect(QRect(split, 0, self.width() - split, self.height()))
            self._paint_source(p, pane, right, not self._flash)
            p.restore()
            self._paint_label(p, pane, left, Qt.AlignmentFlag.AlignLeft)
            self._paint_label(p, pane, right, Qt.AlignmentFlag.AlignRight, running=True)
            self._paint_divider(p, split)
        if self._flash:
            self._paint_badge(p, "Showing original (Space)")
        p.end()

    def _background(self) -> QColor:
        base = self.palette().color(self.backgroundRole())
        return base.darker(125) if base.lightness() > 128 else base.darker(140)

    def _paint_source(self, p: QPainter, pane: QRect, src: Source | None, with_partial: bool) -> None:
        partial = self._partial if with_partial else None
        if partial is not None and self._original is not None:
            # Unfinished regions show the original, dimmed, so the tiles visibly "develop".
            p.setOpacity(0.35)
            self._draw_image(p, pane, self._original.image, smooth=True)
            p.setOpacity(1.0)
            self._draw_image(p, pane, partial, smooth=self._zoom < 1.0)
            return
        if src is None:
            return
        smooth = self._smooth if src.is_original else self._zoom < 1.0
        self._draw_image(p, pane, src.image, smooth=smooth, checker=src.image.hasAlphaChannel())

    def _draw_image(
        self, p: QPainter, pane: QRect, image: QImage, *, smooth: bool, checker: bool = False
    ) -> None:
        """Draw the part of ``image`` that is visible in ``pane``, stretched onto the canvas."""
        c = self.canvas_size()
        if image.isNull() or c.isEmpty():
            return
        visible = self.visible_canvas_rect().intersected(QRectF(0, 0, c.width(), c.height()))
        if visible.isEmpty():
            return
        sx, sy = image.width() / c.width(), image.height() / c.height()
        if not smooth:
            # Snap to whole source pixels so nearest-neighbour pixels keep a constant size.
            x0, y0 = int(visible.left() * sx), int(visible.top() * sy)
            x1 = min(image.width(), int(visible.right() * sx) + 1)
            y1 = min(image.height(), int(visible.bottom() * sy) + 1)
            visible = QRectF(x0 / sx, y0 / sy, (x1 - x0) / sx, (y1 - y0) / sy)
        source = QRectF(visible.left() * sx, visible.top() * sy, visible.width() * sx, visible.height() * sy)
        top_left = QPointF(pane.topLeft()) + (visible.topLeft() - self._offset) * self._zoom
        target = QRectF(top_left, visible.size() * self._zoom)
        if checker:
            # Transparency as the checkerboard every image editor uses, fixed to the screen so it
            # never looks like part of the picture (a flat grey could be pixels).
            p.setBrushOrigin(pane.topLeft())
            p.fillRect(target, QBrush(checkerboard()))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        p.drawImage(target, image, source)

    def _paint_label(
        self, p: QPainter, pane: QRect, src: Source | None, align: Qt.AlignmentFlag, running: bool = False
    ) -> None:
        if src is None:
            return
        text = self.shown_label(src)
        if running and self._partial is not None and not self._flash:
            text = f"{text} (running…)"
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        font.setWeight(QFont.Weight.DemiBold)
        p.setFont(font)
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 20, fm.height() + 10
        # Labels sit in the picture's corners (not the widget's), so they stay next to what they
        # name when the picture is smaller than the view.
        area = self.image_rect(self.panes().index(pane) if pane in self.panes() else 0)
        if area.width() < w + 24 or area.height() < h + 24:
            area = QRectF(pane)
        x = area.left() + 12 if align == Qt.AlignmentFlag.AlignLeft else area.right() - 12 - w
        box = QRectF(x, area.top() + 12, w, h)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 150))
        p.drawRoundedRect(box, h / 2, h / 2)
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_badge(self, p: QPainter, text: str) -> None:
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 24, fm.height() + 12
        box = QRectF((self.width() - w) / 2, self.height() - h - 16, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 170))
        p.drawRoundedRect(box, h / 2, h / 2)
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_divider(self, p: QPainter, x: int) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        area = self.image_rect()
        top, bottom = (area.top(), area.bottom()) if area.height() > 40 else (0.0, float(self.height()))
        p.setPen(QPen(QColor(0, 0, 0, 90), 4))
        p.drawLine(QPointF(x, top), QPointF(x, bottom))
        p.setPen(QPen(QColor(255, 255, 255, 235), 2))
        p.drawLine(QPointF(x, top), QPointF(x, bottom))
        cy = (top + bottom) / 2
        r = 16.0
        p.setPen(QPen(QColor(0, 0, 0, 60), 1))
        p.setBrush(QColor(255, 255, 255, 240))
        p.drawEllipse(QPointF(x, cy), r, r)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(40, 44, 52))
        for sign in (-1, 1):
            tri = QPainterPath()
            tip = x + sign * 10.0
            tri.moveTo(tip, cy)
            tri.lineTo(tip - sign * 6.0, cy - 5.5)
            tri.lineTo(tip - sign * 6.0, cy + 5.5)
            tri.closeSubpath()
            p.drawPath(tri)

    def _paint_empty(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        fg = self.palette().color(self.foregroundRole())
        dim = QColor(fg)
        dim.setAlpha(110)
        box = QRectF(self.rect()).adjusted(28, 28, -28, -28)
        pen = QPen(dim, 2, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(box, 18, 18)
        cx, cy = box.center().x(), box.center().y()
        # A simple "picture" glyph, drawn so it follows the theme colour.
        glyph = QRectF(cx - 36, cy - 80, 72, 56)
        p.setPen(QPen(dim, 3))
        p.drawRoundedRect(glyph, 8, 8)
        mountain = QPainterPath()
        mountain.moveTo(glyph.left() + 8, glyph.bottom() - 8)
        mountain.lineTo(glyph.left() + 28, glyph.top() + 24)
        mountain.lineTo(glyph.left() + 42, glyph.bottom() - 20)
        mountain.lineTo(glyph.left() + 52, glyph.top() + 32)
        mountain.lineTo(glyph.right() - 8, glyph.bottom() - 8)
        p.drawPath(mountain)
        p.drawEllipse(QPointF(glyph.right() - 18, glyph.top() + 16), 5, 5)
        title = QFont(self.font())
        title.setPointSizeF(self.font().pointSizeF() * 1.6)
        title.setWeight(QFont.Weight.DemiBold)
        p.setFont(title)
        p.setPen(fg)
        p.drawText(
            QRectF(box.left(), cy - 8, box.width(), 40), Qt.AlignmentFlag.AlignCenter, self._empty_title
        )
        p.setFont(self.font())
        p.setPen(fg)  # a dimmed hint fell below 4.5:1 on the light theme's grey view
        p.drawText(
            QRectF(box.left(), cy + 34, box.width(), 28), Qt.AlignmentFlag.AlignCenter, self._empty_hint
        )

    # ------------------------------------------------------------------ input
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()
        else:
            self._clamp_offset()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps and not self.canvas_size().isEmpty():
            self.zoom_by(ZOOM_STEP**steps, event.position())
        event.accept()

    def _near_divider(self, x: float) -> bool:
        return self._mode == "slider" and abs(x - self.divider_x()) <= DIVIDER_GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        if event.button() == Qt.MouseButton.LeftButton and self._near_divider(pos.x()):
            self._drag = "divider"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        else:
            return super().mousePressEvent(event)
        self._drag_origin = QPointF(pos)
        self._drag_offset = QPointF(self._offset)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        pos = event.position()
        if self._drag == "divider":
            self.set_divider(pos.x() / max(1, self.width()))
        elif self._drag == "pan":
            delta = pos - self._drag_origin
            self._offset = self._drag_offset - delta / self._zoom
            self._fit_mode = False
            self._clamp_offset()
            self.update()
        elif self._near_divider(pos.x()):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        else:
            self.setCursor(
                Qt.CursorShape.OpenHandCursor
                if not self.canvas_size().isEmpty()
                else Qt.CursorShape.ArrowCursor
            )
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self._drag = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._fit_mode:
            self._fit_mode = False
            self.set_zoom(1.0, event.position())
        else:
            self.fit()
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        step = 0.1 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 0.02
        if key == Qt.Key.Key_Left and self._mode == "slider":
            self.set_divider(self._divider - step)
        elif key == Qt.Key.Key_Right and self._mode == "slider":
            self.set_divider(self._divider + step)
        elif key == Qt.Key.Key_Home and self._mode == "slider":
            self.set_divider(0.0)
        elif key == Qt.Key.Key_End and self._mode == "slider":
            self.set_divider(1.0)
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(ZOOM_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(1 / ZOOM_STEP)
        elif key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.set_flash(True)
        else:
            return super().keyPressEvent(event)
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.set_flash(False)
            event.accept()
            return
        super().keyReleaseEvent(event)
