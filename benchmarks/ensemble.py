"""The "best quality" mode's gain and cost per shipped model and scale (README table).

For every file in ``weights/``: Set5 and Set14 Y-PSNR (crop = scale, 8-bit output) with and
without the geometric self-ensemble, and the ensemble's time as a multiple of the plain pass,
both measured in this process on the same images (the machine is shared: ratios, not seconds).
Prints a Markdown table; ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmen_gui.engine.pipeline import Upscaler  # noqa: E402
from fmen_gui.metrics import psnr_y  # noqa: E402
from fmen_gui.weights.loading import load_weights  # noqa: E402
from fmen_gui.weights.registry import read_manifest  # noqa: E402

BENCHMARK = ROOT.parent / "shared" / "data" / "benchmark"


def pairs(name: str, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for lr in sorted((BENCHMARK / name / f"x{scale}").glob("*_LR.png")):
        hr = lr.with_name(lr.name.replace("_LR", "_HR"))
        out.append((np.asarray(Image.open(lr).convert("RGB")), np.asarray(Image.open(hr).convert("RGB"))))
    return out


def measure(
    up: Upscaler, data: list[tuple[np.ndarray, np.ndarray]], scale: int, ensemble: bool
) -> tuple[float, float]:
    start = time.perf_counter()
    scores = [psnr_y(up.upscale_rgb(lr, tile="auto", ensemble=ensemble), hr, scale) for lr, hr in data]
    return float(np.mean(scores)), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    p.add_argument("--only", help="these weights files only, e.g. fmen_x4.safetensors,fmen_s_x4.safetensors")
    args = p.parse_args(argv)
    if not BENCHMARK.exists():
        print(f"ensemble: needs {BENCHMARK} from ../shared", file=sys.stderr)
        return 2
    only = set(args.only.split(",")) if args.only else None
    entries = [e for e in read_manifest(ROOT / "weights") if only is None or e["file"] in only]
    if only is not None and len(entries) != len(only):
        print(
            f"ensemble: not in the manifest: {', '.join(sorted(only - {e['file'] for e in entries}))}",
            file=sys.stderr,
        )
        return 2
    rows = []
    for entry in sorted(entries, key=lambda e: (e["model"] != "fmen-s", e["scale"], e.get("kind", "clean"))):
        model, desc = load_weights(ROOT / "weights" / entry["file"])
        up = Upscaler(model, desc, torch.device("cpu"), torch.float32)
        row: dict = {"model": entry["model"], "scale": entry["scale"], "kind": entry.get("kind", "clean")}
        plain_time = ens_time = 0.0
        for name in ("Set5", "Set14"):
            data = pairs(name, entry["scale"])
            plain, t0 = measure(up, data, entry["scale"], False)
            best, t1 = measure(up, data, entry["scale"], True)
            row[name] = (round(plain, 3), round(best, 3))
            plain_time, ens_time = plain_time + t0, ens_time + t1
        row["time_x"] = round(ens_time / plain_time, 2)
        rows.append(row)
        print(row, flush=True)
    print("\n| model | Set5 | Set5 ensemble | Set14 | Set14 ensemble | time × plain |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        name = f"{'FMEN-S' if r['model'] == 'fmen-s' else 'FMEN'} ×{r['scale']}" + (
            "" if r["kind"] == "clean" else f" {r['kind']}"
        )
        (a, b), (c, d) = r["Set5"], r["Set14"]
        print(
            f"| {name} | {a:.2f} | {b:.2f} (+{b - a:.2f}) | {c:.2f} | {d:.2f} (+{d - c:.2f}) | {r['time_x']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
