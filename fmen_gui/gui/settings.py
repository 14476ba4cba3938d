"""User settings of the desktop app and their persistence in ``QSettings``.

The settings are a plain dataclass so widgets, tests and the job builder share one typed value
instead of sprinkling string keys around. The store is injectable: the app uses the user's
native ``QSettings``, tests pass an INI file in a temporary folder so they never touch (or
depend on) the developer's real settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from fmen_gui.engine.kinds import AUTO, KIND_SETTINGS
from fmen_gui.engine.names import DEFAULT_TEMPLATE, OUTPUT_FORMATS, SCALES

ORGANISATION = "FMEN"
APPLICATION = "FMEN Upscaler"

MODELS: dict[str, str] = {"fmen": "FMEN — quality", "fmen-s": "FMEN-S — speed"}
IMPORTED_SCALES = range(1, 17)  # an imported model's own scale (1: restoration, up to ×16)
PRECISIONS: dict[str, str] = {"auto": "Auto", "fp32": "FP32", "fp16": "FP16", "bf16": "BF16"}
# Output format key (file extension) -> label shown to the user.
FORMATS: dict[str, str] = {key: {"WEBP": "WebP"}.get(name, name) for key, name in OUTPUT_FORMATS.items()}
LOSSY_FORMATS = frozenset({"jpg", "webp"})
# The output format setting: "" keeps the input's format (BMP and GIF become PNG), like the CLI.
SAME_AS_INPUT = ""
OUTPUT_CHOICES: dict[str, str] = {SAME_AS_INPUT: "Same as input", **FORMATS}
# What transparent areas become in formats without alpha (JPEG): "#rrggbb" -> name for the UI.
BACKGROUNDS: dict[str, str] = {"#ffffff": "white", "#000000": "black", "#808080": "grey"}
THEMES = ("dark", "light")
VIEW_MODES = ("slider", "side")


@dataclass
class AppSettings:
    """Everything the user can choose that should survive a restart."""

    model: str = "fmen-s"
    scale: int = 4
    device: str = "auto"
    precision: str = "auto"
    tile: int = 0  # 0 means "auto"; otherwise low-resolution pixels per tile side
    ensemble: bool = False  # best quality: the geometric self-ensemble, eight passes
    kind: str = AUTO  # clean or photo network: by input (auto) or always one (engine/kinds.py)
    output_dir: str = ""  # empty means "beside the input"
    output_format: str = SAME_AS_INPUT  # a key of OUTPUT_CHOICES
    quality: int = 95
    template: str = DEFAULT_TEMPLATE
    background: str = "#ffffff"  # a key of BACKGROUNDS
    theme: str = "dark"
    view_mode: str = "slider"
    smooth: bool = False  # how the original is enlarged: nearest (honest pixels) or smooth
    last_open_dir: str = ""
    geometry: bytes = field(default=b"", repr=False)
    window_state: bytes = field(default=b"", repr=False)
    splitter: bytes = field(default=b"", repr=False)

    def normalised(self, imported: Collection[str] = ()) -> AppSettings:
        """Return a copy with every out-of-range value replaced by its default.

        Settings files outlive versions and can be edited by hand; a bad value must never stop
        the app from starting. ``imported``: the keys of the imported models installed now; a
        remembered model that has been removed since falls back to FMEN-S.
        """
        d = AppSettings()
        model = self.model if self.model in MODELS or self.model in imported else d.model
        scales = SCALES if model in MODELS else IMPORTED_SCALES  # an imported model has its own
        return dataclasses.replace(
            self,
            model=model,
            scale=self.scale if self.scale in scales else d.scale,
            precision=self.precision if self.precision in PRECISIONS else d.precision,
            tile=self.tile if 0 <= self.tile <= 8192 else d.tile,
            kind=self.kind if self.kind in KIND_SETTINGS else d.kind,
            output_format=self.output_format if self.output_format in OUTPUT_CHOICES else d.output_format,
            quality=min(100, max(1, self.quality)),
            template=self.template.strip() or d.template,
            background=self.background if self.background in BACKGROUNDS else d.background,
            theme=self.theme if self.theme in THEMES else d.theme,
            view_mode=self.view_mode if self.view_mode in VIEW_MODES else d.view_mode,
        )


def imported_model_keys() -> set[str]:
    """The keys of the imported models installed now (manifests only: no torch, cheap)."""
    from fmen_gui.errors import FmenError
    from fmen_gui.weights import registry

    try:
        return {entry.model for entry in registry.imported_models()}
    except FmenError:  # an unreadable manifest: the settings panel says so
        return set()


def background_rgb(key: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` as an (r, g, b) tuple, the form the encoder takes."""
    return (int(key[1:3], 16), int(key[3:5], 16), int(key[5:7], 16))


def _coerce(value: Any, default: Any) -> Any:
    """Convert a raw QSettings value to the type of ``default``.

    INI files give back strings ("true", "4") while native stores keep types, so the store
    normalises both instead of trusting either.
    """
    if value is None:
        return default
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes", "on"}
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, bytes):
            if isinstance(value, QByteArray):
                return bytes(value.data())
            if isinstance(value, bytes | bytearray):
                return bytes(value)
            return default
        return str(value)
    except (TypeError, ValueError):
        return default


class SettingsStore:
    """Loads and saves :class:`AppSettings` from one ``QSettings`` instance."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)

    @classmethod
    def from_file(cls, path: str) -> SettingsStore:
        """A store backed by an INI file (tests, portable installs)."""
        return cls(QSettings(path, QSettings.Format.IniFormat))

    def load(self) -> AppSettings:
        """Read every field, falling back to defaults for missing or malformed values."""
        defaults = AppSettings()
        values: dict[str, Any] = {}
        for f in dataclasses.fields(AppSettings):
            default = getattr(defaults, f.name)
            values[f.name] = _coerce(self.qsettings.value(f.name), default)
        return AppSettings(**values).normalised(imported_model_keys())

    def save(self, settings: AppSettings) -> None:
        """Write every field and flush, so a crash right after still keeps the choice."""
        for f in dataclasses.fields(AppSettings):
            value = getattr(settings, f.name)
            if isinstance(value, bytes):
                value = QByteArray(value)
            self.qsettings.setValue(f.name, value)
        self.qsettings.sync()
