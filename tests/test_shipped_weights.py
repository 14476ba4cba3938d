"""The weights in ``weights/``: each loads by default, matches its manifest, scores as recorded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmen_gui.cli import run
from fmen_gui.metrics import psnr_y
from fmen_gui.weights.files import sha256_file
from fmen_gui.weights.registry import find_weights
from tests.conftest import BENCHMARK, ROOT, need

MANIFEST = ROOT / "weights" / "manifest.json"
ENTRIES = json.loads(MANIFEST.read_text())["weights"]


def test_manifest_lists_only_files_that_exist() -> None:
    for entry in ENTRIES:
        assert (ROOT / "weights" / entry["file"]).is_file(), entry["file"]
        assert entry["file"].endswith(".safetensors")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_shipped_weights_reproduce_their_manifest(entry: dict, tmp_path: Path) -> None:
    path = ROOT / "weights" / entry["file"]
    assert sha256_file(path) == entry["sha256"]
    kind = entry.get("kind", "clean")
    found = find_weights(entry["model"], entry["scale"], kind)
    assert found.path.resolve() == path.resolve(), "not the engine's default for its model, scale and kind"

    scale = entry["scale"]
    inputs = sorted(need(BENCHMARK / "Set5" / f"x{scale}").glob("*_LR.png"))
    out_dir = tmp_path / "out"
    err = io.StringIO()
    code = run(
        [
            *map(str, inputs),
            "-o",
            str(out_dir),
            "--model",
            entry["model"],
            "--scale",
            str(scale),
            "--kind",
            kind,
            "--quiet",
        ],
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 0, err.getvalue()
    scores = []
    for lr in inputs:
        hr = np.array(Image.open(str(lr).replace("_LR", "_HR")).convert("RGB"))
        sr = np.array(Image.open(next(out_dir.glob(f"{lr.stem}_*.png"))).convert("RGB"))
        scores.append(psnr_y(sr, hr, scale))
    assert float(np.mean(scores)) == pytest.approx(entry["psnr"]["Set5"], abs=0.05)
