"""A training burst on a borrowed GPU: pack here, train there for minutes, bring the weights back.

Some sessions are lent a machine with an NVIDIA GPU for a few minutes (about 15 in all, a
call at most 10, its start counted; nothing on it can reach the network or ``../shared``).
Ten minutes of such a GPU trains more than many sessions of this project's 2-core CPU, so the
campaign's runs (:mod:`fmen_gui.training.campaign`) are carried there, trained and brought back:

1. ``python -m fmen_gui.training burst-pack --run fmen-s_x4`` (here) writes ``.burst/``
   (ignored by git): the run's freshest weights (``start.pt``), the training images, the
   unseen validation photographs, and the one pure-Python package the device's PyTorch image
   lacks (platformdirs). A call carries at most 64 MiB with the working tree, so the training
   images travel as lossless WebP (pixel-identical to the PNG/BMP originals, about a third
   smaller) in a fixed order until the budget is spent; ``pack.json`` says how many fitted.
2. On the device, in one call (``run`` with ``carry=[".burst"]``)::

       PYTHONPATH=.burst/site python3 -m fmen_gui.training burst --minutes 8 --out $OUT

   It times a hundred steps, sizes one L1 cosine cycle to the minutes left, trains it with
   the EMA, validates on the unseen photographs (on the device's CPU, through the engine, as
   at home) and writes ``best.pt`` (weights only), ``record.json`` and ``train.log`` to
   ``$OUT``. The run's ``last.pt`` (optimiser state, over the 16 MiB a returned file may
   have) stays there: a burst is not resumed, its weights are.
3. ``python -m fmen_gui.training burst-import FOLDER`` (here) files what came back as
   ``runs/<run>.burst-<time>/``, exports it if it beats the shipped file on the unseen
   photographs (``export --only-if-better``), and if it beats the run's own best makes it the
   run's seed: the CPU run folder is set aside and the campaign's next chunk starts from the
   GPU's weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fmen_gui.training import schedule as sched
from fmen_gui.training.campaign import RUNS, Run, export_run, form_of, free_name
from fmen_gui.training.data import split
from fmen_gui.training.degrade import PHOTO
from fmen_gui.training.export import BENCHMARKS, weights_name
from fmen_gui.training.trainer import DATA, TrainConfig, Trainer, checkpoint_weights, start_origin

PACK = Path(".burst")
CARRY_LIMIT = 64 * 2**20  # what one device call carries: the working tree and the carried paths
CARRY_MARGIN = 2 * 2**20  # room for files written between packing and the call (notes, logs)
BURST_FORM = "train"  # the form the campaign trains (see campaign.py)


@dataclass(frozen=True)
class BurstSettings:
    """How a burst trains: a GPU affords a larger batch, hence a higher rate than the CPU's 1e-4."""

    batch: int = 64
    lr: float = 2e-4
    patch: int | None = None  # LR pixels; None = the campaign's larger patch for the scale
    val_times: int = 8  # validations over the cycle
    device: str = "auto"
    workers: int | None = None  # batch-making processes; None = the cores less two, at most 8
    probe_steps: int = 100  # timed before the cycle is sized (real steps of its warm-up)
    end_margin_s: float = 20.0  # kept free at the end: the last save, the results' copy


def find_run(name: str) -> Run:
    for run in RUNS:
        if run.name == name:
            return run
    raise ValueError(f"no run named {name!r} (runs: {', '.join(r.name for r in RUNS)})")


def travelling_bytes(repo: Path) -> int:
    """Bytes of the working tree a device call sends: tracked and untracked-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    names = {n for n in out.decode().split("\0") if n}
    return sum((repo / n).stat().st_size for n in names if (repo / n).is_file())


def start_weights(run: Run, root: Path, seeds: Path, weights_dir: Path) -> tuple[dict[str, Any], str]:
    """(checkpoint-like state, where from) of the freshest weights of ``run`` in the burst's form.

    The run's best EMA (what export would ship), else its committed seed, else the shipped
    file (deploy form: the trainer lifts it). Weights only, no step: the burst's own cycle
    starts at step 0. Its ``init`` says where they came from, for the burst's record.
    """
    for path in (root / run.name / "best.pt", seeds / f"{run.name}.pt"):
        if path.exists() and form_of(path) == BURST_FORM:
            state = torch.load(path, map_location="cpu", weights_only=True)
            init = f"{path} at step {state.get('step', '?')}"
            if state.get("init"):
                init += f" of a run from {state['init']}"
            return {"ema": checkpoint_weights(state), "form": BURST_FORM, "init": init}, str(path)
    shipped = weights_dir / weights_name(run.model, run.scale)
    if not shipped.exists():
        raise FileNotFoundError(f"nothing to start {run.name} from: no run, seed or {shipped}")
    from fmen_gui.weights.loading import load_weights

    init = start_origin(shipped, lifted=BURST_FORM == "train")  # the trainer lifts deploy weights
    return {"model": load_weights(shipped)[0].state_dict(), "form": "deploy", "init": init}, str(shipped)


def carry_image(src: Path, target: Path) -> int:
    """Write ``src`` as lossless WebP at ``target`` (``<name>.webp``); return its size.

    Lossless WebP holds the same RGB pixels as the PNG/BMP original in about two thirds of
    the bytes, and what a call may carry is capped (see :data:`CARRY_LIMIT`).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        im.convert("RGB").save(target, "WEBP", lossless=True, quality=100, method=4)
    return target.stat().st_size


