"""How well a PNG's JPEG past is told from its pixels (``engine.jpeg_quality.traced_quality``).

Auto gives a lossless file whose pixels carry a JPEG's quantisation the photo network, so two
things matter: pictures never compressed must stay below the verdict's threshold (a false
positive hands a clean input the photo network), and decoded JPEGs must reach it. Measured on
the classic pictures of ``../shared`` (read-only):

- as stored: Set5/Set14 LR at ×2, ×3, ×4 (bicubic-reduced: never compressed, what a user would
  drop), T91, the Set5/Set14 HR originals and the BSD200 scans (JPEGs of quality ≈ 95 once);
- the LR files and T91 saved as JPEG at 95 … 30 by Pillow (4:2:0) and decoded.

Prints a Markdown table; ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmen_gui.engine.jpeg_quality import TRACE_MIN_EXCESS, jpeg_trace  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
QUALITIES = (95, 90, 75, 50, 30)


def _pixels(source: Path | io.BytesIO) -> np.ndarray:
    with Image.open(source) as im:
        return np.asarray(im.convert("RGB"))


def _as_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return _pixels(buf)


def _row(
    name: str, files: list[Path], traces: list[tuple[int, float] | None], quality: int | None
) -> dict[str, Any]:
    """Share judged, share over the threshold, share read within 2 of ``quality``, excess spread,
    and (as stored, ``quality`` None) the files found."""
    judged = [t for t in traces if t is not None]
    excess = np.array([t[1] for t in judged]) if judged else np.zeros(1)
    found = [t for t in judged if t[1] >= TRACE_MIN_EXCESS]
    return {
        "pictures": name,
        "n": len(traces),
        "judged": len(judged),
        "found": len(found),
        "right_within_2": None if quality is None else sum(abs(t[0] - quality) <= 2 for t in found),
        "excess_median": round(float(np.median(excess)), 3),
        "excess_max": round(float(excess.max()), 3),
        "found_files": []
        if quality is not None
        else [
            f"{f.parent.parent.name}/{f.name} ≈{t[0]} ({t[1]:.2f})"
            for f, t in zip(files, traces, strict=True)
            if t is not None and t[1] >= TRACE_MIN_EXCESS
        ],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not DATA.exists():
        print(f"jpeg_trace: needs {DATA} from ../shared", file=sys.stderr)
        return 2
    bench = DATA / "benchmark"
    clean = {
        "Set5/Set14 LR ×2–×4": sorted(bench.glob("Set*/x[234]/*_LR.png")),
        "T91": sorted((DATA / "train" / "T91").glob("*")),
    }
    once = {
        "Set5/Set14 HR": sorted(bench.glob("Set*/x4/*_HR.png")),
        "BSD200": sorted((DATA / "train" / "BSD200").glob("*.png")),
    }
    rows = []
    for name, files in {**clean, **once}.items():
        rows.append(_row(f"{name}, as stored", files, [jpeg_trace(_pixels(f)) for f in files], None))
    every_clean = [f for files in clean.values() for f in files]
    for quality in QUALITIES:
        traces = [jpeg_trace(_as_jpeg(_pixels(f), quality)) for f in every_clean]
        rows.append(_row(f"the LR files and T91 as JPEG {quality}", every_clean, traces, quality))

    print(f"| pictures | n | judged | over {TRACE_MIN_EXCESS} | quality ±2 | excess median | max |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        within = "—" if r["right_within_2"] is None else r["right_within_2"]
        print(
            f"| {r['pictures']} | {r['n']} | {r['judged']} | {r['found']} | {within} "
            f"| {r['excess_median']} | {r['excess_max']} |"
        )
    for r in rows:
        if r["found_files"]:
            print(f"{r['pictures']}: {', '.join(r['found_files'])}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
