"""Light and dark themes (qdarktheme) plus the few style rules of our own widgets.

Only ``"dark"`` and ``"light"`` are ever passed to qdarktheme: its ``"auto"`` mode starts a
background process to follow the OS theme, which hangs headless test runs.
"""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

ACCENT = "#4fc3f7"

_EXTRA_QSS = """
QLabel#hint { color: palette(mid); font-size: 9pt; }
QLabel#panelTitle { font-weight: 600; font-size: 10pt; padding: 2px 2px; }
QStatusBar QLabel { padding: 0 6px; }
QToolBar { spacing: 4px; padding: 3px; }
QToolBar QToolButton { padding: 4px 6px; }
QToolButton#primaryAction { background: %(accent)s; color: #061018; font-weight: 600; border-radius: 4px; }
QToolButton#primaryAction:hover { background: %(accent_hover)s; }
QToolButton#primaryAction:disabled { background: transparent; color: palette(mid); }
QPushButton:checked { background: rgba(79, 195, 247, 0.28); border-color: #4fc3f7; }
"""


def apply_theme(theme: str) -> str:
    """Apply ``"dark"`` or ``"light"`` to the running application; returns the theme used."""
    import qdarktheme

    theme = theme if theme in ("dark", "light") else "dark"
    qdarktheme.setup_theme(
        theme,
        corner_shape="rounded",
        custom_colors={"primary": ACCENT if theme == "dark" else "#0277bd"},
        additional_qss=_EXTRA_QSS
        % {
            "accent": ACCENT if theme == "dark" else "#4fc3f7",
            "accent_hover": "#81d4fa",
        },
    )
    app = QApplication.instance()
    if app is not None:
        app.setProperty("fmen_theme", theme)
    return theme


def icon_colours(theme: str) -> tuple[str, str]:
    """(normal, disabled) icon colours that read well on the theme's toolbar."""
    return ("#e3e6eb", "#6b7078") if theme == "dark" else ("#2b2f36", "#a0a4aa")
