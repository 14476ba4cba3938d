"""Light and dark themes (qdarktheme) plus the few style rules of our own widgets.

Only ``"dark"`` and ``"light"`` are ever passed to qdarktheme: its ``"auto"`` mode starts a
background process to follow the OS theme, which hangs headless test runs.
"""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

ACCENT = "#4fc3f7"

# Secondary text (hints, sizes, queue status) per theme. Each meets WCAG AA for body text
# (contrast ≥ 4.5:1) on the theme's window and base colours and on a selected queue card;
# tests/gui/test_gui_photographer.py checks the ratios. Qt's palette(mid) and the accent
# colours, used before, fell to 1.3–2.6:1 on the light theme's near-white background.
TEXT_COLOURS: dict[str, dict[str, str]] = {
    "light": {
        "hint": "#5f6368",
        "dim": "#5f6368",
        "done": "#1b5e20",
        "failed": "#c62828",
        "cancelled": "#8a5300",
        "running": "#01579b",
    },
    "dark": {
        "hint": "#a8adb3",
        "dim": "#a8adb3",
        "done": "#66bb6a",
        "failed": "#ff8a80",
        "cancelled": "#ffa726",
        "running": "#4fc3f7",
    },
}
MIN_TEXT_CONTRAST = 4.5  # WCAG 2.x level AA, normal-size text

_EXTRA_QSS = """
QLabel#hint { color: %(hint)s; font-size: 9pt; }
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
            "hint": TEXT_COLOURS[theme]["hint"],
        },
    )
    app = QApplication.instance()
    if app is not None:
        app.setProperty("fmen_theme", theme)
    return theme


def current_theme() -> str:
    """The theme applied last ("dark" before any)."""
    app = QApplication.instance()
    theme = app.property("fmen_theme") if app is not None else None
    return theme if theme in TEXT_COLOURS else "dark"


def text_colour(role: str, theme: str | None = None) -> str:
    """A secondary text colour ("hint", "dim" or a queue status) readable on ``theme``."""
    return TEXT_COLOURS[theme or current_theme()][role]


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2.x contrast ratio of two ``#rrggbb`` colours, from 1 (none) to 21 (black on white)."""

    def luminance(colour: str) -> float:
        channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def icon_colours(theme: str) -> tuple[str, str]:
    """(normal, disabled) icon colours that read well on the theme's toolbar."""
    return ("#e3e6eb", "#6b7078") if theme == "dark" else ("#2b2f36", "#a0a4aa")
