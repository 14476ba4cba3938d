"""The settings panel on the right: model, scale, device, precision, tiling and output.

It edits an :class:`AppSettings` value and says so with ``changed``; the window persists it.
Scale buttons for which no weights are installed are disabled with the reason in their
tooltip, so a user learns *why* before pressing Upscale instead of from a failed job.

Imported models (any architecture the loader knows: ESRGAN, SPAN, SwinIR…) are listed in the
model menu after the FMEN presets, from the registry's manifests (no torch). Such a model is
one network of one scale, so choosing it fixes the scale and the Photo/Clean choice does not
apply; both controls say why they are disabled.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fmen_gui.engine.kinds import KIND_LABELS
from fmen_gui.engine.names import model_display_name
from fmen_gui.errors import FmenError
from fmen_gui.gui.settings import (
    BACKGROUNDS,
    DEFAULT_TEMPLATE,
    LOSSY_FORMATS,
    MODELS,
    OUTPUT_CHOICES,
    PRECISIONS,
    SAME_AS_INPUT,
    SCALES,
    AppSettings,
)

if TYPE_CHECKING:
    from fmen_gui.weights.registry import WeightsEntry

log = logging.getLogger(__name__)

KIND_TIP = (
    "Which network for which picture. Clean: trained on clean images, sharpest on PNGs, "
    "scans and renders. Photo: trained on JPEG compression, noise and blur, for phone "
    "and web pictures. Auto picks per image from its JPEG quality, read from a PNG's pixels "
    "where it was a JPEG before (shown on each queue item)."
)
KIND_IMPORTED_TIP = "Photo/Clean applies to the FMEN presets: an imported model is one network"
REMOVE_TIP = "Delete the chosen imported model from this app's data folder"
REMOVE_PRESET_TIP = "Only imported models can be removed: FMEN and FMEN-S come with the app"

DeviceList = list[tuple[str, str, list[str]]]


def weights_availability() -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], str], str]:
    """(labels of installed weights, reasons for missing ones, a problem line or "").

    Reads the registry's manifests only (no torch), so it is cheap enough for the GUI thread.
    """
    from fmen_gui.weights import registry

    try:
        found = registry.available()
    except FmenError as exc:
        return {}, {}, str(exc)
    labels = {key: entry.label for key, entry in found.items()}
    missing = {(m, s): missing_reason(m, s) for m in MODELS for s in SCALES if (m, s) not in found}
    return labels, missing, ""


def photo_keys() -> set[tuple[str, int]]:
    """The (model, scale) pairs with photo weights installed (manifests only, no torch)."""
    from fmen_gui.weights import registry

    try:
        return set(registry.available("photo"))
    except FmenError:  # weights_availability reports the unreadable manifest
        return set()


def imported_by_key() -> dict[str, list[WeightsEntry]]:
    """The imported models by model key, in manifest order (manifests only, no torch)."""
    from fmen_gui.weights import registry

    found: dict[str, list[WeightsEntry]] = {}
    for entry in registry.imported_models():
        found.setdefault(entry.model, []).append(entry)
    return found


def model_menu_text(entries: list[WeightsEntry]) -> str:
    """The model menu's line for one imported model: ``4x-UltraSharp — ESRGAN ×4, 16.7 M``."""
    from fmen_gui.weights.registry import params_text

    first = entries[0]
    scales = ", ".join(f"×{e.scale}" for e in sorted(entries, key=lambda e: e.scale))
    same = len({e.params for e in entries}) == 1  # FMEN-family files of several sizes: no one count
    size = f", {params_text(first.params)}" if same and first.params is not None else ""
    return f"{first.display_name} — {first.arch} {scales}{size}"


def missing_reason(model: str, scale: int) -> str:
    """Why a model/scale cannot be chosen, and what in this window fixes it."""
    name = model_display_name(model)
    text = f"No {name} ×{scale} weights installed: use Import model…"
    if (model, scale) == ("fmen-s", 4):
        text += " or Download official FMEN-S ×4"
    return text


