"""The training campaign: the clean and photo runs, resumed in turns on idle CPU until a deadline.

One command (``make train-campaign`` / ``scripts/campaign.sh``) started in the background
while someone works on the project. It trains in chunks: each chunk goes to the unfinished
run with the least CPU time for its share (×4 first: the scale people use most and the one
with a public reference), then exports that run's best EMA checkpoint if it beats the
shipped file on the held-out validation slice, then saves the run's EMA weights and step under
``checkpoints/`` (4–10 MB a run, committed) so that a fresh machine resumes too. Every run is
seeded, not only the ×4 ones: a session's checkout is a new clone without ``runs/`` (so it was
on 2026-12-05), and a run without a seed would start again from the shipped file. It stops cleanly,
with everything saved, before the deadline or on SIGTERM/SIGINT/SIGHUP.

The runs continue the shipped networks in the paper's train form (RRRBs and BatchNorms),
lifted exactly from the deploy weights (:func:`fmen_gui.arch.reparam.lift`): in the deploy
form FMEN-S ×4 stayed flat (35.307 dB on the unseen photographs after 1,700 more steps at
1e-4; a 2,500-step cycle at 3e-4 ended at 35.295), while the train form, from the same
file, reached 35.383 dB in 3,000 steps at a third of the speed. A new run starts from its
committed seed (when trained in the same form), else from the shipped file of its model, scale
and kind, else from the clean one: a first photo run starts from the clean network and learns
the degraded inputs of :mod:`fmen_gui.training.degrade`.

Every run trains on the 281 images plus the training photographs
(:data:`fmen_gui.training.photos.TRAINING_PHOTOS`, drawn by area) since 2026-12-06: from the
same FMEN-S ×4 seed, 1,250 steps with them reached 35.482 dB on the unseen photographs, without
them 35.383 (flat), and the held-out BSD200 scans did not move (27.464 against 27.461).

Run folders (``runs/<model>_x<scale>``, ignored by git) stay where the next start on the
same machine finds them; there a run resumes exactly from ``last.pt``; one trained in the
other form or on the other pool is set aside and the run goes on from its seed.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fmen_gui.training import schedule as sched
from fmen_gui.training.degrade import PHOTO
from fmen_gui.training.export import BENCHMARKS, PHOTO_FIRST_MARGIN, export, rival_file
from fmen_gui.training.trainer import DATA, StopRequest, TrainConfig, Trainer, data_description, pool_of
from fmen_gui.weights.registry import KINDS


@dataclass(frozen=True)
class Run:
    model: str
    scale: int
    share: float  # relative CPU share
    kind: str = "clean"  # one of KINDS: what inputs the model is for
    # Trains the first generation's third cycle and L2 fine-tune (begun before they were
    # dropped; see fmen_gui.training.schedule.finetune_schedule).
    third_cycle: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def name(self) -> str:
        return f"{self.model}_x{self.scale}" + ("" if self.kind == "clean" else f"_{self.kind}")


RUNS: tuple[Run, ...] = (  # in this order where their shares are equally used
    # The FMEN-S ×4 photo run had a share of 3 until 2026-12-05: its four-condition validation
    # peaked at step 2,500 (33.156 dB) and fell to 33.119 by step 4,000, so its mix, not its
    # CPU time, is what limits it; the runs that still gain get the time.
    Run("fmen-s", 4, 1.0, "photo"),
    Run("fmen-s", 4, 4.0, third_cycle=True),
    Run("fmen", 4, 2.0, third_cycle=True),
    Run("fmen-s", 2, 1.0, "photo"),
    Run("fmen-s", 2, 1.0),
    # FMEN ×2 before the ×3 runs: since the FMEN-S ×2 run's first cycle (2026-12-05) the
    # first-generation FMEN ×2 scores below it, and "quality" must earn its name at ×2 first.
    Run("fmen", 2, 1.0),
    Run("fmen", 4, 1.0, "photo"),
    Run("fmen-s", 3, 1.0, third_cycle=True),
    Run("fmen", 3, 1.0),
)
ScheduleFor = Callable[[Run], sched.Schedule]


def run_schedule(run: Run) -> sched.Schedule:
    """The campaign's recipe for ``run`` (see :func:`fmen_gui.training.schedule.finetune_schedule`)."""
    return sched.finetune_schedule(run.model, run.scale, run.third_cycle)


