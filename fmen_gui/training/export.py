"""Turn a run's best EMA checkpoint into shipped weights, only where it is really better.

"Better" is decided on images neither network trained on: the unseen photographs of
:mod:`fmen_gui.training.photos` where they have been fetched, else the held-out validation
slice (on which the shipped clean files, trained before the slice was set aside, score high:
a cautious judge). The candidate is compared with the file now in ``weights/``, re-measured on
the same images under the same conditions. Set5 and Set14 are measured only here, at export,
and written to the manifest for the README; they decide nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fmen_gui.arch.detect import load_model
from fmen_gui.arch.fmen import FMEN, preset_config
from fmen_gui.arch.reparam import reparameterize
from fmen_gui.training import photos
from fmen_gui.training.data import HOLDOUT, VALIDATION, benchmark_pairs, condition_sets
from fmen_gui.training.trainer import DATA, checkpoint_weights, data_description, evaluate, score_sets
from fmen_gui.weights.files import sha256_file
from fmen_gui.weights.loading import load_weights, save_safetensors
from fmen_gui.weights.registry import record_entry

BENCHMARKS = Path("../shared/data/benchmark")
PHOTO_FIRST_MARGIN = 0.3  # dB on the degraded slice a first photo file must gain over the clean one
TEST_SETS = ("Set5", "Set14")


def weights_name(model: str, scale: int, kind: str = "clean") -> str:
    """``fmen_s_x4.safetensors``; other kinds than clean get a suffix (``…_x4_photo…``)."""
    suffix = "" if kind == "clean" else f"_{kind}"
    return f"{model.replace('-', '_')}_x{scale}{suffix}.safetensors"


def rival_file(weights_dir: Path, model: str, scale: int, kind: str = "clean") -> Path:
    """What a run of ``kind`` must beat: the shipped file of its kind, or where a photo file
    does not exist yet, the clean one (what those inputs get today; the run starts from it)."""
    own = weights_dir / weights_name(model, scale, kind)
    return own if own.exists() else weights_dir / weights_name(model, scale)


def deploy_from_checkpoint(path: Path, model: str, scale: int) -> tuple[FMEN, dict[str, Any]]:
    """The deploy-form network of a run's checkpoint, whichever form the run trained."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    deploy = state.get("form", "train") == "deploy"
    net = FMEN(preset_config(model, scale), deploy=deploy)
    net.load_state_dict(checkpoint_weights(state))
    return (net.eval() if deploy else reparameterize(net)), state


def export(
    model: str,
    scale: int,
    run: Path,
    *,
    kind: str = "clean",
    weights_dir: Path = Path("weights"),
    data: Path = DATA,
    benchmarks: Path = BENCHMARKS,
    only_if_better: bool = False,
    photo_margin: float = PHOTO_FIRST_MARGIN,
    unseen: Path | None = None,
    log: Callable[[str], object] = print,
) -> bool:
    """Export ``run/best.pt`` as ``kind`` weights; return whether ``weights_dir`` changed.

    ``unseen``: a folder of :mod:`~fmen_gui.training.photos` to judge on (when complete; else
    the held-out slice). Each kind is judged under the conditions it was chosen on
    (:data:`~fmen_gui.training.data.VALIDATION`; photo: clean, JPEG and noisy, fixed seeds).
    """
    deploy, state = deploy_from_checkpoint(run / "best.pt", model, scale)
    judged_on, base = photos.validation_images(data, scale, unseen)
    sets = condition_sets(base, kind)
    judged, by = score_sets(deploy, sets, scale)
    judged = round(judged, 3)
    name = weights_name(model, scale, kind)
    dest = weights_dir / name
    rival = rival_file(weights_dir, model, scale, kind)
    # The first photo file becomes what Auto gives every compressed JPEG: it must be clearly
    # better there than the clean network, not a rounding error better.
    margin = photo_margin if rival != dest else 0.0
    shipped = None
    if only_if_better and rival.exists():
        shipped_model, _ = load_weights(rival)
        shipped = round(score_sets(shipped_model, sets, scale)[0], 3)
        if shipped + margin >= judged:
            if rival == dest:
                log(f"kept {dest}: on {judged_on} {shipped:.3f} dB (shipped) >= {judged:.3f} dB ({run})")
            else:
                log(
                    f"{dest.name} not written: on {judged_on} {judged:.3f} dB ({run}) is not "
                    f"{margin:.2f} dB above {rival.name}'s {shipped:.3f} dB"
                )
            return False
        log(f"{run}: on {judged_on} {judged:.3f} dB beats {rival.name}'s {shipped:.3f} dB")
    psnr = {n: round(evaluate(deploy, benchmark_pairs(benchmarks / n, scale), scale), 3) for n in TEST_SETS}
    save_safetensors(
        deploy, dest, {"model": model, "scale": str(scale), "kind": kind, "format": "fmen-deploy"}
    )
    _check, desc = load_model(deploy.state_dict())
    record = json.loads((run / "record.json").read_text()) if (run / "record.json").exists() else {}
    record.update(
        {
            "steps_at_export": int(state.get("step", 0)),
            "best_step": int(state.get("step", 0)),
            "wall_minutes": round(float(state.get("wall", 0.0)) / 60, 1),
            "validation": {
                "on": judged_on,
                "images": list(HOLDOUT) if judged_on == photos.SLICE else photos.file_names(),
                "conditions": list(VALIDATION[kind]),
                "psnr": judged,
                "psnr_by_condition": {k: round(v, 3) for k, v in by.items()},
                **({"rival": rival.name, "rival_psnr": shipped} if shipped is not None else {}),
            },
            "trainer": "python -m fmen_gui.training (this project's own code)",
            "data": record.get("config", {}).get("data", data_description(False))
            + (", LR degraded (see degradation)" if kind == "photo" else ", Pillow bicubic LR"),
        }
    )
    record_entry(
        weights_dir,
        {
            "file": name,
            "model": model,
            "scale": scale,
            "kind": kind,
            "sha256": sha256_file(dest),
            "params": desc.params,
            "psnr": psnr,
            "training": record,
        },
    )
    log(
        f"exported {dest}: on {judged_on} {judged:.3f} dB, Set5 {psnr['Set5']:.3f} dB, Set14 {psnr['Set14']:.3f} dB"
    )
    return True
