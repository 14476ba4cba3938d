"""Validation PSNR against step for every campaign run, as one PNG (for progress notes).

Drawn with Pillow alone: matplotlib is not a dependency of the app and is not worth one for a
line chart. Each run's curve is the ``history`` its ``last.pt`` (or committed seed) carries;
a dashed line marks the shipped file's score on the same held-out slice, when given.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))
SIZE, MARGIN = (900, 520), 60


def histories(root: Path) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for last in sorted(root.glob("*/last.pt")):
        state = torch.load(last, map_location="cpu", weights_only=True)
        if state.get("history"):
            out[last.parent.name] = [(int(s), float(v)) for s, v in state["history"]]
    return out


def draw(
    curves: dict[str, list[tuple[int, float]]], dest: Path, shipped: dict[str, float] | None = None
) -> None:
    shipped = shipped or {}
    points = [p for c in curves.values() for p in c]
    if not points:
        raise SystemExit("no validation history to draw")
    values = [v for _, v in points] + list(shipped.values())
    lo, hi = min(values) - 0.1, max(values) + 0.1
    last = max(s for s, _ in points)
    w, h = SIZE
    img = Image.new("RGB", SIZE, "white")
    d = ImageDraw.Draw(img)

    def xy(step: float, db: float) -> tuple[float, float]:
        return (
            MARGIN + (w - 2 * MARGIN) * step / max(1, last),
            h - MARGIN - (h - 2 * MARGIN) * (db - lo) / (hi - lo),
        )

    d.rectangle((MARGIN, MARGIN, w - MARGIN, h - MARGIN), outline="black")
    for i in range(5):
        db = lo + (hi - lo) * i / 4
        y = xy(0, db)[1]
        d.line((MARGIN - 5, y, MARGIN, y), fill="black")
        d.text((5, y - 6), f"{db:.2f}", fill="black")
        step = last * i / 4
        x = xy(step, lo)[0]
        d.text((x - 10, h - MARGIN + 8), f"{step:.0f}", fill="black")
    d.text((MARGIN, 15), "validation Y-PSNR (dB, 10 held-out BSD200 images) vs step", fill="black")
    for i, (name, curve) in enumerate(sorted(curves.items())):
        colour = COLOURS[i % len(COLOURS)]
        d.line([xy(s, v) for s, v in curve], fill=colour, width=2)
        for s, v in curve:
            x, y = xy(s, v)
            d.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        d.text(
            (w - MARGIN - 260, MARGIN + 10 + 16 * i),
            f"{name} (best {max(v for _, v in curve):.3f})",
            fill=colour,
        )
        if name in shipped:
            y = xy(0, shipped[name])[1]
            for x0 in range(MARGIN, w - MARGIN, 12):
                d.line((x0, y, x0 + 6, y), fill=colour)
            d.text((MARGIN + 5, y - 14), f"shipped {name}: {shipped[name]:.3f}", fill=colour)
    dest.parent.mkdir(parents=True, exist_ok=True)
    img.save(dest)
