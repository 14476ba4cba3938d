"""``python -m fmen_gui.training train|export|campaign ...``.

``train`` runs (or resumes) one model/scale into ``runs/<model>_x<scale>``; ``export`` turns
its best EMA checkpoint into a deploy-form ``.safetensors`` in ``weights/`` and records the
validation and Set5/Set14 PSNR in ``weights/manifest.json``; ``campaign`` does both for the
six runs in turns until a deadline (see :mod:`fmen_gui.training.campaign`); ``photos``
fetches the unseen photographs that export decisions are judged on
(:mod:`fmen_gui.training.photos`); ``curves`` draws the validation curves; ``tables`` writes
the README's tables of the shipped weights from the manifest (:mod:`fmen_gui.training.tables`); ``burst-pack``,
``burst`` and ``burst-import`` carry a run to a borrowed GPU and back
(:mod:`fmen_gui.training.burst`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from fmen_gui.training import schedule as sched
from fmen_gui.training.trainer import DATA, FORMS
from fmen_gui.weights.registry import KINDS


def _train(args: argparse.Namespace) -> None:
    from fmen_gui.training.campaign import parse_deadline
    from fmen_gui.training.degrade import PHOTO
    from fmen_gui.training.trainer import TrainConfig, Trainer

    cfg = TrainConfig(
        model=args.model,
        scale=args.scale,
        data=args.data,
        out=args.out or Path("runs") / f"{args.model}_x{args.scale}",
        schedule=sched.parse(args.schedule)
        if args.schedule
        else sched.default_schedule(args.model, args.scale),
        batch=args.batch,
        val_every=args.val_every,
        threads=args.threads,
        device=args.device,
        init=args.init,
        form=args.form,
        degradation=PHOTO if args.kind == "photo" else None,
        unseen=args.unseen,
        train_photos=_train_photos() if args.train_photos else None,
        seed=args.seed,
        deadline=parse_deadline(args.until, args.hours) if (args.until or args.hours) else 0.0,
    )
    Trainer(cfg).train(max_steps=args.max_steps)


def _export(args: argparse.Namespace) -> None:
    from fmen_gui.training.export import export

    run = args.run or Path("runs") / f"{args.model}_x{args.scale}"
    export(
        args.model,
        args.scale,
        run,
        kind=args.kind,
        weights_dir=args.weights_dir,
        data=args.data,
        only_if_better=args.only_if_better,
        unseen=args.unseen,
    )


def _unseen(args: argparse.Namespace) -> Path | None:
    """The unseen photographs for export decisions: fetched once if missing, else the slice."""
    from fmen_gui.training import photos

    if photos.complete(args.unseen):
        return args.unseen
    try:
        folder = photos.fetch(args.unseen)
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        print(f"unseen photographs unavailable ({exc}); exports are judged on the validation slice")
        return None
    print(f"fetched the unseen validation photographs into {folder}")
    return folder


def _train_photos() -> Path:
    """The training photographs' cache folder, fetched first where incomplete."""
    from fmen_gui.training import photos

    return photos.fetch(collection=photos.TRAINING_PHOTOS)


def _campaign_photos() -> Path | None:
    """The campaign's training photographs, or None (the 281 images alone) where they cannot be
    fetched: a campaign on a machine without apt still trains."""
    try:
        return _train_photos()
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        print(f"training photographs unavailable ({exc}); the runs train on the 281 images")
        return None


def _photos(args: argparse.Namespace) -> None:
    from fmen_gui.training import photos

    if args.training:
        folder = _train_photos()
        print(f"{len(photos.TRAINING_PHOTOS.file_names())} training photographs in {folder}")
        return
    folder = photos.fetch(args.unseen)
    print(f"{len(photos.file_names())} validation photographs in {folder}")


def _campaign(args: argparse.Namespace) -> None:
    from fmen_gui.training.campaign import RUNS, campaign, parse_deadline

    runs = RUNS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {r.name for r in RUNS}
        if unknown:
            raise ValueError(
                f"--only: no run named {', '.join(sorted(unknown))} (runs: {', '.join(r.name for r in RUNS)})"
            )
        runs = tuple(r for r in RUNS if r.name in wanted)
    campaign(
        parse_deadline(args.until, args.hours),
        runs=runs,
        data=args.data,
        chunk_minutes=args.chunk_minutes,
        threads=args.threads,
        form=args.form,
        unseen=_unseen(args),
        train_photos=_campaign_photos() if args.train_photos else None,
    )


