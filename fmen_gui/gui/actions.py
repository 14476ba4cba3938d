"""The window's actions, menus and toolbar, built in one place.

The actions stay attributes of the window (``window.upscale_action``), which wires them to its
slots; this module only decides their texts, shortcuts, tips, icons and where they appear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QToolBar, QWidget

from fmen_gui.gui import icons
from fmen_gui.gui.theme import icon_colours

if TYPE_CHECKING:
    from fmen_gui.gui.main_window import MainWindow


def _action(
    w: MainWindow,
    text: str,
    slot: object,
    shortcuts: list[str] | None = None,
    tip: str = "",
    checkable: bool = False,
) -> QAction:
    action = QAction(text, w)
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
    w.addAction(action)  # shortcuts work even when the menu bar is hidden
    return action


def build_actions(w: MainWindow) -> None:
    """Create the window's ``*_action`` attributes, its menus and its toolbar.

    Every action is added to the window itself, so its shortcut works even when the menu bar
    is hidden, and ``shortcut_rows`` can list them all.
    """
    w.open_action = _action(w, "&Open…", w.open_files, ["Ctrl+O"], "Add images to the queue")
    w.paste_action = _action(w, "&Paste", w.paste, ["Ctrl+V"], "Queue an image from the clipboard")
    w.upscale_action = _action(
        w, "&Upscale", w.start, ["Ctrl+Return", "Ctrl+Enter"], "Upscale the queued images"
    )
    w.cancel_action = _action(w, "&Cancel", w.cancel, ["Esc"], "Stop the running job")
    w.save_action = _action(w, "&Save As…", w.save_as, ["Ctrl+S"], "Save the shown result elsewhere")
    w.open_folder_action = _action(
        w, "Open Output &Folder", w.open_output_folder, ["Ctrl+Shift+O"], "Show the results' folder"
    )
    w.copy_action = _action(
        w, "&Copy Result", w.copy_result, ["Ctrl+Shift+C"], "Copy the shown result to the clipboard"
    )
    w.import_action = _action(
        w, "&Import Model…", w.tasks.import_weights, tip="Add a model file (FMEN, ESRGAN, SPAN, SwinIR…)"
    )
    w.remove_model_action = _action(w, "&Remove Model…", w.tasks.remove_model)
    _follow_remove_button(w)
    w.download_action = _action(w, "&Download Official FMEN-S ×4", w.tasks.download_official)
    w.clear_action = _action(w, "Remove &Finished", w.clear_finished)
    w.quit_action = _action(w, "&Quit", w.close, ["Ctrl+Q"])
    w.slider_action = _action(
        w,
        "&Slider",
        lambda on: on and w.set_view_mode("slider"),
        ["1"],
        "Before/after slider",
        checkable=True,
    )
    w.side_action = _action(
        w,
        "Side &by Side",
        lambda on: on and w.set_view_mode("side"),
        ["2"],
        "Two synchronized panes",
        checkable=True,
    )
    mode_group = QActionGroup(w)
    mode_group.addAction(w.slider_action)
    mode_group.addAction(w.side_action)
    w.smooth_action = _action(
        w,
        "S&mooth Original",
        w.set_smooth,
        [],
        "Enlarge the original smoothly instead of as pixels",
        checkable=True,
    )
    w.fit_action = _action(w, "&Fit", w.view.fit, ["Ctrl+0"], "Fit the image in the view")
    w.actual_action = _action(w, "&100%", w.view.actual_size, ["Ctrl+1"], "Actual pixels")
    w.zoom_in_action = _action(w, "Zoom &In", lambda: w.view.zoom_by(1.25), ["Ctrl++", "Ctrl+="])
    w.zoom_out_action = _action(w, "Zoom &Out", lambda: w.view.zoom_by(0.8), ["Ctrl+-"])
    w.dark_action = _action(w, "&Dark", lambda on: on and w.set_theme("dark"), checkable=True)
    w.light_action = _action(w, "&Light", lambda on: on and w.set_theme("light"), checkable=True)
    theme_group = QActionGroup(w)
    theme_group.addAction(w.dark_action)
    theme_group.addAction(w.light_action)
    w.about_action = _action(w, "&About FMEN Upscaler", w.about)
    w.howto_action = _action(w, "&How to Use", w.show_howto, ["F1"], "A short how-to")
    w.shortcuts_action = _action(
        w, "&Keyboard Shortcuts", w.show_shortcuts, ["Ctrl+/"], "Every keyboard shortcut"
    )
    w.clear_button.setDefaultAction(w.clear_action)

    mb = w.menuBar()
    m = mb.addMenu("&File")
    for a in (w.open_action, w.paste_action, w.save_action, w.copy_action):
        m.addAction(a)
    m.addAction(w.open_folder_action)
    m.addSeparator()
    m.addAction(w.import_action)
    m.addAction(w.remove_model_action)
    m.addAction(w.download_action)
    m.addSeparator()
    m.addAction(w.quit_action)
    m = mb.addMenu("&Process")
    for a in (w.upscale_action, w.cancel_action, w.clear_action):
        m.addAction(a)
    m = mb.addMenu("&View")
    for a in (w.slider_action, w.side_action):
        m.addAction(a)
    m.addSeparator()
    for a in (
        w.fit_action,
        w.actual_action,
        w.zoom_in_action,
        w.zoom_out_action,
        w.smooth_action,
    ):
        m.addAction(a)
    m.addSeparator()
    tm = m.addMenu("&Theme")
    tm.addAction(w.dark_action)
    tm.addAction(w.light_action)
    m = mb.addMenu("&Help")
    m.addAction(w.howto_action)
    m.addAction(w.shortcuts_action)
    m.addSeparator()
    m.addAction(w.about_action)

    tb = QToolBar("Main")
    tb.setObjectName("mainToolbar")
    tb.setMovable(False)
    tb.setIconSize(QSize(20, 20))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    tb.addAction(w.open_action)
    tb.addAction(w.paste_action)
    tb.addSeparator()
    tb.addAction(w.upscale_action)
    tb.addAction(w.cancel_action)
    tb.addAction(w.save_action)
    tb.addSeparator()
    tb.addAction(w.slider_action)
    tb.addAction(w.side_action)
    tb.addAction(w.smooth_action)
    spacer = QWidget()
    spacer.setSizePolicy(
        spacer.sizePolicy().horizontalPolicy().Expanding, spacer.sizePolicy().verticalPolicy().Preferred
    )
    tb.addWidget(spacer)
    tb.addAction(w.zoom_out_action)
    w.zoom_label = QLabel("100%")
    w.zoom_label.setMinimumWidth(52)
    w.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    w.zoom_label.setToolTip("Zoom (mouse wheel zooms around the cursor)")
    tb.addWidget(w.zoom_label)
    tb.addAction(w.zoom_in_action)
    tb.addAction(w.fit_action)
    tb.addAction(w.actual_action)
    w.addToolBar(tb)
    w.toolbar = tb
    for a in (w.zoom_in_action, w.zoom_out_action, w.fit_action, w.actual_action):
        tb.widgetForAction(a).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    tb.widgetForAction(w.upscale_action).setObjectName("primaryAction")
    w.view.zoom_changed.connect(lambda z: w.zoom_label.setText(f"{z * 100:.0f}%"))

    (w.slider_action if w.settings.view_mode == "slider" else w.side_action).setChecked(True)
    w.view.set_mode(w.settings.view_mode)
    w.smooth_action.setChecked(w.settings.smooth)
    w.view.set_smooth(w.settings.smooth)


def _follow_remove_button(w: MainWindow) -> None:
    """Remove Model… applies when the panel's Remove button does, and says why it does not."""
    button, action = w.panel.remove_button, w.remove_model_action

    def follow() -> None:
        action.setEnabled(button.isEnabled())
        action.setToolTip(button.toolTip())
        action.setStatusTip(button.toolTip())

    w.panel.changed.connect(follow)
    follow()


def set_icons(w: MainWindow, theme: str) -> None:
    """Draw the actions' icons in the colours of ``theme``."""
    normal, disabled = icon_colours(theme)
    for action, name in (
        (w.open_action, "open"),
        (w.paste_action, "paste"),
        (w.upscale_action, "upscale"),
        (w.cancel_action, "cancel"),
        (w.save_action, "save"),
        (w.slider_action, "slider"),
        (w.side_action, "side"),
        (w.smooth_action, "smooth"),
        (w.fit_action, "fit"),
        (w.actual_action, "actual"),
        (w.zoom_in_action, "zoom_in"),
        (w.zoom_out_action, "zoom_out"),
        (w.clear_action, "clear"),
    ):
        action.setIcon(icons.icon(name, normal, disabled))
    # The primary button has an accent background: a dark glyph reads better on it.


def shortcut_rows(w: MainWindow) -> list[tuple[str, str]]:
    """(command, keys) of every action that has a shortcut, read from the actions themselves.

    Generated, not written out, so the list cannot drift from what the keys really do.
    """
    rows = []
    for action in w.actions():
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        if keys:
            rows.append((action.text().replace("&", "").replace("…", ""), " or ".join(keys)))
    return rows
