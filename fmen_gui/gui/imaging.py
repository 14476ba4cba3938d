"""Conversions between numpy pixel arrays and ``QImage``, plus off-thread image loading.

Images are decoded away from the GUI thread (a 12-megapixel PNG takes long enough to stutter
the window), and the only thing that crosses threads is a finished ``QImage``, which Qt allows
to be built in any thread (unlike ``QPixmap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage

from fmen_gui.errors import FmenError

THUMB_SIZE = 96


def array_to_qimage(arr: np.ndarray) -> QImage:
    """Copy an H×W, H×W×3 or H×W×4 array (uint8 or uint16) into a new ``QImage``.

    The copy matters: a ``QImage`` built over a numpy buffer does not own it, and the buffer
    may be freed or overwritten (tiles are filled in place) while the image is still shown.
    """
    a = np.asarray(arr)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"cannot show an array of shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = np.ascontiguousarray(a)
    h, w, c = a.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(a.data, w, h, w * c, fmt).copy()


@dataclass(frozen=True)
class LoadedImage:
    """An input as the GUI needs it: a display copy, a thumbnail and the true size."""

    path: Path
    image: QImage
    thumb: QImage
    size: tuple[int, int]  # (width, height)
    bit_depth: int
    frames: int = 1  # >1: an animation, of which only the first frame is upscaled


def load_for_display(path: Path) -> LoadedImage:
    """Decode ``path`` into display form; raises ``FmenError`` with a one-line reason."""
    from fmen_gui.engine import images  # torch-free; imported here to keep start-up lean

    data = images.read_image(path)
    preview = images.make_preview_rgb8(data)
    image = array_to_qimage(preview)
    thumb = image.scaled(
        QSize(THUMB_SIZE, THUMB_SIZE),
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    return LoadedImage(
        path, image, thumb, (int(data.width), int(data.height)), int(data.bit_depth), count_frames(path)
    )


def count_frames(path: Path) -> int:
    """Frames in an animated GIF, WebP or PNG (APNG); 1 for a still image or when unknown.

    The engine upscales the first frame only, and the queue says so, rather than silently
    turning an animation into a still.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1) or 1)
    except Exception:  # read_image already accepted the file; a frame count is only a hint
        return 1


class _LoadSignals(QObject):
    loaded = Signal(int, object)  # key, LoadedImage
    failed = Signal(int, str)  # key, reason


class _LoadTask(QRunnable):
    def __init__(self, key: int, path: Path, signals: _LoadSignals) -> None:
        super().__init__()
        self.key, self.path, self.signals = key, path, signals

    def run(self) -> None:
        try:
            result = load_for_display(self.path)
        except FmenError as exc:
            self.signals.failed.emit(self.key, str(exc))
        except Exception as exc:  # a decoder bug must reach the user as a failed item, not vanish
            self.signals.failed.emit(self.key, f"cannot read {self.path.name}: {exc}")
        else:
            self.signals.loaded.emit(self.key, result)


class ImageLoader(QObject):
    """Decodes queued inputs on a small private thread pool and reports back by signal."""

    loaded = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None, threads: int = 1) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._signals = _LoadSignals()
        self._signals.loaded.connect(self.loaded)
        self._signals.failed.connect(self.failed)

    def request(self, key: int, path: Path) -> None:
        """Queue a decode; the answer arrives as ``loaded`` or ``failed`` with the same key."""
        self._pool.start(_LoadTask(key, path, self._signals))

    def wait(self, msecs: int = 30000) -> bool:
        """Block until pending decodes end (used on close so no thread outlives the app)."""
        self._pool.clear()
        return self._pool.waitForDone(msecs)
