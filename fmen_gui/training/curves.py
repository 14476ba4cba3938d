"""Validation PSNR against step for every campaign run, as one PNG (for progress notes).

Drawn with Pillow alone: matplotlib is not a dependency of the app and is not worth one for a
line chart. Each run's curve is the ``history`` its ``last.pt`` (else its committed seed) carries.
One panel per run, each with its own dB range (a clean run near 28 dB and a photo run near
26.7 dB on one axis would flatten both): its mean validation score with the shipped file's
score on the same images as a dashed line, when given. A run validated under several
conditions (the photo runs: clean, JPEG 75/50, noise) gets a second panel with each
condition's change since its first validation, which shows what the run trades for what.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from fmen_gui.training.photos import SLICE

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))
WIDTH, PANEL_HEIGHT, MARGIN = 900, 260, 60
Curve = list[tuple[int, float]]


def _load(root: Path, seeds: Path | None = None) -> dict[str, dict]:
    """Each run's state: its folder's ``last.pt``, else its committed seed under ``seeds``.

    Why the seeds: on a fresh clone only the runs trained there have folders, and the curves
    of the others (which the seeds carry, see ``campaign.save_seed``) would drop out.
    """
    found = [(last.parent.name, last) for last in sorted(root.glob("*/last.pt"))]
    if seeds is not None:
        have = {name for name, _ in found}
        found += [(seed.stem, seed) for seed in sorted(seeds.glob("*.pt")) if seed.stem not in have]
    states = {}
    for name, path in sorted(found):
        if "." in name:  # a run set aside (campaign.retire_unresumable), not a run
            continue
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("history"):
            states[name] = state
    return states


def histories(root: Path, seeds: Path | None = None) -> dict[str, Curve]:
    """Each run's (step, mean validation dB)."""
    return {name: [(int(s), float(v)) for s, v in st["history"]] for name, st in _load(root, seeds).items()}


def validated_on(root: Path, seeds: Path | None = None) -> dict[str, str]:
    """Which images each run's history was measured on (see ``photos.validation_images``)."""
    return {name: str(st.get("val_on", SLICE)) for name, st in _load(root, seeds).items()}


def condition_histories(root: Path, seeds: Path | None = None) -> dict[str, dict[str, Curve]]:
    """Each run's per-condition curves, for the runs validated under more than one condition."""
    out: dict[str, dict[str, Curve]] = {}
    for name, state in _load(root, seeds).items():
        by: dict[str, Curve] = {}
        for step, values in state.get("history_by", []):
            for cond, v in values.items():
                by.setdefault(cond, []).append((int(step), float(v)))
        if len(by) > 1:
            out[name] = by
    return out


def _panel(
    d: ImageDraw.ImageDraw,
    top: int,
    title: str,
    series: dict[str, Curve],
    dashed: dict[str, tuple[float, str]],
    last: int,
    signed: bool = False,
) -> None:
    """One chart in the band ``top``..``top + PANEL_HEIGHT``: a line per series, shared steps;
    ``dashed`` marks a reference level (and its words) for a series."""
    values = [v for c in series.values() for _, v in c] + [v for v, _ in dashed.values()]
    lo, hi = min(values) - 0.05, max(values) + 0.05
    left, right, y0, y1 = MARGIN, WIDTH - MARGIN, top + 30, top + PANEL_HEIGHT - 30

    def xy(step: float, db: float) -> tuple[float, float]:
        return left + (right - left) * step / max(1, last), y1 - (y1 - y0) * (db - lo) / (hi - lo)

    d.text((left, top + 10), title, fill="black")
    d.rectangle((left, y0, right, y1), outline="black")
    for i in range(5):
        db = lo + (hi - lo) * i / 4
        y = xy(0, db)[1]
        d.line((left - 5, y, left, y), fill="black")
        d.text((5, y - 6), f"{db:+.2f}" if signed else f"{db:.2f}", fill="black")
        x = xy(last * i / 4, lo)[0]
        d.text((x - 10, y1 + 6), f"{last * i / 4:.0f}", fill="black")
    for i, (label, curve) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        if len(curve) > 1:
            d.line([xy(s, v) for s, v in curve], fill=colour, width=2)
        for s, v in curve:
            x, y = xy(s, v)
            d.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        _legend(d, (right - 250, y0 + 6 + 16 * i), label, colour)
        if label in dashed:
            level, words = dashed[label]
            y = xy(0, level)[1]
            for x0 in range(left, right, 12):
                d.line((x0, y, x0 + 6, y), fill=colour)
            _legend(d, (left + 5, y - 16), f"{words}: {level:.3f}", colour)


def _legend(d: ImageDraw.ImageDraw, at: tuple[float, float], text: str, colour: tuple[int, int, int]) -> None:
    """Words on a white box: legends sit inside the plot, where curves would cross them."""
    box = d.textbbox(at, text)
    d.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill="white")
    d.text(at, text, fill=colour)


def draw(
    curves: dict[str, Curve],
    dest: Path,
    shipped: dict[str, tuple[float, str]] | None = None,
    by_condition: dict[str, dict[str, Curve]] | None = None,
) -> None:
    """``shipped``: per run, the score of what ships on the same images, and what that is."""
    shipped, by_condition = shipped or {}, by_condition or {}
    if not any(curves.values()):
        raise SystemExit("no validation history to draw")
    last = max(s for c in curves.values() for s, _ in c)
    panels: list[tuple[str, dict[str, Curve], dict[str, tuple[float, str]], bool]] = []
    for name, curve in sorted(curves.items()):
        label = f"{name} (best {max(v for _, v in curve):.3f})"
        panels.append(
            (
                f"{name}: validation Y-PSNR (dB, on images it never trains on; mean of its conditions) vs  step",
                {label: curve},
                {label: shipped[name]} if name in shipped else {},
                False,
            )
        )
        if name in by_condition:
            gains = {
                f"{cond} ({c[-1][1] - c[0][1]:+.3f} dB)": [(s, v - c[0][1]) for s, v in c]
                for cond, c in by_condition[name].items()
            }
            panels.append((f"{name}: change per condition since its first validation (dB)", gains, {}, True))
    img = Image.new("RGB", (WIDTH, PANEL_HEIGHT * len(panels)), "white")
    d = ImageDraw.Draw(img)
    for i, (title, series, dashed, signed) in enumerate(panels):
        _panel(d, i * PANEL_HEIGHT, title, series, dashed, last, signed)
    dest.parent.mkdir(parents=True, exist_ok=True)
    img.save(dest)
