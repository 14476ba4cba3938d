"""The compare view: divider by mouse and keys, zoom around the cursor, shared panes, speed."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from fmen_gui.gui.compare_view import CompareView, Source


def solid(w: int, h: int, colour: str) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB888)
    image.fill(QColor(colour))
    return image


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = CompareView()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    qtbot.waitExposed(v)
    original = Source(solid(100, 80, "#ff0000"), "Original", is_original=True)
    result = Source(solid(400, 320, "#0000ff"), "FMEN-S ×4")
    v.set_sources(original, result, original=original)
    return v


def mouse(widget, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.LeftButton) -> None:  # type: ignore[no-untyped-def]
    """Send a mouse event with the button state set (QTest's move events carry no buttons)."""
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    event = QMouseEvent(
        kind,
        pos,
        widget.mapToGlobal(pos),
        button if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton,
        buttons,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def wheel(widget, pos: QPointF, steps: int) -> None:  # type: ignore[no-untyped-def]
    event = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QPoint(),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_labels_and_sides_are_painted(view: CompareView) -> None:
    image = view.grab().toImage()
    y = view.height() // 2 + 60  # below the divider's handle
    assert image.pixelColor(view.width() // 4, y).red() > 200  # original on the left
    assert image.pixelColor(3 * view.width() // 4, y).blue() > 200  # result on the right


def test_divider_follows_a_mouse_drag(view: CompareView) -> None:
    assert view.divider == pytest.approx(0.5)
    start = QPointF(view.divider_x(), 300)
    mouse(view, QEvent.Type.MouseButtonPress, start)
    mouse(view, QEvent.Type.MouseMove, QPointF(200, 310))
    mouse(view, QEvent.Type.MouseButtonRelease, QPointF(200, 310))
    assert view.divider == pytest.approx(200 / view.width())
    # The left side now ends at x=200.
    image = view.grab().toImage()
    assert image.pixelColor(150, 420).red() > 200
    assert image.pixelColor(260, 420).blue() > 200


def test_a_drag_away_from_the_divider_pans_instead(view: CompareView) -> None:
    view.set_zoom(4.0)
    before_div, before_off = view.divider, view.offset
    mouse(view, QEvent.Type.MouseButtonPress, QPointF(100, 100))
    mouse(view, QEvent.Type.MouseMove, QPointF(140, 120))
    mouse(view, QEvent.Type.MouseButtonRelease, QPointF(140, 120))
    assert view.divider == before_div
    assert view.offset.x() == pytest.approx(before_off.x() - 40 / 4.0)
    assert view.offset.y() == pytest.approx(before_off.y() - 20 / 4.0)


def test_divider_moves_with_arrow_keys(qtbot, view: CompareView) -> None:  # type: ignore[no-untyped-def]
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert view.divider == pytest.approx(0.48)
    qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert view.divider == pytest.approx(0.58)
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.divider == 1.0


@pytest.mark.parametrize("mode", ["slider", "side"])
def test_wheel_zoom_keeps_the_point_under_the_cursor(view: CompareView, mode: str) -> None:
    view.set_mode(mode)
    # From a zoom where the picture overflows the pane in both directions (smaller pictures
    # are centred, which takes precedence over the anchor).
    view.set_zoom(2.0)
    cursor = QPointF(view.panes()[-1].left() + 123.0, 211.0)
    _, before = view.widget_to_canvas(cursor)
    for steps in (3, 2, -1, 4):
        wheel(view, cursor, steps)
        _, after = view.widget_to_canvas(cursor)
        assert after.x() == pytest.approx(before.x(), abs=1e-6)
        assert after.y() == pytest.approx(before.y(), abs=1e-6)
    assert view.zoom > view.fit_zoom()


def test_zoom_limits_are_fit_to_800_percent(view: CompareView) -> None:
    view.set_zoom(100.0)
    assert view.zoom == 8.0
    view.set_zoom(0.0001)
    assert view.zoom == pytest.approx(min(1.0, view.fit_zoom()))
    view.actual_size()
    assert view.zoom == 1.0
    view.fit()
    assert view.zoom == pytest.approx(view.fit_zoom())


def test_side_by_side_panes_share_zoom_and_pan(view: CompareView) -> None:
    view.set_mode("side")
    left, right = view.panes()
    assert left.width() == right.width()
    wheel(view, QPointF(right.left() + 50, 100), 4)
    assert view.visible_canvas_rect(0) == view.visible_canvas_rect(1)
    # Pan by dragging in the left pane: the right pane shows the same region afterwards.
    mouse(view, QEvent.Type.MouseButtonPress, QPointF(100, 300))
    mouse(view, QEvent.Type.MouseMove, QPointF(60, 260))
    mouse(view, QEvent.Type.MouseButtonRelease, QPointF(60, 260))
    assert view.visible_canvas_rect(0) == view.visible_canvas_rect(1)
    # The same canvas point sits at the same place inside each pane.
    point = QPointF(200, 160)
    a, b = view.canvas_to_widget(point, 0), view.canvas_to_widget(point, 1)
    assert a.y() == b.y()
    assert b.x() - a.x() == pytest.approx(right.left() - left.left())
    image = view.grab().toImage()
    assert image.pixelColor(left.center()).red() > 200
    assert image.pixelColor(right.center()).blue() > 200


def test_holding_space_flashes_the_original(qtbot, view: CompareView) -> None:  # type: ignore[no-untyped-def]
    view.setFocus()
    qtbot.keyPress(view, Qt.Key.Key_Space)
    assert view.flashing
    image = view.grab().toImage()
    assert image.pixelColor(3 * view.width() // 4, 450).red() > 200
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    assert not view.flashing


def test_progressive_tiles_appear_in_the_result(view: CompareView) -> None:
    from PySide6.QtCore import QSize

    view.begin_progress(QSize(400, 320))
    view.set_divider(0.0)  # the whole view shows the right side
    view.paste_tile(solid(200, 320, "#00ff00"), 0, 0)
    image = view.grab().toImage()
    left_half = view.canvas_to_widget(QPointF(100, 160))
    right_half = view.canvas_to_widget(QPointF(300, 160))
    assert image.pixelColor(left_half.toPoint()).green() > 200  # finished tile
    unfinished = image.pixelColor(right_half.toPoint())
    assert unfinished.red() > unfinished.green() + 60  # the dimmed (red) original shows through
    view.end_progress()
    assert not view.has_progress()


def test_a_4k_result_draws_only_the_visible_region_quickly(view: CompareView) -> None:
    big = Source(solid(3840, 2160, "#336699"), "FMEN-S ×4")
    small = Source(solid(960, 540, "#996633"), "Original", is_original=True)
    view.set_sources(small, big, original=small)
    view.set_smooth(True)
    for zoom in (view.fit_zoom(), 1.0, 8.0):
        view.set_zoom(zoom)
        view.grab()  # warm-up
        t0 = time.perf_counter()
        for _ in range(5):
            view.grab()
        per_frame = (time.perf_counter() - t0) / 5
        # A full-size rescale of a 4K frame per paint would take far longer than this.
        assert per_frame < 0.25, f"{per_frame * 1000:.0f} ms per frame at zoom {zoom:.2f}"


def test_empty_view_paints_a_hint(qtbot) -> None:  # type: ignore[no-untyped-def]
    v = CompareView()
    qtbot.addWidget(v)
    v.resize(400, 300)
    image = v.grab().toImage()
    assert not image.isNull()
    assert v.canvas_size().isEmpty()