class SettingsPanel(QScrollArea):
    """Edits the processing and output settings; emits ``changed`` after every edit."""

    changed = Signal()
    import_requested = Signal()
    remove_requested = Signal()  # remove the chosen imported model (the window confirms first)
    download_requested = Signal()

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = dataclasses.replace(settings)
        self._override: Path | None = None
        self._labels: dict[tuple[str, int], str] = {}
        self._missing: dict[tuple[str, int], str] = {}
        self._photo: set[tuple[str, int]] = set()
        self._imported: dict[str, list[WeightsEntry]] = {}  # imported models by key
        self._problem = ""
        self._devices: DeviceList = []
        self._updating = False

        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("settingsBody")
        layout = QVBoxLayout(body)
        layout.setContentsMargins(10, 8, 12, 8)
        layout.setSpacing(12)
        layout.addWidget(self._build_model_group())
        layout.addWidget(self._build_processing_group())
        layout.addWidget(self._build_output_group())
        layout.addStretch(1)
        self.setWidget(body)
        self.setMinimumWidth(280)

        self._read_weights()
        self._fill_models()
        self._load(self._settings)

    # ------------------------------------------------------------------ construction
    def _build_model_group(self) -> QGroupBox:
        box = QGroupBox("Upscaler")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(14)  # a long imported name must not widen the panel
        self.model_combo.setToolTip(
            "FMEN: best quality. FMEN-S: faster and lighter, nearly as sharp. "
            "Below them: the models you imported (architecture, scale, parameters)."
        )
        form.addRow("Model", self.model_combo)

        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(4)
        self.scale_group = QButtonGroup(self)
        self.scale_group.setExclusive(True)
        self.scale_buttons: dict[int, QPushButton] = {}
        for s in SCALES:
            b = QPushButton(f"×{s}")
            b.setCheckable(True)
            b.setMinimumWidth(44)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.scale_group.addButton(b, s)
            self.scale_buttons[s] = b
            h.addWidget(b)
        form.addRow("Scale", row)

        self.kind_combo = QComboBox()
        for key, text in KIND_LABELS.items():
            self.kind_combo.addItem(text, key)
        self.kind_combo.setToolTip(KIND_TIP)
        form.addRow("Input", self.kind_combo)
        self.kind_combo.currentIndexChanged.connect(self._emit_changed)

        self.weights_label = QLabel()
        self.weights_label.setWordWrap(True)
        self.weights_label.setObjectName("hint")
        form.addRow(self.weights_label)

        buttons = QWidget()
        v = QVBoxLayout(buttons)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(4)
        self.import_button = QPushButton("Import model…")
        self.import_button.setToolTip(
            "Add a super-resolution model file: FMEN, ESRGAN / Real-ESRGAN, SPAN, Compact, "
            "SwinIR, OmniSR, SAFMN… (.pth, .pt, .ckpt, .bin, .safetensors)"
        )
        self.remove_button = QPushButton("Remove model…")
        self.remove_button.setToolTip(REMOVE_TIP)
        self.download_button = QPushButton("Download official FMEN-S ×4")
        self.download_button.setToolTip("The authors' release (1.4 MB), verified by its SHA-256")
        v.addWidget(self.import_button)
        v.addWidget(self.remove_button)
        v.addWidget(self.download_button)
        form.addRow(buttons)

        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.scale_group.idToggled.connect(self._on_scale_toggled)
        self.import_button.clicked.connect(self.import_requested)
        self.remove_button.clicked.connect(self.remove_requested)
        self.download_button.clicked.connect(self.download_requested)
        return box

    def _build_processing_group(self) -> QGroupBox:
        box = QGroupBox("Processing")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.device_combo = QComboBox()
        self.device_combo.setToolTip("Auto picks the first GPU, else the CPU")
        self.device_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.device_combo.setMinimumContentsLength(12)
        form.addRow("Device", self.device_combo)
        self.precision_combo = QComboBox()
        self.precision_combo.setToolTip("Auto: FP16 on GPUs, exact FP32 on the CPU")
        form.addRow("Precision", self.precision_combo)
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(0, 4096)
        self.tile_spin.setSingleStep(32)
        self.tile_spin.setSpecialValueText("Auto")
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setToolTip(
            "Input pixels per tile side. Auto fits the device's memory; smaller tiles use less "
            "memory and show progress more often. Tiles overlap, so the result is seamless."
        )
        form.addRow("Tile size", self.tile_spin)
        self.ensemble_check = QCheckBox("Best quality (8× slower)")
        self.ensemble_check.setToolTip(
            "Runs the network on the eight flips and rotations of the image and averages them: "
            "a little sharper and cleaner (about +0.1 dB), eight times the time."
        )
        form.addRow("", self.ensemble_check)
        self.ensemble_check.toggled.connect(self._emit_changed)
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        self.precision_combo.currentIndexChanged.connect(self._emit_changed)
        self.tile_spin.valueChanged.connect(self._emit_changed)
        return box

    def _build_output_group(self) -> QGroupBox:
        box = QGroupBox("Output")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        folder = QWidget()
        h = QHBoxLayout(folder)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(4)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("Beside the input")
        self.folder_edit.setClearButtonEnabled(True)
        self.folder_button = QToolButton()
        self.folder_button.setText("…")
        self.folder_button.setToolTip("Choose the output folder")
        h.addWidget(self.folder_edit, 1)
        h.addWidget(self.folder_button)
        form.addRow("Folder", folder)
        self.format_combo = QComboBox()
        for key, text in OUTPUT_CHOICES.items():
            self.format_combo.addItem(text, key)
        self.format_combo.setToolTip("Same as input: PNG stays PNG, JPEG stays JPEG (BMP and GIF become PNG)")
        form.addRow("Format", self.format_combo)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setToolTip("JPEG and WebP quality (PNG and TIFF are lossless)")
        form.addRow("Quality", self.quality_spin)
        self.background_combo = QComboBox()
        for key, name in BACKGROUNDS.items():
            self.background_combo.addItem(name.capitalize(), key)
        self.background_combo.setToolTip(
            "JPEG has no transparency: transparent areas are filled with this colour "
            "(never with the pixels hidden under them)"
        )
        form.addRow("Transparent", self.background_combo)
        self.template_edit = QLineEdit()
        self.template_edit.setPlaceholderText(DEFAULT_TEMPLATE)
        self.template_edit.setToolTip("Fields: {stem} (input name), {model}, {scale}")
        form.addRow("File name", self.template_edit)
        self.name_preview = QLabel()
        self.name_preview.setObjectName("hint")
        self.name_preview.setWordWrap(True)  # a long example must not widen the panel past its edge
        self.name_preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("", self.name_preview)
        self.folder_button.clicked.connect(self._choose_folder)
        self.folder_edit.textChanged.connect(self._on_text_changed)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.quality_spin.valueChanged.connect(self._emit_changed)
        self.background_combo.currentIndexChanged.connect(self._emit_changed)
        self.template_edit.textChanged.connect(self._on_text_changed)
        return box

    # ------------------------------------------------------------------ values
    def _load(self, s: AppSettings) -> None:
        self._updating = True
        try:
            self._select_model_index(s.model)
            if s.scale in self.scale_buttons:
                self.scale_buttons[s.scale].setChecked(True)
            self._fill_devices(s.device)
            self._fill_precisions(s.precision)
            self.tile_spin.setValue(s.tile)
            self.ensemble_check.setChecked(s.ensemble)
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(s.kind)))
            self.folder_edit.setText(s.output_dir)
            self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(s.output_format)))
            self.quality_spin.setValue(s.quality)
            self.background_combo.setCurrentIndex(max(0, self.background_combo.findData(s.background)))
            self.template_edit.setText("" if s.template == DEFAULT_TEMPLATE else s.template)
        finally:
            self._updating = False
        self._update_dependent()

    def settings(self) -> AppSettings:
        """The panel's current choices, merged into the settings it was given."""
        s = self._settings
        s.model = str(self.model_combo.currentData())
        checked = self.scale_group.checkedId()
        fixed = self.fixed_scale(s.model)
        s.scale = fixed if fixed is not None else checked if checked in SCALES else s.scale
        s.device = str(self.device_combo.currentData() or "auto")
        s.precision = str(self.precision_combo.currentData() or "auto")
        s.tile = self.tile_spin.value()
        s.ensemble = self.ensemble_check.isChecked()
        s.kind = str(self.kind_combo.currentData())
        s.output_dir = self.folder_edit.text().strip()
        s.output_format = str(self.format_combo.currentData())
        s.quality = self.quality_spin.value()
        s.background = str(self.background_combo.currentData())
        s.template = self.template_edit.text().strip() or DEFAULT_TEMPLATE
        return dataclasses.replace(s)

    def set_weights_override(self, path: Path | None) -> None:
        """Use one explicit weights file (``--weights``): model and scale come from it."""
        self._override = path
        self.refresh_weights()

    @property
    def weights_override(self) -> Path | None:
        return self._override

    def weights_problem(self) -> str:
        """Why the current choice cannot run (no weights), or "" when it can."""
        if self._override is not None:
            return ""
        if self._problem:
            return self._problem
        s = self.settings()
        if not self._labels and not self._missing:
            return ""  # registry unknown: let the engine decide
        return self._missing.get((s.model, s.scale), "")

    # ------------------------------------------------------------------ weights
    def photo_available(self, model: str, scale: int) -> bool:
        """Whether the photo network exists for this choice (never with an explicit file)."""
        return self._override is None and (model, scale) in self._photo

    def is_imported(self, model: str) -> bool:
        """Whether ``model`` is an imported model (not an FMEN preset)."""
        return model not in MODELS

    def fixed_scale(self, model: str) -> int | None:
        """The one scale of an imported model of one scale; None where the scale is a choice."""
        entries = self._imported.get(model, [])
        return entries[0].scale if len(entries) == 1 else None

    def imported_entry(self) -> WeightsEntry | None:
        """The registry entry of the chosen imported model (None for the FMEN presets)."""
        s = self.settings()
        return next((e for e in self._imported.get(s.model, []) if e.scale == s.scale), None)

    def select_model(self, model: str, scale: int) -> None:
        """Choose ``model`` at ``scale`` (after an import), as if the user had picked them."""
        self._updating = True
        try:
            self._select_model_index(model)
            if scale in self.scale_buttons:
                self.scale_buttons[scale].setChecked(True)
        finally:
            self._updating = False
        self._on_model_changed(self.model_combo.currentIndex())

    def refresh_weights(self) -> None:
        """Re-read the installed weights: the model menu, the scale choices and their reasons.

        A chosen imported model that has been removed falls back to FMEN-S, and ``changed``
        says so (the window saves the settings; queued items show their new network).
        """
        before = str(self.model_combo.currentData())
        self._read_weights()
        self._updating = True
        try:
            self._fill_models()
            self._select_model_index(before)
        finally:
            self._updating = False
        if str(self.model_combo.currentData()) != before:
            self._on_model_changed(self.model_combo.currentIndex())
        else:
            self._update_dependent()

    def _read_weights(self) -> None:
        try:
            self._labels, self._missing, self._problem = weights_availability()
            self._photo = photo_keys()
            self._imported = imported_by_key() if not self._problem else {}
        except ImportError as exc:  # registry not installed: an incomplete build
            self._labels, self._missing, self._problem = {}, {}, f"weights registry unavailable: {exc}"
            self._photo, self._imported = set(), {}
        for model, entries in self._imported.items():
            scales = {e.scale for e in entries}
            name = entries[0].display_name
            only = f"{name} is a ×{entries[0].scale} model: its scale is fixed" if len(scales) == 1 else ""
            for s in SCALES:
                if s not in scales:
                    self._missing[(model, s)] = only or f"No {name} ×{s} model imported"

    def _fill_models(self) -> None:
        """The presets, then one line per imported model (its registry entries as tooltip)."""
        self.model_combo.blockSignals(True)
        try:
            self.model_combo.clear()
            for key, text in MODELS.items():
                self.model_combo.addItem(text, key)
            if self._imported:
                self.model_combo.insertSeparator(self.model_combo.count())
            for key, entries in self._imported.items():
                self.model_combo.addItem(model_menu_text(entries), key)
                tip = "\n".join(f"{e.label}\n{e.path}" for e in entries)
                self.model_combo.setItemData(self.model_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        finally:
            self.model_combo.blockSignals(False)

    def _select_model_index(self, model: str) -> None:
        """Show ``model`` in the menu; one that is not (or no longer) installed: FMEN-S."""
        index = self.model_combo.findData(model)
        self.model_combo.setCurrentIndex(
            index if index >= 0 else self.model_combo.findData(AppSettings.model)
        )

    def _update_dependent(self) -> None:
        model = str(self.model_combo.currentData())
        for s, button in self.scale_buttons.items():
            if self._override is not None:
                button.setEnabled(False)
                button.setToolTip(f"Scale comes from {self._override.name}")
            elif (model, s) in self._missing:
                button.setEnabled(False)
                button.setToolTip(self._missing[(model, s)])
            else:
                button.setEnabled(True)
                button.setToolTip(self._labels.get((model, s), f"×{s}"))
        self.model_combo.setEnabled(self._override is None)
        imported = self.is_imported(model)
        self.kind_combo.setEnabled(not imported)
        self.kind_combo.setToolTip(KIND_IMPORTED_TIP if imported else KIND_TIP)
        self.remove_button.setEnabled(imported and self._override is None)
        self.remove_button.setToolTip(REMOVE_TIP if imported else REMOVE_PRESET_TIP)
        fixed = self.fixed_scale(model)
        if fixed is not None and fixed not in self.scale_buttons and self.scale_group.checkedButton():
            # A ×1 (restoration) or ×8 model: none of the buttons is its scale.
            self.scale_group.setExclusive(False)
            self.scale_group.checkedButton().setChecked(False)
            self.scale_group.setExclusive(True)
        scale = fixed if fixed is not None else self.scale_group.checkedId()
        if self._override is not None:
            text = f"Weights: {self._override.name} (explicit file)"
        elif self._problem:
            text = f"⚠ {self._problem}"
        elif (model, scale) in self._labels:
            text = f"Weights: {self._labels[(model, scale)]}"
        elif (model, scale) in self._missing:
            text = f"⚠ {self._missing[(model, scale)]}"
        else:
            text = ""
        self.weights_label.setText(text)
        self.weights_label.setVisible(bool(text))
        fmt = str(self.format_combo.currentData())
        self.quality_spin.setEnabled(fmt in LOSSY_FORMATS or fmt == SAME_AS_INPUT)
        template = self.template_edit.text().strip() or DEFAULT_TEMPLATE
        ext = fmt or "jpg"
        try:
            name = template.format(stem="photo", model=model, scale=scale, ext=ext)
            source = " (from photo.jpg)" if fmt == SAME_AS_INPUT else ""
            self.name_preview.setText(f"e.g. {name}.{ext}{source}")
        except (KeyError, IndexError, ValueError):
            self.name_preview.setText("⚠ use only {stem}, {model}, {scale}")

    # ------------------------------------------------------------------ devices
    def set_devices(self, devices: DeviceList) -> None:
        """Fill the device list with what the worker detected (names, precisions)."""
        self._devices = list(devices)
        current = str(self.device_combo.currentData() or self._settings.device)
        precision = str(self.precision_combo.currentData() or self._settings.precision)
        self._updating = True
        try:
            self._fill_devices(current)
            self._fill_precisions(precision)
        finally:
            self._updating = False

    def device_label(self, key: str) -> str:
        return next((label for k, label, _ in self._devices if k == key), key)

    def _fill_devices(self, selected: str) -> None:
        self.device_combo.clear()
        first = self._devices[0][1] if self._devices else ""
        self.device_combo.addItem(f"Auto — {first}" if first else "Auto", "auto")
        keys = ["auto"]
        for key, label, _ in self._devices:
            self.device_combo.addItem(label, key)
            keys.append(key)
        if selected not in keys:  # remembered device not (yet) detected: keep it selectable
            self.device_combo.addItem(
                selected.upper() if self._devices == [] else f"{selected} (not found)", selected
            )
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(selected)))

    def _fill_precisions(self, selected: str) -> None:
        key = str(self.device_combo.currentData() or "auto")
        choices = list(PRECISIONS)
        if self._devices:
            entry = (
                self._devices[0] if key == "auto" else next((d for d in self._devices if d[0] == key), None)
            )
            if entry is not None and entry[2]:
                choices = [c for c in PRECISIONS if c in entry[2]]
        self.precision_combo.clear()
        for c in choices:
            self.precision_combo.addItem(PRECISIONS[c], c)
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(selected)))

    # ------------------------------------------------------------------ slots
    def _emit_changed(self, *_: object) -> None:
        if not self._updating:
            self._update_dependent()
            self.changed.emit()

    def _on_text_changed(self, _text: str) -> None:
        self._update_dependent()
        if not self._updating:
            self.changed.emit()

    def _on_model_changed(self, _index: int) -> None:
        self._update_dependent()
        model = str(self.model_combo.currentData())
        scale = self.scale_group.checkedId()
        if scale not in SCALES or (model, scale) in self._missing:  # move to a scale that works
            usable = [s for s in SCALES if (model, s) not in self._missing]
            fixed = self.fixed_scale(model)
            if usable or fixed is None:  # (none, after a ×1 model: the default scale)
                self.scale_buttons[max(usable, default=AppSettings().scale)].setChecked(True)
        self._emit_changed()

    def _on_scale_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self._emit_changed()

    def _on_device_changed(self, _index: int) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self._fill_precisions(str(self.precision_combo.currentData() or "auto"))
        finally:
            self._updating = False
        self._emit_changed()

    def _on_format_changed(self, _index: int) -> None:
        self._emit_changed()

    def _choose_folder(self) -> None:
        start = self.folder_edit.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Output folder", start)
        if folder:
            self.folder_edit.setText(folder)
            self._emit_changed()
