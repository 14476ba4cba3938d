"""Toolbar and window icons, drawn as small SVGs and tinted for the current theme.

The SVG sources live in this module (not as loose files) so they ship inside the package
without any packaging configuration, and are re-coloured at run time so one drawing works on
the dark and the light theme. ``resources/`` holds the app icon as a file for desktop entries.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

_HEAD = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{c}" '
    'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">'
)

_BODIES: dict[str, str] = {
    "open": '<path d="M3 7.5V18a1.5 1.5 0 0 0 1.5 1.5h15A1.5 1.5 0 0 0 21 18V9.5A1.5 1.5 0 0 0 19.5 8h-7'
    'l-2-2.5h-6A1.5 1.5 0 0 0 3 7z"/><path d="M12 11v6M9 14h6"/>',
    "upscale": '<path d="M4 20V14M4 20h6M4 20l7-7"/><path d="M20 4v6M20 4h-6M20 4l-7 7"/>'
    '<path d="M17 15.5l.9 1.8 1.8.9-1.8.9-.9 1.8-.9-1.8-1.8-.9 1.8-.9z" fill="{c}" stroke-width="1"/>',
    "cancel": '<circle cx="12" cy="12" r="8.5"/><rect x="9" y="9" width="6" height="6" rx="1" fill="{c}"/>',
    "save": '<path d="M5 4h11l3 3v12a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z"/>'
    '<path d="M8 4v5h7V4"/><rect x="8" y="13" width="8" height="5" rx="0.5"/>',
    "slider": '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M12 3v18"/>'
    '<path d="M9 10l-2 2 2 2M15 10l2 2-2 2"/>',
    "side": '<rect x="2.5" y="6" width="8.5" height="12" rx="1.5"/>'
    '<rect x="13" y="6" width="8.5" height="12" rx="1.5"/>',
    "fit": '<path d="M4 9V5a1 1 0 0 1 1-1h4M15 4h4a1 1 0 0 1 1 1v4"/>'
    '<path d="M20 15v4a1 1 0 0 1-1 1h-4M9 20H5a1 1 0 0 1-1-1v-4"/>'
    '<rect x="8" y="8" width="8" height="8" rx="1"/>',
    "actual": '<circle cx="10.5" cy="10.5" r="6.5"/><path d="M15.5 15.5L21 21"/><path d="M8.5 8.5l2-1v6"/>',
    "zoom_in": '<circle cx="10.5" cy="10.5" r="6.5"/><path d="M15.5 15.5L21 21M10.5 7.5v6M7.5 10.5h6"/>',
    "zoom_out": '<circle cx="10.5" cy="10.5" r="6.5"/><path d="M15.5 15.5L21 21M7.5 10.5h6"/>',
    "paste": '<rect x="5" y="4" width="14" height="17" rx="2"/><path d="M9 4V3h6v1M9 10h6M9 14h6M9 18h3"/>',
    "clear": '<path d="M4 7h16M9 7V4.5h6V7M6 7l1 13h10l1-13"/>',
    "smooth": '<path d="M3 17c3-8 6-8 9 0s6 8 9 0"/>',
}

# The app icon: a picture whose left half is blocky (the original's pixels) and right half smooth
# (the result), split by a divider, echoing the before/after view.
APP_ICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="#29b6f6"/><stop offset="1" stop-color="#7e57c2"/></linearGradient></defs>
<rect x="4" y="4" width="56" height="56" rx="13" fill="url(#g)"/>
<path d="M10 48 L24 30 L33 40 L40 33 L54 48 Z" fill="#ffffff" fill-opacity="0.9"/>
<circle cx="43" cy="19" r="5" fill="#ffffff" fill-opacity="0.9"/>
<g fill="#0d1b2a" fill-opacity="0.35">
<rect x="10" y="10" width="5" height="5"/><rect x="20" y="10" width="5" height="5"/>
<rect x="15" y="15" width="5" height="5"/><rect x="25" y="15" width="5" height="5"/>
<rect x="10" y="20" width="5" height="5"/><rect x="20" y="20" width="5" height="5"/>
<rect x="15" y="25" width="5" height="5"/><rect x="25" y="25" width="5" height="5"/></g>
<rect x="31" y="6" width="2.5" height="52" rx="1.2" fill="#ffffff"/>
<circle cx="32.2" cy="32" r="5.5" fill="#ffffff"/>
<path d="M29.6 32 l1.8 -1.8 v3.6z M34.8 32 l-1.8 -1.8 v3.6z" fill="#5e35b1"/>
</svg>"""


def _render(svg: str, size: int) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    image = QImage(QSize(size, size), QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return QPixmap.fromImage(image)


def icon(name: str, colour: str = "#e0e0e0", disabled: str = "#707070") -> QIcon:
    """A themed icon by name, with a greyed variant for disabled actions."""
    body = _BODIES[name]
    result = QIcon()
    for mode, c in ((QIcon.Mode.Normal, colour), (QIcon.Mode.Disabled, disabled)):
        svg = _HEAD.format(c=c) + body.replace("{c}", c) + "</svg>"
        for size in (16, 24, 32, 48):
            result.addPixmap(_render(svg, size), mode)
    return result


def app_icon() -> QIcon:
    result = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        result.addPixmap(_render(APP_ICON_SVG, size))
    return result


ICON_NAMES = tuple(_BODIES)
