"""The clipboard: files copied in a file manager, pasted pictures, and copying a result.

A pasted picture is written to a real file first, because the queue (and the result's name and
folder) are about files; it goes where users look for pictures, never to a hidden app folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, QImage


class PasteError(Exception):
    """A pasted picture could not be stored; the message is the one-line reason."""


def copied_files() -> list[Path]:
    """Local files and folders on the clipboard (copied in a file manager), in order."""
    mime = QGuiApplication.clipboard().mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


def pasted_folder(output_dir: str) -> Path:
    """Where a pasted picture (and so, by default, its result) is saved: where users look.

    The output folder when one is set, otherwise ``Pictures/FMEN Upscaler``.
    """
    if output_dir:
        return Path(output_dir).expanduser()
    import platformdirs

    return Path(platformdirs.user_pictures_dir()) / "FMEN Upscaler"


def store_image(image: QImage, folder: Path) -> Path:
    """Write ``image`` to a new ``clipboard-<date>-<time>.png`` in ``folder``; never replaces a file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PasteError(f"Could not create {folder}: {exc.strerror or exc}") from exc
    path = folder / time.strftime("clipboard-%Y%m%d-%H%M%S.png")
    n = 2
    while path.exists():
        path = folder / time.strftime(f"clipboard-%Y%m%d-%H%M%S-{n}.png")
        n += 1
    if not image.save(str(path), "PNG"):
        raise PasteError(f"Could not store the pasted image in {folder}")
    return path


def copy_file(path: Path, fallback: QImage) -> QImage:
    """Put a saved picture on the clipboard as pixels and as a file; returns the pixels copied.

    The pixels are read from the file, at full size (the window may hold a reduced preview,
    ``fallback``, used only when the file cannot be read).
    """
    image = QImage(str(path))
    if image.isNull():
        image = fallback
    mime = QMimeData()
    mime.setImageData(image)
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    QGuiApplication.clipboard().setMimeData(mime)
    return image