def _burst_pack(args: argparse.Namespace) -> None:
    from fmen_gui.training.burst import pack

    info = pack(args.run, args.pack, data=args.data, unseen=args.unseen)
    print(
        f"packed {info['run']} into {args.pack} (start: {info['start']}; {info['images']} training "
        f"images, {info['image_bytes'] / 2**20:.1f} MiB, {info['images_left_out']} left out for the carry limit)"
    )


def _burst(args: argparse.Namespace) -> None:
    from fmen_gui.training.burst import BurstSettings, burst

    settings = BurstSettings(batch=args.batch, lr=args.lr, patch=args.patch, device=args.device)
    result = burst(args.pack, args.minutes, args.out, settings)
    print(json.dumps(result))


def _burst_import(args: argparse.Namespace) -> None:
    from fmen_gui.training.burst import import_burst

    import_burst(args.folder, data=args.data, unseen=args.unseen)


def _tables(args: argparse.Namespace) -> None:
    from fmen_gui.training import tables

    manifest = args.weights_dir / "manifest.json"
    if args.write is None:
        print(tables.tables(manifest))
    elif tables.write(args.write, manifest):
        print(f"rewrote the weights tables in {args.write} from {manifest}")
    else:
        print(f"{args.write}: the weights tables are already the manifest's")


