"""Clean or photo network per input: the Auto rule, and the CLI's ``--kind``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmen_gui import cli
from fmen_gui.engine.jpeg_quality import PHOTO_MAX_QUALITY
from fmen_gui.engine.kinds import KIND_SETTINGS, choose_kind, kind_for_file
from fmen_gui.weights import registry
from tests.conftest import BENCHMARK, install_clean_and_photo, need


def _jpeg(src: Path, dest: Path, quality: int) -> Path:
    with Image.open(src) as im:
        im.convert("RGB").save(dest, quality=quality)
    return dest


@pytest.mark.parametrize("quality", [30, 50, 75, PHOTO_MAX_QUALITY])
def test_auto_gives_compressed_jpegs_the_photo_network(quality: int, tmp_path: Path) -> None:
    src = need(BENCHMARK / "Set14" / "x4")
    lr = sorted(src.glob("*_LR.png"))[0]
    choice = kind_for_file(_jpeg(lr, tmp_path / "a.jpg", quality), "auto", photo_available=True)
    assert choice.kind == "photo"
    assert f"quality ≈{quality}" in choice.reason


def test_auto_keeps_pngs_and_fine_jpegs_on_the_clean_network(tmp_path: Path) -> None:
    pngs = [
        *sorted(need(BENCHMARK / "Set5" / "x4").glob("*.png")),
        *sorted((BENCHMARK / "Set14" / "x4").glob("*.png")),
    ]
    for png in pngs:  # every benchmark PNG, LR and HR: no false positive
        assert kind_for_file(png, "auto", photo_available=True).kind == "clean", png
    fine = _jpeg(pngs[0], tmp_path / "fine.jpg", 95)
    choice = kind_for_file(fine, "auto", photo_available=True)
    assert choice.kind == "clean" and "above 90" in choice.reason


def test_the_settings_override_auto_and_nothing_missing_is_chosen() -> None:
    assert choose_kind("clean", 40, True).kind == "clean"
    assert choose_kind("photo", None, True).kind == "photo"
    no_photo = choose_kind("auto", 40, False)
    assert no_photo.kind == "clean" and "no photo model" in no_photo.reason
    assert choose_kind("photo", None, False).kind == "clean"
    with pytest.raises(ValueError, match="auto, clean, photo"):
        choose_kind("anime", None, True)
    assert KIND_SETTINGS == ("auto", "clean", "photo")


def _cli(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_cli_kind_auto_clean_and_photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = tmp_path / "bundled"
    clean_w, photo_w = install_clean_and_photo(bundled)
    monkeypatch.setenv(registry.ENV_WEIGHTS_DIR, str(bundled))
    rng = np.random.default_rng(3)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((40, 30))
    inputs = tmp_path / "in"
    inputs.mkdir()
    png, jpg = inputs / "a.png", inputs / "b.jpg"
    small.save(png)
    small.save(jpg, quality=70)

    def run(kind: str | None, weights: Path | None, dest: str) -> tuple[int, str]:
        extra = ([f"--kind={kind}"] if kind else []) + ([f"--weights={weights}"] if weights else [])
        code, _out, err = _cli(png, jpg, "--scale", 2, "-o", tmp_path / dest, "--format", "png", *extra)
        return code, err

    code, err = run(None, None, "auto")  # auto is the default
    assert code == 0, err
    assert err.strip() == f"note: {jpg}: JPEG quality ≈70: photo model"
    assert run(None, clean_w, "clean")[0] == 0
    assert run(None, photo_w, "photo")[0] == 0
    name = "{}_fmen-s_x2.png"
    assert np.array_equal(
        _pixels(tmp_path / "auto" / name.format("a")), _pixels(tmp_path / "clean" / name.format("a"))
    )
    assert np.array_equal(
        _pixels(tmp_path / "auto" / name.format("b")), _pixels(tmp_path / "photo" / name.format("b"))
    )
    assert not np.array_equal(
        _pixels(tmp_path / "clean" / name.format("b")), _pixels(tmp_path / "photo" / name.format("b"))
    )

    assert run("clean", None, "all-clean") == (0, "")
    assert np.array_equal(
        _pixels(tmp_path / "all-clean" / name.format("b")), _pixels(tmp_path / "clean" / name.format("b"))
    )
    code, err = run("photo", None, "all-photo")
    assert code == 0
    assert np.array_equal(
        _pixels(tmp_path / "all-photo" / name.format("a")), _pixels(tmp_path / "photo" / name.format("a"))
    )

    # --kind photo where none is installed, or with one explicit file: one line, nothing written.
    code, _out, err = _cli(png, "--scale", 3, "--kind", "photo", "-o", tmp_path / "none")
    assert code == 1 and err.count("\n") == 1 and "no photo weights installed for FMEN-S ×3" in err
    assert not (tmp_path / "none").exists()
    with pytest.raises(SystemExit) as info:
        _cli(png, "--kind", "photo", "--weights", clean_w, "-o", tmp_path / "both")
    assert info.value.code == 2
    code, out, _err = _cli("--list-models")
    assert code == 0 and "photo" in out
