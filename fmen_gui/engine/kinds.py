"""Which network an input gets: the clean one or the photo one, and why.

The clean networks learned bicubic-reduced images; on a JPEG from a phone or the web they
sharpen the compression blocks (at quality 50, worse than bicubic). The photo networks learned
JPEG, noise and blur (:mod:`fmen_gui.training.degrade`) and lose a little on clean inputs. So
"Auto" looks at what the file is: a JPEG whose quantisation says quality ≤
:data:`~fmen_gui.engine.jpeg_quality.PHOTO_MAX_QUALITY` gets the photo network, and so does a
PNG (or any lossless file) whose pixels still carry such a JPEG's quantisation
(:func:`~fmen_gui.engine.jpeg_quality.traced_quality`); anything else gets the clean one. The
reason goes with the choice, for the CLI's note and the queue's tooltip.

Torch-free and Qt-free: the CLI, the GUI thread (per queue item) and the worker share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fmen_gui.engine.jpeg_quality import PHOTO_MAX_QUALITY, JpegQuality, input_quality

AUTO = "auto"
KIND_SETTINGS = (AUTO, "clean", "photo")  # what the user picks; "clean"/"photo" are registry kinds
KIND_LABELS = {AUTO: "Auto (by input)", "clean": "Clean", "photo": "Photo"}


@dataclass(frozen=True)
class KindChoice:
    """The kind of network chosen for one input, and a one-line reason a person can read."""

    kind: str  # "clean" or "photo"
    reason: str


def choose_kind(setting: str, quality: JpegQuality | None, photo_available: bool) -> KindChoice:
    """The network kind for an input whose JPEG quality is ``quality`` (None: never a JPEG)."""
    if setting not in KIND_SETTINGS:
        raise ValueError(f"kind must be one of {', '.join(KIND_SETTINGS)}, not {setting!r}")
    if setting == "clean":
        return KindChoice("clean", "clean model, as set")
    if setting == "photo":
        if photo_available:
            return KindChoice("photo", "photo model, as set")
        return KindChoice("clean", "photo model set, but none is installed for this model and scale")
    if quality is None:
        return KindChoice("clean", "not a JPEG: clean model")
    what = f"JPEG quality ≈{quality.value}"
    if quality.from_pixels:
        what = f"once a {what} (read from its pixels)"
    if quality.value > PHOTO_MAX_QUALITY:
        return KindChoice("clean", f"{what}, above {PHOTO_MAX_QUALITY}: clean model")
    if not photo_available:
        return KindChoice("clean", f"{what}, but no photo model is installed: clean model")
    return KindChoice("photo", f"{what}: photo model")


def kind_for_file(path: Path, setting: str, photo_available: bool) -> KindChoice:
    """:func:`choose_kind` for a file (any thread). Under Auto a JPEG's header answers; any
    other file is decoded for its pixels where a photo model could be chosen."""
    quality = input_quality(path, decode=photo_available) if setting == AUTO else None
    return choose_kind(setting, quality, photo_available)
