"""Clean and photo networks on inputs as people have them: the README's "photo" table.

Builds degraded test sets from Set5/Set14 (test sets only: nothing here trains): the
benchmark's MATLAB-bicubic ``*_LR.png`` as given ("clean"), saved as JPEG at quality 95, 75
and 50 (Pillow, 4:2:0 as cameras and the web do), and with Gaussian noise of σ = 5 (of 255,
fixed seed). Each is upscaled by bicubic (Pillow), the installed clean network and the photo
network of the same model and scale, and by what ``--kind auto`` would pick for that input,
and scored by Y-PSNR against ``*_HR.png`` (crop = scale, 8-bit output). Prints a Markdown
table; ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmen_gui.engine.kinds import kind_for_file  # noqa: E402
from fmen_gui.metrics import psnr_y  # noqa: E402
from fmen_gui.training.data import benchmark_pairs  # noqa: E402
from fmen_gui.training.degrade import CONDITIONS, condition  # noqa: E402
from fmen_gui.training.trainer import evaluate  # noqa: E402
from fmen_gui.weights.loading import load_weights  # noqa: E402
from fmen_gui.weights.registry import available  # noqa: E402

BENCHMARK = ROOT.parent / "shared" / "data" / "benchmark"
SETS = ("Set5", "Set14")
NOISE_SEED = 5


def bicubic(pairs: list[tuple[np.ndarray, np.ndarray]], scale: int) -> float:
    scores = []
    for lr, hr in pairs:
        up = Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.Resampling.BICUBIC)
        scores.append(psnr_y(np.asarray(up), hr, scale))
    return float(np.mean(scores))


def auto_kinds(files: list[bytes | None], folder: Path) -> list[str]:
    """What ``--kind auto`` picks for each input (a JPEG is judged from its own bytes)."""
    kinds = []
    for i, data in enumerate(files):
        path = folder / (f"{i}.jpg" if data else f"{i}.png")
        if data:
            path.write_bytes(data)
        else:
            Image.new("RGB", (8, 8)).save(path)
        kinds.append(kind_for_file(path, "auto", photo_available=True).kind)
    return kinds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--model", nargs="+", default=None, help="models to compare (default: every one with photo weights)"
    )
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    p.add_argument(
        "--scale", nargs="+", type=int, default=None, help="scales to compare (default: every one)"
    )
    args = p.parse_args()
    photos = available("photo")
    clean = available("clean")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="fmen-quality-"))
    for (model, scale), photo_entry in sorted(photos.items()):
        if (args.model and model not in args.model) or (args.scale and scale not in args.scale):
            continue
        if (model, scale) not in clean:
            continue
        nets = {
            "clean": load_weights(clean[model, scale].path)[0],
            "photo": load_weights(photo_entry.path)[0],
        }
        for name in args.sets:
            base = benchmark_pairs(BENCHMARK / name, scale)
            for how in CONDITIONS:
                made = [condition(lr, how, NOISE_SEED + i) for i, (lr, _) in enumerate(base)]
                pairs = [(lr, hr) for (lr, _), (_, hr) in zip(made, base, strict=True)]
                scores = {k: evaluate(net, pairs, scale) for k, net in nets.items()}
                picks = auto_kinds([data for _, data in made], tmp)
                auto = float(
                    np.mean([evaluate(nets[k], [pair], scale) for k, pair in zip(picks, pairs, strict=True)])
                )
                row = {
                    "model": model,
                    "scale": scale,
                    "set": name,
                    "input": how,
                    "bicubic": round(bicubic(pairs, scale), 2),
                    "clean": round(scores["clean"], 2),
                    "photo": round(scores["photo"], 2),
                    "auto": round(auto, 2),
                    "auto_picks": sorted(set(picks)),
                }
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    if not rows:
        raise SystemExit(f"no photo weights installed for {args.model or 'any model'}: nothing to compare")
    print("| model | set | input | bicubic | clean | photo | auto (picks) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        name = f"{'FMEN-S' if r['model'] == 'fmen-s' else 'FMEN'} ×{r['scale']}"
        picks = "/".join(r["auto_picks"])
        print(
            f"| {name} | {r['set']} | {r['input']} | {r['bicubic']:.2f} | {r['clean']:.2f} | "
            f"{r['photo']:.2f} | {r['auto']:.2f} ({picks}) |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