def unpack_images(folder: Path, dest: Path) -> None:
    """The inverse of packing: each ``x.png.webp`` under ``folder`` decoded to ``dest/…/x.png``
    (``.bmp`` to BMP), any other file copied as it is."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder)
        target = dest / (rel.with_suffix("") if path.suffix == ".webp" else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix != ".webp":
            shutil.copy2(path, target)
            continue
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        if target.suffix.lower() == ".bmp":
            rgb.save(target, "BMP")
        else:
            rgb.save(target, "PNG", compress_level=1)


def pack(
    name: str,
    dest: Path = PACK,
    *,
    repo: Path = Path("."),
    root: Path = Path("runs"),
    seeds: Path = Path("checkpoints"),
    weights_dir: Path = Path("weights"),
    data: Path = DATA,
    unseen: Path | None = None,
    budget: int | None = None,
) -> dict[str, Any]:
    """Write the burst for run ``name`` into ``dest`` (replaced); return its ``pack.json``.

    The training images go in a fixed shuffled order (so that a cut keeps both T91 and
    BSD200) until ``budget`` bytes (default: what the carry limit leaves beside the working
    tree and the rest of the pack) are spent.
    """
    from fmen_gui.training import photos

    run = find_run(name)
    unseen = unseen or photos.default_folder()
    if not photos.complete(unseen):
        raise FileNotFoundError(
            f"the unseen photographs are not in {unseen}: run `python -m fmen_gui.training photos` first"
        )
    pool, held = split(data)
    if dest.exists():
        shutil.rmtree(dest)
    images = dest / "images"
    (images / "photos").mkdir(parents=True)
    state, origin = start_weights(run, root, seeds, weights_dir)
    torch.save(state, dest / "start.pt")
    import platformdirs  # the one package the device's PyTorch image lacks (pure Python)

    shutil.copytree(Path(platformdirs.__file__).parent, dest / "site" / "platformdirs")
    shutil.copy2(unseen / photos.MANIFEST, images / "photos" / photos.MANIFEST)
    for file_name in photos.file_names():
        carry_image(unseen / file_name, images / "photos" / f"{file_name}.webp")
    for path in held:  # split() wants the held-out slice where it expects it
        carry_image(path, images / "data" / f"{path.relative_to(data)}.webp")
    if budget is None:
        used = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        budget = CARRY_LIMIT - CARRY_MARGIN - travelling_bytes(repo) - used
    spent, kept = 0, 0
    for i in np.random.default_rng(0).permutation(len(pool)):
        path = pool[int(i)]
        target = images / "data" / f"{path.relative_to(data)}.webp"
        size = carry_image(path, target)
        if spent + size > budget:
            target.unlink()
            break
        spent, kept = spent + size, kept + 1
    if not kept:
        raise ValueError(f"no training image fits the {budget / 2**20:.1f} MiB left to carry")
    info = {
        "run": run.name,
        "model": run.model,
        "scale": run.scale,
        "kind": run.kind,
        "start": origin,
        "images": kept,
        "images_left_out": len(pool) - kept,
        "image_bytes": spent,
        "packed": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (dest / "pack.json").write_text(json.dumps(info, indent=2))
    return info


def cycle(steps: int, patch: int, lr: float) -> sched.Schedule:
    return (sched.Stage("l1", max(steps, 1), patch, lr),)


def burst(
    pack_dir: Path, minutes: float, out: Path, settings: BurstSettings = BurstSettings()
) -> dict[str, Any]:
    """Train the packed run for ``minutes`` (all included) and write its results to ``out``."""
    deadline = time.time() + minutes * 60
    info = json.loads((pack_dir / "pack.json").read_text())
    model, scale = str(info["model"]), int(info["scale"])
    patch = settings.patch or sched.finetune_schedule(model, scale)[-1].patch
    work = Path(tempfile.mkdtemp(prefix=f"fmen-burst-{info['run']}-"))
    unpack_images(pack_dir / "images", work)
    big = 10**7  # the probe's placeholder cycle: its first steps are warm-up, as the real one's
    cfg = TrainConfig(
        model=model,
        scale=scale,
        data=work / "data",
        out=work / "run",
        schedule=cycle(big, patch, settings.lr),
        batch=settings.batch,
        val_every=big,
        save_every=big,  # a burst is not resumed: last.pt is written once, at the end
        device=settings.device,
        init=pack_dir / "start.pt",
        form=BURST_FORM,
        degradation=PHOTO if info["kind"] == "photo" else None,
        unseen=work / "photos",
        deadline=deadline,
        workers=settings.workers
        if settings.workers is not None
        else max(0, min(8, (os.cpu_count() or 1) - 2)),
    )
    torch.backends.cudnn.benchmark = True  # one patch size all along: the fastest kernels pay
    trainer = Trainer(cfg)
    trainer.train(max_steps=1)  # the starting weights' validation, and the first step
    t0 = time.perf_counter()
    trainer.train(max_steps=settings.probe_steps)
    per_step = (time.perf_counter() - t0) / settings.probe_steps
    # The minutes left, less the validations and the final save.
    t0 = time.perf_counter()
    trainer.validate()
    per_validation = time.perf_counter() - t0
    left = deadline - time.time() - per_validation * (settings.val_times + 1) - settings.end_margin_s
    steps = trainer.step + max(1, int(left / per_step))
    trainer.cfg = replace(
        cfg, schedule=cycle(steps, patch, settings.lr), val_every=max(1, steps // settings.val_times)
    )
    trainer.log(
        f"burst: {1 / per_step:.1f} steps/s, {per_validation:.1f} s a validation: a cycle of {steps} steps"
    )
    reason = trainer.train()
    out.mkdir(parents=True, exist_ok=True)
    improved = trainer.best_step > 0  # step 0's best is the weights it started from
    result = {"run": info["run"], "reason": reason, "steps": trainer.step, "improved": improved}
    if improved:  # weights only: the returned file must stay small (see the module docstring)
        best = torch.load(trainer.best_path, map_location="cpu", weights_only=True)
        init = f"{trainer.origin}, then a GPU burst of {trainer.step} steps"
        torch.save({"ema": checkpoint_weights(best), "form": BURST_FORM, "init": init}, out / "best.pt")
    record = trainer.record()
    record["burst"] = {**info, "minutes": minutes, "steps_per_s": round(1 / per_step, 2)}
    (out / "record.json").write_text(json.dumps(record, indent=2))
    shutil.copy2(trainer.log_path, out / "train.log")
    (out / "burst.json").write_text(json.dumps(result, indent=2))
    return result


def import_burst(
    returned: Path,
    *,
    root: Path = Path("runs"),
    seeds: Path = Path("checkpoints"),
    weights_dir: Path = Path("weights"),
    data: Path = DATA,
    benchmarks: Path = BENCHMARKS,
    unseen: Path | None = None,
    log: Callable[[str], object] = print,
) -> Path | None:
    """File a burst's results under ``runs/``, export them if better, make them the run's seed
    if they beat the run's own best; return the filed folder (None: the burst improved nothing)."""
    result = json.loads((returned / "burst.json").read_text())
    run = find_run(str(result["run"]))
    if not result["improved"] or not (returned / "best.pt").exists():
        log(f"{run.name}: the burst never beat the weights it started from; nothing to import")
        return None
    own = root / run.name
    filed = free_name(own, f"burst-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.copytree(returned, filed)
    gained = float(json.loads((filed / "record.json").read_text())["best_validation"])
    kw = {"weights_dir": weights_dir, "data": data, "benchmarks": benchmarks, "unseen": unseen}
    export_run(run, filed, log=log, **kw)
    own_best = _best_of(own)
    if own_best is not None and own_best >= gained:
        log(f"{run.name}: the CPU run's best {own_best:.3f} dB >= the burst's {gained:.3f} dB; it goes on")
        return filed
    if own.exists():
        aside = free_name(own, f"before-{filed.name.split('.', 1)[1]}")
        own.rename(aside)
        log(f"{run.name}: set the CPU run aside as {aside}")
    seed = seeds / f"{run.name}.pt"
    seed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(filed / "best.pt", seed)
    log(f"{run.name}: {seed} is now the burst's best ({gained:.3f} dB); the campaign starts there")
    return filed


def _best_of(folder: Path) -> float | None:
    try:
        return float(json.loads((folder / "record.json").read_text())["best_validation"])
    except (OSError, ValueError, KeyError):
        return None
