"""``python -m fmen_gui.training train|export ...``.

``train`` runs (or resumes) one model/scale into ``runs/<model>_x<scale>``; ``export`` turns its
best checkpoint into a deploy-form ``.safetensors`` in ``weights/`` and records the measured
Set5/Set14 PSNR and the training record in ``weights/manifest.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fmen_gui.training.trainer import TrainConfig, Trainer


def _train(args: argparse.Namespace) -> None:
    out = args.out or Path("runs") / f"{args.model}_x{args.scale}"
    cfg = TrainConfig(
        model=args.model,
        scale=args.scale,
        data=args.data,
        val=args.val / "Set5",
        out=out,
        steps=args.steps,
        batch=args.batch,
        patch=args.patch,
        lr=args.lr,
        warmup=args.warmup,
        val_every=args.val_every,
        threads=args.threads,
        device=args.device,
        init=args.init,
        seed=args.seed,
        max_minutes=args.max_minutes,
    )
    Trainer(cfg).train()


def _export(args: argparse.Namespace) -> None:
    import json

    import torch

    from fmen_gui.arch.detect import load_model
    from fmen_gui.arch.reparam import reparameterize
    from fmen_gui.training.trainer import evaluate, load_benchmark
    from fmen_gui.weights.files import sha256_file
    from fmen_gui.weights.loading import save_safetensors
    from fmen_gui.weights.registry import record_entry

    run = args.run
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    train_model, desc = None, None
    from fmen_gui.arch.fmen import FMEN, preset_config

    train_model = FMEN(preset_config(args.model, args.scale), deploy=False)
    train_model.load_state_dict(state["model"])
    deploy = reparameterize(train_model)
    _check, desc = load_model(deploy.state_dict())
    psnr = {
        name: round(evaluate(deploy, load_benchmark(args.val / name, args.scale), args.scale), 3)
        for name in ("Set5", "Set14")
    }
    name = f"{args.model.replace('-', '_')}_x{args.scale}.safetensors"
    dest = args.weights_dir / name
    if args.only_if_better:
        from fmen_gui.weights.registry import read_manifest

        shipped = [e for e in read_manifest(args.weights_dir) if e.get("file") == name]
        if shipped and dest.exists() and shipped[0]["psnr"]["Set5"] >= psnr["Set5"]:
            print(f"kept {dest}: shipped Set5 {shipped[0]['psnr']['Set5']:.3f} dB >= {psnr['Set5']:.3f} dB")
            return
    save_safetensors(deploy, dest, {"model": args.model, "scale": str(args.scale), "format": "fmen-deploy"})
    log = (run / "train.log").read_text().splitlines() if (run / "train.log").exists() else []
    record = json.loads((run / "record.json").read_text()) if (run / "record.json").exists() else {}
    record.update(
        {
            "best_step": state["best_step"],
            "steps_at_export": state["step"],
            "wall_minutes": round(state["wall"] / 60, 1),
        }
    )
    init = record.get("config", {}).get("init")
    if init and init != "None" and (Path(init).parent / "record.json").exists():
        # A run started from another run's weights: keep the whole lineage in the manifest.
        record["continued_from"] = json.loads((Path(init).parent / "record.json").read_text())
    record_entry(
        args.weights_dir,
        {
            "file": name,
            "model": args.model,
            "scale": args.scale,
            "sha256": sha256_file(dest),
            "params": desc.params,
            "psnr": psnr,
            "training": {
                **record,
                "trainer": "python -m fmen_gui.training (this project's own code)",
                "data": "T91 + BSD200 (291 images), Pillow bicubic LR",
                "log_tail": log[-1:],
            },
        },
    )
    print(f"exported {dest}: Set5 {psnr['Set5']:.3f} dB, Set14 {psnr['Set14']:.3f} dB")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m fmen_gui.training")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (or resume) one model and scale")
    t.add_argument("--model", choices=("fmen-s", "fmen"), default="fmen-s")
    t.add_argument("--scale", type=int, choices=(2, 3, 4), default=2)
    t.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    t.add_argument("--val", type=Path, default=Path("../shared/data/benchmark"))
    t.add_argument("--out", type=Path, default=None)
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--patch", type=int, default=48)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--val-every", type=int, default=500)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--init", type=Path, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-minutes", type=float, default=0.0)
    e = sub.add_parser("export", help="write a run's best checkpoint to weights/ with its manifest entry")
    e.add_argument("--model", choices=("fmen-s", "fmen"), required=True)
    e.add_argument("--scale", type=int, choices=(2, 3, 4), required=True)
    e.add_argument("--run", type=Path, required=True)
    e.add_argument("--val", type=Path, default=Path("../shared/data/benchmark"))
    e.add_argument("--weights-dir", type=Path, default=Path("weights"))
    e.add_argument("--only-if-better", action="store_true", help="keep the shipped file unless Set5 improves")
    args = p.parse_args()
    _train(args) if args.cmd == "train" else _export(args)


if __name__ == "__main__":
    main()
