"""Plain, torch-free descriptions of upscale jobs and their outcomes.

Widgets build a :class:`JobSpec` and the worker turns it into engine settings. Keeping the
type here (and not in the worker or the engine) lets the GUI thread describe work without
importing anything heavy, which keeps start-up fast and the architecture rules checkable.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from fmen_gui.engine.jobs import DEFAULT_TEMPLATE, Job

_ids = itertools.count(1)


def next_job_id() -> int:
    """A process-unique job number, so late signals of an old job can be told apart."""
    return next(_ids)


@dataclass(frozen=True)
class JobSpec:
    """Everything the worker needs to upscale one file."""

    job_id: int
    src: Path
    model: str = "fmen-s"
    scale: int = 4
    weights: Path | None = None  # an explicit file overrides the model/scale lookup
    device: str = "auto"
    precision: str = "auto"
    tile: int | str = "auto"
    out_dir: Path | None = None  # None: beside the input
    fmt: str | None = "png"  # None: the input's format (BMP and GIF become PNG)
    quality: int = 95
    template: str = DEFAULT_TEMPLATE
    ensemble: bool = False  # eight flipped/rotated passes averaged: best quality, 8× the time
    kind: str = "clean"  # the network kind chosen for this input (engine/kinds.py)
    background: tuple[int, int, int] = (255, 255, 255)  # fills transparent areas in JPEG output

    def engine_key(self) -> tuple[object, ...]:
        """The fields that decide which network is loaded (a change means a reload)."""
        return (self.model, self.scale, self.weights, self.device, self.precision, self.kind)

    def engine_fields(self) -> dict[str, object]:
        """The keyword arguments of the engine's ``EngineSettings`` for this job."""
        return {
            "model": self.model,
            "scale": self.scale,
            "weights": self.weights,
            "device": self.device,
            "precision": self.precision,
            "tile": self.tile,
            "kind": self.kind,
        }

    def job(self) -> Job:
        """The file half of the spec, as the engine runs it (:func:`fmen_gui.engine.jobs.run`)."""
        return Job(
            self.src,
            out_dir=self.out_dir,
            fmt=self.fmt,
            quality=self.quality,
            template=self.template,
            tile=self.tile,
            ensemble=self.ensemble,
            background=self.background,
        )


@dataclass(frozen=True)
class JobOutcome:
    """What a finished job produced, as reported to the GUI thread."""

    job_id: int
    src: Path
    dst: Path
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    seconds: float
    label: str
    device_label: str
    filled_with: str = ""  # "#rrggbb" that filled see-through pixels (JPEG), "" when none were
