"""``benchmarks/gpu_check.py`` runs end to end where no GPU is lent (``--device cpu``).

The CUDA-only checks report "skip" there; everything else (the correctness comparisons, the
speed table, the GUI worker job) goes through the same code it runs on a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BENCHMARK, NJUJET, ROOT, need


def test_gpu_check_runs_on_the_cpu_paths(tmp_path: Path) -> None:
    need(NJUJET)
    need(BENCHMARK / "Set5")
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--device",
            "cpu",
            "--repeat",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["cpu fp32 tiled (64) == untiled"]["ok"] is True
    assert by_name["GUI: one job through the real worker"]["ok"] is True
    skipped = [c["name"] for c in report["checks"] if c["ok"] is None]
    assert any("CUDA memory" in n for n in skipped) and any("out-of-memory" in n for n in skipped)
    assert {r["variant"] for r in report["speed"]} == {"plain eager (reference)", "engine pass"}
    assert "| check | measured | target |" in proc.stdout


def test_gpu_check_says_clearly_when_there_is_no_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