def _curves(args: argparse.Namespace) -> None:
    from fmen_gui.training.curves import condition_histories, draw, histories, validated_on
    from fmen_gui.training.data import condition_sets
    from fmen_gui.training.export import rival_file
    from fmen_gui.training.photos import SLICE, validation_images
    from fmen_gui.training.trainer import score_sets
    from fmen_gui.weights.loading import load_weights

    curves, on = histories(args.runs, args.seeds), validated_on(args.runs, args.seeds)
    shipped = {}
    for name in curves:  # what the run must beat, on the same images, for the dashed line
        model, rest = name.rsplit("_x", 1)
        scale_text, _, kind = rest.partition("_")
        scale, kind = int(scale_text), kind or "clean"
        path = rival_file(args.weights_dir, model, scale, kind)
        if path.exists():
            unseen = None if on[name] == SLICE else args.unseen  # the images its curve is on
            sets = condition_sets(validation_images(args.data, scale, unseen)[1], kind)
            shipped[name] = (score_sets(load_weights(path)[0], sets, scale)[0], f"shipped {path.stem}")
    draw(curves, args.png, shipped, condition_histories(args.runs, args.seeds))
    print(f"wrote {args.png}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m fmen_gui.training")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train (or resume) one model and scale")
    t.add_argument("--model", choices=("fmen-s", "fmen"), default="fmen-s")
    t.add_argument("--scale", type=int, choices=(2, 3, 4), default=4)
    t.add_argument("--out", type=Path, default=None)
    t.add_argument("--schedule", default=None, help="LOSS:STEPS@PATCH:LR,... (default: the campaign recipe)")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--val-every", type=int, default=250)
    t.add_argument("--device", default="auto")
    t.add_argument(
        "--init", type=Path, default=None, help="a run checkpoint (.pt) or weights file (.safetensors)"
    )
    t.add_argument(
        "--form", choices=FORMS, default="train", help="train the over-parameterised or the deploy form"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-steps", type=int, default=0, help="stop after this many more steps (0: no limit)")
    t.add_argument(
        "--train-photos",
        action="store_true",
        help="add the training photographs (Debian's lomiri wallpapers, fetched once) to the pool",
    )

    e = sub.add_parser("export", help="write a run's best checkpoint to weights/ with its manifest entry")
    e.add_argument("--model", choices=("fmen-s", "fmen"), required=True)
    e.add_argument("--scale", type=int, choices=(2, 3, 4), required=True)
    e.add_argument("--run", type=Path, default=None)
    e.add_argument("--weights-dir", type=Path, default=Path("weights"))
    e.add_argument(
        "--only-if-better", action="store_true", help="keep the shipped file unless validation improves"
    )

    c = sub.add_parser(
        "campaign", help="train the six runs in turns until a deadline, exporting improvements"
    )
    c.add_argument("--chunk-minutes", type=float, default=40.0)
    c.add_argument("--only", default="", help="train only these runs, e.g. fmen-s_x4_photo,fmen-s_x4")
    c.add_argument(
        "--form",
        choices=FORMS,
        default="train",
        help="the form runs train in (a run in the other is set aside)",
    )
    c.add_argument(
        "--train-photos",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the training photographs to every run's pool (default; a run on the other pool "
        "is set aside and goes on from its seed)",
    )

    f = sub.add_parser(
        "photos", help="fetch the unseen validation photographs (Debian packages) into a cache"
    )
    f.add_argument(
        "--training", action="store_true", help="fetch the training photographs (other packages) instead"
    )

    from fmen_gui.training.burst import PACK, BurstSettings

    default = BurstSettings()
    bp = sub.add_parser("burst-pack", help="pack a run for a training burst on a borrowed GPU")
    bp.add_argument("--run", required=True, help="e.g. fmen-s_x4 or fmen-s_x4_photo")
    b = sub.add_parser("burst", help="(on the GPU machine) train a packed run for some minutes")
    b.add_argument("--minutes", type=float, required=True, help="all included: load, train, save")
    b.add_argument("--out", type=Path, required=True, help="where the results go ($OUT there)")
    b.add_argument("--batch", type=int, default=default.batch)
    b.add_argument("--lr", type=float, default=default.lr)
    b.add_argument("--patch", type=int, default=default.patch)
    b.add_argument("--device", default=default.device)
    for q in (bp, b):
        q.add_argument("--pack", type=Path, default=PACK)
    bi = sub.add_parser("burst-import", help="file, export and seed from what a burst brought back")
    bi.add_argument("folder", type=Path, help="the burst's returned files")

    v = sub.add_parser("curves", help="draw every run's validation curve into a PNG")
    v.add_argument("--runs", type=Path, default=Path("runs"))
    v.add_argument(
        "--seeds",
        type=Path,
        default=Path("checkpoints"),
        help="committed seeds: the runs without a folder here",
    )
    v.add_argument("--png", type=Path, default=Path("docs/training-curves.png"))
    v.add_argument("--weights-dir", type=Path, default=Path("weights"))

    tb = sub.add_parser("tables", help="the README's weights tables, from weights/manifest.json")
    tb.add_argument("--weights-dir", type=Path, default=Path("weights"))
    tb.add_argument("--write", type=Path, default=None, metavar="README", help="rewrite their block there")

    for q in (t, e):
        q.add_argument("--kind", choices=KINDS, default="clean", help="photo: degraded training inputs")
    for q in (t, e, c, v, bp, bi):
        q.add_argument(
            "--data", type=Path, default=DATA, help="T91/ and BSD200/ (the validation slice is held out)"
        )
    for q in (t, e, c, f, v, bp, bi):
        q.add_argument(
            "--unseen",
            type=Path,
            default=None,
            help="the unseen photographs that runs are chosen and judged on (default: the user cache)",
        )
    for q in (t, c):
        q.add_argument("--threads", type=int, default=0)
        q.add_argument("--until", default=None, help="stop cleanly before this local time (HH:MM)")
        q.add_argument("--hours", type=float, default=None, help="stop cleanly after this many hours")
    args = p.parse_args(argv)
    if getattr(args, "unseen", False) is None:
        from fmen_gui.training.photos import default_folder

        args.unseen = default_folder()
    try:
        commands = {
            "train": _train,
            "export": _export,
            "campaign": _campaign,
            "curves": _curves,
            "tables": _tables,
            "photos": _photos,
            "burst-pack": _burst_pack,
            "burst": _burst,
            "burst-import": _burst_import,
        }
        commands[args.cmd](args)
    except ValueError as exc:
        p.error(str(exc))
    except RuntimeError as exc:  # a photographs fetch that could not finish
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
