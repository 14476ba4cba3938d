"""Output format keys and the Save As dialog's filters, in one place.

The keys are those of ``settings.FORMATS`` ("png", "jpg", "webp", "tiff"); file suffixes come
in other spellings too ("jpeg", "tif"), which must land on the same key.
"""

from __future__ import annotations

from pathlib import Path

from fmen_gui.engine.names import format_key
from fmen_gui.gui.settings import FORMATS


def _filter(key: str) -> str:
    return f"{FORMATS[key]} (*.{key})"


def save_filters() -> str:
    """The Save As dialog's file type choices, one per output format."""
    return ";;".join(_filter(key) for key in FORMATS)


def filter_for(path: Path) -> str:
    """The file type choice matching ``path``'s format ("" when it has none)."""
    key = format_key(path.suffix)
    return _filter(key) if key in FORMATS else ""


def save_target(path: Path, chosen_filter: str) -> tuple[Path, str]:
    """Where Save As writes and in which format.

    A typed suffix that names a format decides; otherwise the chosen file type does (PNG when
    none matches) and its suffix is put on the name, so the file says what it holds.
    """
    key = format_key(path.suffix)
    if key in FORMATS:
        return path, key
    key = next((k for k, text in FORMATS.items() if chosen_filter.startswith(text)), "png")
    return path.with_suffix(f".{key}"), key