EXPORT_MINUTES = 3.0  # kept free before the deadline for the last export


def _progress(folder: Path, seed: Path | None = None) -> tuple[int, float]:
    """(steps, CPU minutes) of a run from its record, else from its committed seed; nothing
    yet is (0, 0).

    Why the seed: on a fresh machine (a new clone, no ``runs/``) the ×4 runs resume from their
    seeds, which carry their step and wall time. Without them every run would count as
    unstarted, and the chunks would go in list order to runs that already had hours instead of
    to the ones furthest behind their share.
    """
    try:
        record = json.loads((folder / "record.json").read_text())
        return int(record["steps"]), float(record["wall_minutes"])
    except (OSError, ValueError, KeyError):
        pass
    if seed is not None and seed.exists():
        try:
            state = torch.load(seed, map_location="cpu", weights_only=True)
            return int(state["step"]), float(state["wall"]) / 60
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError):
            pass  # an unreadable seed is reported where the run starts from it
    return 0, 0.0


def form_of(checkpoint: Path) -> str:
    """The form ("train" or "deploy") a run checkpoint or seed was trained in."""
    return _form(torch.load(checkpoint, map_location="cpu", weights_only=True))


def _form(state: dict[str, Any]) -> str:
    """A checkpoint's form; runs older than the record trained the deploy form."""
    return str(state.get("form", "deploy"))


def retire_unresumable(folder: Path, form: str, pool: str) -> Path | None:
    """Move a run folder that cannot resume here aside (nothing is deleted).

    A run resumes exactly or not at all: a ``last.pt`` trained in the other form, or on
    another pool of images (its batches are a function of the pool), cannot go on. The run
    then starts again from its seed (``checkpoints/<run>.pt``: the EMA weights and the step,
    the schedule goes on) or from the shipped file, lifted into the train form (see
    :func:`fmen_gui.arch.reparam.lift`); only the optimiser's moments are new.
    """
    last = folder / "last.pt"
    if not last.exists():
        return None
    state = torch.load(last, map_location="cpu", weights_only=True)
    old_form = _form(state)
    if old_form != form:
        tag = f"{old_form}-form"
    elif pool_of(state) != pool:
        tag = "other-pool"
    else:
        return None
    dest = free_name(folder, tag)
    folder.rename(dest)
    return dest


def free_name(folder: Path, tag: str) -> Path:
    """``runs/<run>.<tag>`` (``-2``, ``-3``… after it where taken): where a run folder is set
    aside or a copy of one filed. The dot keeps it out of the campaign's runs and the curves."""
    dest = folder.with_name(f"{folder.name}.{tag}")
    n = 1
    while dest.exists():
        n += 1
        dest = folder.with_name(f"{folder.name}.{tag}-{n}")
    return dest


def export_run(run: Run, folder: Path, **kw: Any) -> bool:
    """Export ``folder``'s best as ``run``'s weights if it beats them (see :func:`export`)."""
    return export(run.model, run.scale, folder, kind=run.kind, only_if_better=True, **kw)


def next_run(
    runs: tuple[Run, ...],
    root: Path,
    skip: set[str],
    schedules: ScheduleFor = run_schedule,
    seeds: Path | None = None,
) -> Run | None:
    """The unfinished run furthest behind its share of CPU time (a run without a folder yet
    counts what its seed under ``seeds`` already had)."""
    candidates = []
    for run in runs:
        if run.name in skip:
            continue
        seed = None if seeds is None else seeds / f"{run.name}.pt"
        steps, minutes = _progress(root / run.name, seed)
        if steps >= sched.total_steps(schedules(run)):
            continue
        candidates.append((minutes / run.share, runs.index(run), run))
    return min(candidates)[2] if candidates else None


