"""The ``fmen-upscale`` command line, end to end on real files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmen_gui.cli import run
from tests.conftest import BENCHMARK, ROOT, need, outputs_psnr


def _cli(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run([str(a) for a in args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _mean_psnr(weights: Path, dataset: str, tmp_path: Path, scale: int = 4) -> float:
    folder = need(BENCHMARK / dataset / f"x{scale}")
    inputs = sorted(folder.glob("*_LR.png"))
    out_dir = tmp_path / dataset
    code, _out, err = _cli(*inputs, "-o", out_dir, "--weights", weights, "--quiet", "--tile", "0")
    assert code == 0, err
    return outputs_psnr(inputs, out_dir, scale)


def test_official_weights_reach_the_published_psnr(njujet: Path, tmp_path: Path) -> None:
    assert _mean_psnr(njujet, "Set5", tmp_path) == pytest.approx(32.12, abs=0.01)
    assert _mean_psnr(njujet, "Set14", tmp_path) == pytest.approx(28.57, abs=0.01)


def test_ntire_release_psnr(ntire: Path, tmp_path: Path) -> None:
    assert _mean_psnr(ntire, "Set5", tmp_path) == pytest.approx(32.03, abs=0.01)


@pytest.fixture
def small_images(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for name, size in (("a.png", (9, 7)), ("b c é.jpg", (6, 11))):
        p = tmp_path / "in" / name
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_default_names_beside_input_and_no_overwrite(njujet: Path, small_images: list[Path]) -> None:
    before = [p.read_bytes() for p in small_images]
    code, _out, err = _cli(*small_images, "--weights", njujet)
    assert code == 0, err
    results = [p.with_name(f"{p.stem}_fmen-s_x4{p.suffix}") for p in small_images]
    assert all(r.exists() for r in results)
    assert Image.open(results[0]).size == (7 * 4, 9 * 4)
    assert [p.read_bytes() for p in small_images] == before
    stamp = results[0].stat().st_mtime_ns
    code, _out, err = _cli(small_images[0], "--weights", njujet)
    assert code == 1 and "already exists" in err and "Traceback" not in err
    assert results[0].stat().st_mtime_ns == stamp
    code, _out, err = _cli(small_images[0], "--weights", njujet, "--overwrite")
    assert code == 0, err


def test_one_bad_input_fails_alone(njujet: Path, small_images: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "in" / "notes.png"
    bad.write_text("not an image")
    missing = tmp_path / "missing.png"
    code, _out, err = _cli(bad, *small_images, missing, "-o", tmp_path / "out", "--weights", njujet)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert str(bad) in lines[0] and str(missing) in lines[1]
    assert len(list((tmp_path / "out").iterdir())) == 2
    assert not list((tmp_path / "out").glob(".*"))


def test_output_file_folder_recursion_and_format(
    njujet: Path, small_images: list[Path], tmp_path: Path
) -> None:
    target = tmp_path / "single.webp"
    code, _out, err = _cli(small_images[0], "-o", target, "--weights", njujet)
    assert code == 0, err
    assert Image.open(target).format == "WEBP"
    nested = tmp_path / "in" / "sub"
    nested.mkdir()
    Image.new("RGB", (5, 5), "red").save(nested / "d.bmp")
    code, _out, err = _cli(tmp_path / "in", "-o", tmp_path / "tree", "--format", "png", "--weights", njujet)
    assert code == 0, err
    assert (tmp_path / "tree" / "sub" / "d_fmen-s_x4.png").exists()
    assert (tmp_path / "tree" / "a_fmen-s_x4.png").exists()


def test_usage_errors_exit_2(njujet: Path, small_images: list[Path]) -> None:
    with pytest.raises(SystemExit) as exc:
        _cli()
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        _cli(small_images[0], "--scale", "5")
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        _cli(small_images[0], "--weights", njujet, "--scale", "2")
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        _cli(small_images[0], "--tile", "-3")
    assert exc.value.code == 2


def test_missing_weights_says_how_to_get_them(
    small_images: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setenv("FMEN_WEIGHTS_DIR", str(empty))
    code, _out, err = _cli(small_images[0], "--model", "fmen", "--scale", "3")
    assert code == 1
    assert "FMEN ×3" in err and "--weights" in err
    code, _out, err = _cli(small_images[0])
    assert code == 1 and "--fetch-official" in err


def test_bad_weights_file_is_one_line(small_images: list[Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(300))
    code, _out, err = _cli(small_images[0], "--weights", junk)
    assert code == 1 and len(err.strip().splitlines()) == 1 and str(junk) in err


def test_list_models(tmp_path: Path) -> None:
    code, out, _err = _cli("--list-models")
    assert code == 0 and "User weights folder" in out


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"<html></html>")
    env = {**os.environ, "FMEN_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmen_gui.cli",
            str(bad),
            "--weights",
            str(need(ROOT.parent / "shared" / "weights" / "official" / "fmen_s_x4_njujet.pt")),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {bad}:") and "Traceback" not in proc.stderr
