"""Clean or photo network per input: the Auto rule, and the CLI's ``--kind``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fmen_gui import cli
from fmen_gui.engine.jpeg_quality import PHOTO_MAX_QUALITY, JpegQuality, input_quality, traced_quality
from fmen_gui.engine.kinds import KIND_SETTINGS, KindChoice, choose_kind, kind_for_file
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


# The benchmark originals that were JPEGs once: their luma DCT coefficients sit on a JPEG
# quantisation lattice (Set5 5 on IJG quality 75's own steps, 5 to 8, excess ≈ 0.9 at every
# frequency judged, ≤ 0 at every other step; Set14 13 and 14 on steps 3 and 4). Auto gives them
# the photo network, which is right for what they are; their bicubic-reduced LR files are clean.
ONCE_JPEG = {"Set5/img_005_SRF_4_HR.png", "Set14/img_013_SRF_4_HR.png", "Set14/img_014_SRF_4_HR.png"}


def test_auto_keeps_clean_pngs_and_fine_jpegs_on_the_clean_network(tmp_path: Path) -> None:
    need(BENCHMARK / "Set5" / "x4")
    lr = sorted(BENCHMARK.glob("Set*/x[234]/*_LR.png"))
    assert len(lr) == 3 * (5 + 14)
    for png in lr:  # every bicubic input at every scale: no false positive
        choice = kind_for_file(png, "auto", photo_available=True)
        assert choice == KindChoice("clean", "not a JPEG: clean model"), png
    for png in sorted(BENCHMARK.glob("Set*/x4/*_HR.png")):
        choice = kind_for_file(png, "auto", photo_available=True)
        once = f"{png.parent.parent.name}/{png.name}" in ONCE_JPEG
        assert choice.kind == ("photo" if once else "clean"), (png, choice)
        assert ("(read from its pixels): photo model" in choice.reason) == once
    fine = _jpeg(lr[0], tmp_path / "fine.jpg", 95)
    choice = kind_for_file(fine, "auto", photo_available=True)
    assert choice.kind == "clean" and "above 90" in choice.reason


def _textured(size: tuple[int, int] = (128, 96), seed: int = 8) -> Image.Image:
    """A smooth random picture (enough distinct, non-flat 8×8 blocks to judge), never compressed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def _decoded_jpeg(img: Image.Image, quality: int, **options: object) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **options)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def _near(traced: int | None, quality: int, within: int) -> bool:
    return traced is not None and abs(traced - quality) <= within


@pytest.mark.parametrize("quality", [30, 50, 75, PHOTO_MAX_QUALITY])
def test_a_jpegs_quality_is_read_back_from_its_decoded_pixels(quality: int) -> None:
    # Within one: next to 50, neighbouring qualities share every step of the 16 frequencies read.
    for seed in range(3):
        assert _near(traced_quality(_decoded_jpeg(_textured(seed=seed), quality)), quality, 1)
    assert _near(traced_quality(_decoded_jpeg(_textured(), quality, subsampling=0)), quality, 1)  # 4:4:4
    src = need(BENCHMARK / "Set14" / "x2")
    found = []
    for png in sorted(src.glob("*_LR.png")):  # real pictures, 4:2:0 as Pillow saves them
        with Image.open(png) as im:
            traced = traced_quality(_decoded_jpeg(im.convert("RGB"), quality))
        found.append(_near(traced, quality, 2))
    assert sum(found) >= 12, found  # of 14; the two smallest have too few textured blocks


def test_no_quality_is_read_from_pixels_that_never_were_a_jpeg() -> None:
    img = _textured((256, 192))
    a = np.asarray(img)
    assert traced_quality(a) is None
    graphics = Image.new("RGB", (320, 240), (240, 240, 240))
    draw = ImageDraw.Draw(graphics)
    rng = np.random.default_rng(1)
    for i in range(40):
        x, y = (int(v) for v in rng.integers(0, 300, 2))
        draw.rectangle((x, y, x + 40, y + 20), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw.text((x, y), f"label {i}", fill=(0, 0, 0))
    ramp = np.linspace(0, 255, 320)[None, :, None] * 0.6 + np.linspace(0, 255, 240)[:, None, None] * 0.4
    others = {
        "graphics": np.asarray(graphics),
        "gradient": (ramp * np.array([1.0, 0.7, 0.3])).astype(np.uint8),
        "noise": rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
        "flat": np.full((240, 320, 3), 200, np.uint8),
        "16-bit": a.astype(np.uint16) * 257,
        "tiny": a[:40, :40],
    }
    for name, pixels in others.items():
        assert traced_quality(pixels) is None, name
    # A JPEG's trace is lost where its grid is: cropped off it, resized, or too fine (above 95).
    jpeg = _decoded_jpeg(img, 60)
    assert traced_quality(jpeg) == 60
    assert traced_quality(jpeg[3:, 5:]) is None
    assert (
        traced_quality(np.asarray(Image.fromarray(jpeg).resize((192, 144), Image.Resampling.BICUBIC))) is None
    )
    assert traced_quality(_decoded_jpeg(img, 97)) is None


def test_auto_gives_a_png_that_was_a_jpeg_the_photo_network(tmp_path: Path) -> None:
    png = tmp_path / "screenshot.png"
    Image.fromarray(_decoded_jpeg(_textured(), 60)).save(png)
    choice = kind_for_file(png, "auto", photo_available=True)
    assert choice == KindChoice("photo", "once a JPEG quality ≈60 (read from its pixels): photo model")
    assert input_quality(png) == JpegQuality(60, from_pixels=True)
    assert input_quality(png, decode=False) is None  # header only: a PNG has no tables
    # Without a photo network nothing hangs on the answer, so the pixels are not read.
    assert kind_for_file(png, "auto", photo_available=False) == KindChoice("clean", "not a JPEG: clean model")
    assert choose_kind("auto", JpegQuality(95, from_pixels=True), True).reason == (
        "once a JPEG quality ≈95 (read from its pixels), above 90: clean model"
    )


def test_the_settings_override_auto_and_nothing_missing_is_chosen() -> None:
    assert choose_kind("clean", JpegQuality(40), True).kind == "clean"
    assert choose_kind("photo", None, True).kind == "photo"
    no_photo = choose_kind("auto", JpegQuality(40), False)
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


def test_cli_auto_gives_a_png_that_was_a_jpeg_the_photo_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = tmp_path / "bundled"
    install_clean_and_photo(bundled)
    monkeypatch.setenv(registry.ENV_WEIGHTS_DIR, str(bundled))
    png = tmp_path / "screenshot.png"
    Image.fromarray(_decoded_jpeg(_textured(), 60)).save(png)
    clean = tmp_path / "clean.png"
    _textured(seed=9).save(clean)

    def run(*extra: object) -> tuple[int, str, str]:
        return _cli(png, clean, "--scale", 2, "--format", "png", *extra)

    code, _out, err = run("-o", tmp_path / "auto")
    assert code == 0
    assert err.strip() == f"note: {png}: once a JPEG quality ≈60 (read from its pixels): photo model"
    assert run("-o", tmp_path / "photo", "--kind", "photo")[0] == 0
    assert run("-o", tmp_path / "clean", "--kind", "clean")[0] == 0
    for name, kind in (("screenshot", "photo"), ("clean", "clean")):
        out = f"{name}_fmen-s_x2.png"
        assert np.array_equal(_pixels(tmp_path / "auto" / out), _pixels(tmp_path / kind / out)), name
