"""The unseen validation photographs: preparation, a fetch from (locally built) Debian packages."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from fmen_gui.training import photos

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")


def _picture(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC
    )


def test_prepare_box_reduces_by_a_whole_factor_and_keeps_the_centre() -> None:
    w, h = photos.HR_SIZE
    assert w % 12 == 0 and h % 12 == 0  # every scale (2, 3, 4) measures the same pixels
    img = _picture(2560, 1600, 0)
    out = photos.prepare(img)
    assert out.size == (w, h) and out.mode == "RGB"
    reduced = img.reduce(4)  # the largest whole factor: 2560 // 576 = 1600 // 384 = 4
    left, top = (reduced.width - w) // 2, (reduced.height - h) // 2
    assert np.array_equal(np.asarray(out), np.asarray(reduced.crop((left, top, left + w, top + h))))
    assert photos.prepare(_picture(1600, 2560, 1)).size == (w, h)  # portrait: turned
    assert photos.prepare(_picture(w, h, 2).convert("L")).mode == "RGB"
    with pytest.raises(ValueError, match="smaller than"):
        photos.prepare(_picture(w - 1, h, 3))


def _fake_downloader(root: Path, calls: list[str], missing: str | None = None, fail: str | None = None):
    """Builds each package as a real .deb holding pictures at the listed paths."""

    def download(package: str, folder: Path) -> Path:
        calls.append(package)
        if package == fail:
            raise RuntimeError(f"apt-get download {package} failed: no network")
        tree = root / f"tree-{package}"
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN" / "control").write_text(
            f"Package: {package}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n"
        )
        doc = tree / "usr" / "share" / "doc" / package
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(f"Files: *\nLicense: GPL-2+\nComment: {package}\n")
        for i, member in enumerate({**photos.SOURCES, **photos.TRAIN_SOURCES}[package].values()):
            if member == missing:
                continue
            (tree / member).parent.mkdir(parents=True, exist_ok=True)
            _picture(1200, 800, i).save(tree / member, quality=90)
        deb = folder / f"{package}_1.0-1_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True, capture_output=True
        )
        return deb

    return download


@needs_dpkg
def test_fetch_prepares_every_photograph_with_its_licence(tmp_path: Path) -> None:
    calls: list[str] = []
    folder = tmp_path / "cache" / "photos"
    assert not photos.complete(folder)
    assert photos.fetch(folder, _fake_downloader(tmp_path, calls)) == folder
    assert photos.complete(folder) and calls == list(photos.SOURCES)
    manifest = json.loads((folder / photos.MANIFEST).read_text())
    assert manifest["images"] == photos.file_names() and len(photos.file_names()) == 22
    for package, entry in manifest["packages"].items():
        assert entry["version"] == "1.0-1" and entry["license"] == "GPL-2+" and len(entry["deb_sha256"]) == 64
        assert package in (folder / f"COPYRIGHT-{package}").read_text()
    pairs = photos.photo_pairs(folder, 4)
    assert len(pairs) == 22 and all(
        lr.shape == (96, 144, 3) and hr.shape == (384, 576, 3) for lr, hr in pairs
    )
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["photos"]  # no work folder left
    # A second fetch finds the set complete and downloads nothing.
    photos.fetch(folder, _fake_downloader(tmp_path / "again", calls))
    assert len(calls) == 2


@needs_dpkg
def test_a_failed_fetch_leaves_nothing_half_made(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "photos"
    with pytest.raises(RuntimeError, match="no network"):
        photos.fetch(folder, _fake_downloader(tmp_path, [], fail="plasma-workspace-wallpapers"))
    assert not folder.exists() and list((tmp_path / "cache").iterdir()) == []
    gone = photos.SOURCES["mate-backgrounds"]["Dune"]
    with pytest.raises(RuntimeError, match=f"has no {gone}"):
        photos.fetch(folder, _fake_downloader(tmp_path / "b", [], missing=gone))
    assert not photos.complete(folder)
    with pytest.raises(FileNotFoundError, match="fetch them first"):
        photos.photo_pairs(folder, 4)


def test_the_cache_lives_outside_the_project() -> None:
    root = Path(__file__).resolve().parents[1]
    assert root not in photos.default_folder().resolve().parents


def test_the_campaign_uses_the_photographs_or_says_it_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fmen_gui.training import __main__ as cli

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in photos.file_names():
        (folder / name).write_bytes(b"")
    (folder / photos.MANIFEST).write_text("{}")
    args = SimpleNamespace(unseen=folder)
    assert cli._unseen(args) == folder  # complete: used as it is, nothing fetched

    def offline(dest: Path) -> Path:
        raise RuntimeError("apt-get is not available: the validation photographs come from Debian packages")

    monkeypatch.setattr(photos, "fetch", offline)
    assert cli._unseen(SimpleNamespace(unseen=tmp_path / "none")) is None
    said = capsys.readouterr().out
    assert "apt-get is not available" in said and "judged on the validation slice" in said


def test_training_photographs_are_reduced_whole_and_never_the_validation_ones() -> None:
    out = photos.prepare_training(_picture(4352, 2448, 0))
    assert out.size == (2176, 1224) and out.mode == "RGB"  # 2448 // 1024 = 2
    assert photos.prepare_training(_picture(3168, 4224, 1)).size == (1056, 1408)  # by 3, portrait kept
    assert photos.prepare_training(_picture(1366, 1074, 2)).size == (683, 537)  # by 2 at least
    train, unseen = photos.TRAINING_PHOTOS, photos.UNSEEN_PHOTOS
    assert not set(train.sources) & set(unseen.sources)
    assert not set(train.file_names()) & set(unseen.file_names()) and len(train.file_names()) == 14
    assert set(train.licenses) == set(train.sources) and train.folder_name != unseen.folder_name


@needs_dpkg
def test_the_training_photographs_are_fetched_into_their_own_folder(tmp_path: Path) -> None:
    calls: list[str] = []
    folder = tmp_path / "cache" / "training"
    download = _fake_downloader(tmp_path, calls)
    assert photos.fetch(folder, download, photos.TRAINING_PHOTOS) == folder
    assert calls == list(photos.TRAIN_SOURCES) and photos.TRAINING_PHOTOS.complete(folder)
    assert not photos.complete(folder)  # not the validation set
    manifest = json.loads((folder / photos.MANIFEST).read_text())
    assert manifest["images"] == photos.TRAINING_PHOTOS.file_names() and "hr_size" not in manifest
    assert manifest["packages"]["lomiri-wallpapers-16.04"]["license"].startswith("CC-BY-4.0")
    paths = photos.training_photos(folder)
    assert [p.name for p in paths] == manifest["images"]
    with Image.open(paths[0]) as img:
        assert img.size == (600, 400)  # the 1200×800 stand-ins, reduced by 2
