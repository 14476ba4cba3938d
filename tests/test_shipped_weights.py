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
from fmen_gui.training import tables
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


def test_the_readme_tables_are_the_manifests() -> None:
    readme = (ROOT / "README.md").read_text()
    assert tables.block_of(readme) == tables.tables(MANIFEST), (
        "README.md's weights tables lag weights/manifest.json: "
        "run `python -m fmen_gui.training tables --write README.md`"
    )


def test_the_tables_say_what_each_export_measured_and_dash_what_it_did_not(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    entries = [
        {
            "file": "fmen_x4.safetensors",
            "model": "fmen",
            "scale": 4,
            "psnr": {"Set5": 31.503, "Set14": 28.155},
            "training": {
                "steps": 9555,
                "best_step": 9250,
                "wall_minutes": 251.6,
                "hardware": "CPU (2 threads)",
                "amp": "fp32",
                "validation": {"psnr": 35.523, "psnr_by_condition": {"clean": 35.523}, "rival_psnr": 35.351},
            },
        },
        {
            "file": "fmen_s_x4_photo.safetensors",
            "model": "fmen-s",
            "scale": 4,
            "kind": "photo",
            "psnr": {"Set5": 30.893},
            "training": {
                "validation": {"psnr": 33.235, "psnr_by_condition": {"clean": 34.865, "jpeg75": 32.892}}
            },
        },
        {
            "file": "fmen_s_x2.safetensors",
            "model": "fmen-s",
            "scale": 2,
            "psnr": {"Set5": 37.413, "Set14": 32.981},
        },
    ]
    manifest.write_text(json.dumps({"version": 1, "weights": entries}))
    block = tables.tables(manifest)
    assert "| FMEN-S | 37.41 | — | — | 32.98 | — | — |" in block
    assert "| FMEN | — | — | 31.50 | — | — | 28.16 |" in block
    assert "| FMEN-S photo | — | — | 30.89 | — | — | — |" in block
    assert block.index("| FMEN-S |") < block.index("| FMEN |") < block.index("| FMEN-S photo |")
    assert (
        "| `fmen_x4.safetensors` | 9,555 (9,250) | 252 | CPU (2 threads), fp32 | 35.523 | 35.351 | 31.50 | 28.16 |"
        in block
    )
    assert "| 33.235 (clean 34.865, JPEG 75 32.892) | — | 30.89 | — |" in block
    assert "| `fmen_s_x2.safetensors` | — | — | — | — | — | 37.41 | 32.98 |" in block

    readme = tmp_path / "README.md"
    readme.write_text(f"# App\n\nbefore\n\n{tables.BEGIN}\nold\n{tables.END}\n\nafter\n")
    assert tables.write(readme, manifest) and not tables.write(readme, manifest)
    assert readme.read_text() == f"# App\n\nbefore\n\n{block}\n\nafter\n"
    readme.write_text("# App without the markers\n")
    with pytest.raises(ValueError, match="no generated weights tables"):
        tables.write(readme, manifest)
