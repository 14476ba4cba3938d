"""The names the whole app shares: models, scales, output formats, the default file name.

Dependency-free on purpose: the CLI's argument parser, the window's settings and the engine
all read them, and the CLI must answer ``--help`` without loading numpy, Pillow or torch.
"""

from __future__ import annotations

MODEL_KEYS = ("fmen-s", "fmen")  # the presets a user picks
# How each model is shown; "custom" is an imported FMEN-family file of another size.
MODEL_NAMES = {"fmen-s": "FMEN-S", "fmen": "FMEN", "custom": "FMEN-family"}
SCALES = (2, 3, 4)
DEFAULT_TEMPLATE = "{stem}_{model}_x{scale}"
# Output format key (the file extension) -> Pillow's format name.
OUTPUT_FORMATS: dict[str, str] = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}
FORMAT_ALIASES = {"jpeg": "jpg", "tif": "tiff"}  # other spellings of the keys


def format_key(text: str) -> str:
    """``"JPEG"``, ``".jpg"``, ``"jpg"`` → ``"jpg"``: the one spelling of an output format."""
    key = text.strip().lower().lstrip(".")
    return FORMAT_ALIASES.get(key, key)


def model_display_name(model: str) -> str:
    """``"fmen-s"`` -> ``"FMEN-S"``; unknown keys are shown upper-cased rather than rejected."""
    return MODEL_NAMES.get(model, model.upper())
