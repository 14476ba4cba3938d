"""What a job is under the current settings: its spec, its label, its output size and network.

The settings panel holds the user's latest choices; ``merge_panel`` copies them into the app's
settings, which every question here answers from. The batch (``gui.batch``) asks these
questions when it sends an item to the worker, and to show what an item will become.
"""

from __future__ import annotations

from pathlib import Path

from fmen_gui.engine.kinds import KindChoice, choose_kind
from fmen_gui.engine.names import format_key, model_display_name
from fmen_gui.gui.jobs import JobSpec, next_job_id
from fmen_gui.gui.queue import QueueItem
from fmen_gui.gui.settings import AppSettings, background_rgb
from fmen_gui.gui.settings_panel import SettingsPanel


class JobPlanner:
    """Answers from the current settings; the batch asks them (``batch.Planner``)."""

    def __init__(self, settings: AppSettings, panel: SettingsPanel) -> None:
        self.settings = settings
        self.panel = panel
        self._engine_labels: dict[str, str] = {}  # weights file -> label the engine reported

    def merge_panel(self) -> None:
        """Bring the panel's choices into the settings."""
        p = self.panel.settings()
        for name in (
            "model",
            "scale",
            "device",
            "precision",
            "tile",
            "ensemble",
            "kind",
            "output_dir",
            "output_format",
            "quality",
            "template",
            "background",
        ):
            setattr(self.settings, name, getattr(p, name))

    def job_spec(self, item: QueueItem) -> JobSpec:
        """The job for ``item`` under the current settings."""
        self.merge_panel()
        s = self.settings
        return JobSpec(
            job_id=next_job_id(),
            src=item.path,
            model=s.model,
            scale=s.scale,
            weights=self.panel.weights_override,
            device=s.device,
            precision=s.precision,
            tile="auto" if s.tile == 0 else s.tile,
            ensemble=s.ensemble,
            kind=self._kind_choice(item).kind,
            out_dir=Path(s.output_dir).expanduser() if s.output_dir else None,
            fmt=s.output_format or None,  # None: the input's format, decided by the engine
            quality=s.quality,
            template=s.template,
            background=background_rgb(s.background),
        )

    def _kind_choice(self, item: QueueItem) -> KindChoice:
        """Clean or photo network for ``item`` (per item under Auto); see ``engine/kinds.py``."""
        s = self.settings
        # Photo/Clean is a choice between the FMEN presets' two networks; an imported model is one.
        kind = "clean" if self.panel.is_imported(s.model) else s.kind
        return choose_kind(kind, item.jpeg_quality, self.panel.photo_available(s.model, s.scale))

    def job_label(self) -> str:
        """The label of a job started now with the current settings (before the engine says)."""
        if self.panel.weights_override is not None:
            return self._engine_labels.get(str(self.panel.weights_override), self.panel.weights_override.name)
        s = self.settings
        entry = self.panel.imported_entry()
        name = entry.display_name if entry is not None else model_display_name(s.model)
        return f"{name} ×{s.scale}"

    def remember_label(self, label: str) -> None:
        """The engine's label for the loaded network: a weights file's job is named by it next time."""
        if self.panel.weights_override is not None:
            self._engine_labels[str(self.panel.weights_override)] = label

    def expectation(self, item: QueueItem) -> tuple[tuple[int, int] | None, KindChoice, bool]:
        """What the item will become: (output size, network kind, whether the card names the kind)."""
        out = None
        if item.in_size is not None:
            s = self.settings.scale
            out = (item.in_size[0] * s, item.in_size[1] * s)
        show_kind = self.panel.photo_available(self.settings.model, self.settings.scale)
        return out, self._kind_choice(item), show_kind

    def output_format(self, item: QueueItem) -> str:
        """The output format an item's job writes ("png"), for the saving-time estimate."""
        return format_key(self.settings.output_format or item.path.suffix)