def save_seed(trainer: Trainer, path: Path) -> Path:
    """The run's EMA weights with its step and curve: what a new machine resumes from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {
        "ema": {k: v.clone() for k, v in trainer.ema.state_dict().items()},
        "form": trainer.cfg.form,
        "step": trainer.step,
        "wall": trainer.wall,
        "history": trainer.history,
        "history_by": trainer.history_by,
        "val_on": trainer.val_on,
        "init": trainer.origin,
        "schedule": sched.format_schedule(trainer.cfg.schedule),
        "data": trainer.cfg.pool,
    }
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def campaign(
    deadline: float,
    *,
    runs: tuple[Run, ...] = RUNS,
    root: Path = Path("runs"),
    seeds: Path = Path("checkpoints"),
    weights_dir: Path = Path("weights"),
    data: Path = DATA,
    benchmarks: Path = BENCHMARKS,
    schedules: ScheduleFor = run_schedule,
    form: str = "train",
    chunk_minutes: float = 40.0,
    photo_margin: float = PHOTO_FIRST_MARGIN,
    unseen: Path | None = None,
    train_photos: Path | None = None,
    threads: int = 0,
    compile_steps: bool = True,  # about 7 % more steps a chunk on the CPU (see TrainConfig.compile)
    log: Callable[[str], object] = print,
) -> None:
    done: set[str] = set()
    with StopRequest() as stop:
        while stop.signal is None:
            now = time.time()
            end = min(deadline - EXPORT_MINUTES * 60, now + chunk_minutes * 60)
            if end - now < 60:
                log("campaign: deadline reached")
                break
            run = next_run(runs, root, done, schedules, seeds)
            if run is None:
                log("campaign: every run has finished its schedule")
                break
            folder = root / run.name
            seed = seeds / f"{run.name}.pt"
            start = None
            retired = retire_unresumable(folder, form, data_description(train_photos is not None))
            if retired:
                log(f"campaign: {folder} was trained in another form or on other images; kept as {retired}")
            if not (folder / "last.pt").exists():
                shipped = rival_file(weights_dir, run.model, run.scale, run.kind)
                usable_seed = seed.exists() and form_of(seed) == form
                start = seed if usable_seed else shipped if shipped.exists() else None
            cfg = TrainConfig(
                model=run.model,
                scale=run.scale,
                data=data,
                out=folder,
                schedule=schedules(run),
                threads=threads,
                init=start,
                form=form,
                deadline=end,
                degradation=PHOTO if run.kind == "photo" else None,
                unseen=unseen,
                train_photos=train_photos,
                compile=compile_steps,
            )
            trainer = Trainer(cfg)
            reason = trainer.train()
            if trainer.finished:
                done.add(run.name)
            log(f"campaign: saved {save_seed(trainer, seed)}")
            if trainer.best_path.exists():
                export_run(
                    run,
                    folder,
                    weights_dir=weights_dir,
                    data=data,
                    benchmarks=benchmarks,
                    photo_margin=photo_margin,
                    unseen=unseen,
                    log=log,
                )
            if reason == "signal":
                break
    log("campaign: stopped")


def parse_deadline(until: str | None, hours: float | None) -> float:
    """``--until HH:MM`` (the next such local time) or ``--hours H`` from now."""
    if hours is not None:
        return time.time() + hours * 3600
    if until is None:
        raise ValueError("give --until HH:MM or --hours H")
    try:
        hh, mm = (int(p) for p in until.split(":"))
        if not (0 <= hh < 24 and 0 <= mm < 60):
            raise ValueError
        now = time.localtime()
        target = time.mktime((now.tm_year, now.tm_mon, now.tm_mday, hh, mm, 0, 0, 0, -1))
    except (ValueError, OverflowError):
        raise ValueError(f"--until takes HH:MM, not {until!r}") from None
    return target if target > time.time() else target + 86400
