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

from fmen_gui.engine.jpeg_quality import JpegQuality
from fmen_gui.errors import FmenError

THUMB_SIZE = 96
# The most pixels of a result the window keeps for display (about 48 MB as RGB). Larger results
# are shown from a box-filtered copy and read from their file when copied; a 6000×4000 ×4
# result held at full size cost the window 1.2 GB that it could not even show at once.
PREVIEW_MAX_PIXELS = 16_000_000
_PREVIEW_ROWS = 64  # output rows reduced per step: no full-size temporaries


def preview_factor(width: int, height: int, max_pixels: int | None = None) -> int:
    """The integer reduction that brings width × height within ``max_pixels`` (1: none)."""
    max_pixels = PREVIEW_MAX_PIXELS if max_pixels is None else max_pixels
    k = 1
    while (width // k) * (height // k) > max_pixels:
        k += 1
    return k


def reduced_preview(rgb: np.ndarray, alpha: np.ndarray | None = None, k: int = 1) -> np.ndarray:
    """8-bit H/k × W/k × 3 (or × 4 with alpha) display pixels, each the mean of a k × k box.

    Works in bands of rows, so reducing a 384-megapixel result needs a few MB, not a copy.
    """
    planes = [rgb] if alpha is None else [rgb, alpha[..., None]]
    channels = sum(p.shape[2] for p in planes)
    h, w = rgb.shape[0] // k, rgb.shape[1] // k
    out = np.empty((h, w, channels), np.uint8)
    top = 255.0 / (65535.0 if rgb.dtype == np.uint16 else 255.0)
    for r0 in range(0, h, _PREVIEW_ROWS):
        r1 = min(h, r0 + _PREVIEW_ROWS)
        c0 = 0
        for plane in planes:
            c = plane.shape[2]
            band = plane[r0 * k : r1 * k, : w * k].astype(np.float32)
            band = band.reshape(r1 - r0, k, w, k, c).mean(axis=(1, 3))
            out[r0:r1, :, c0 : c0 + c] = np.clip(band * top + 0.5, 0, 255).astype(np.uint8)
            c0 += c
    return out


def array_to_qimage(arr: np.ndarray) -> QImage:
    """Copy an H×W, H×W×3 or H×W×4 array (uint8 or uint16) into a new ``QImage``.

    The copy matters: a ``QImage`` built over a numpy buffer does not own it, and the buffer
    may be freed or overwritten (tiles are filled in place) while the image is still shown.
    """
    from fmen_gui.engine.images import to_8bit  # torch-free; already loaded by the window

    a = np.asarray(arr)
    if a.dtype == np.uint16:
        a = to_8bit(a)
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
    jpeg_quality: JpegQuality | None = None  # from the file's tables or its pixels; None: never a JPEG


def load_for_display(path: Path, max_pixels: int | None = None) -> LoadedImage:
    """Decode ``path`` into display form; raises ``FmenError`` with a one-line reason.

    With ``max_pixels`` a bigger picture is kept as a reduced copy (finished results); inputs
    are kept whole, since their pixels are what the enlarged original shows.
    """
    from fmen_gui.engine import images  # torch-free; imported here to keep start-up lean
    from fmen_gui.engine.jpeg_quality import input_quality

    data = images.read_image(path)
    k = preview_factor(data.width, data.height, max_pixels) if max_pixels else 1
    preview = images.make_preview_rgb8(data) if k == 1 else reduced_preview(data.rgb, data.alpha, k)
    image = array_to_qimage(preview)
    thumb = image.scaled(
        QSize(THUMB_SIZE, THUMB_SIZE),
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    return LoadedImage(
        path,
        image,
        thumb,
        (int(data.width), int(data.height)),
        int(data.bit_depth),
        count_frames(path),
        # An input's pixels are decoded already, so a PNG's check for a JPEG past costs ≤ 0.3 s
        # here; a finished result (``max_pixels``) needs none.
        input_quality(path, data.rgb if max_pixels is None else None, decode=False),
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
    def __init__(self, key: int, path: Path, signals: _LoadSignals, max_pixels: int | None = None) -> None:
        super().__init__()
        self.key, self.path, self.signals, self.max_pixels = key, path, signals, max_pixels

    def run(self) -> None:
        try:
            result = load_for_display(self.path, self.max_pixels)
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

    def __init__(
        self, parent: QObject | None = None, threads: int = 1, max_pixels: int | None = None
    ) -> None:
        super().__init__(parent)
        self.max_pixels = max_pixels
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._signals = _LoadSignals()
        self._signals.loaded.connect(self.loaded)
        self._signals.failed.connect(self.failed)

    def request(self, key: int, path: Path) -> None:
        """Queue a decode; the answer arrives as ``loaded`` or ``failed`` with the same key."""
        self._pool.start(_LoadTask(key, path, self._signals, self.max_pixels))

    def wait(self, msecs: int = 30000) -> bool:
        """Block until pending decodes end (used on close so no thread outlives the app)."""
        self._pool.clear()
        return self._pool.waitForDone(msecs)
