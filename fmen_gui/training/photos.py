"""Photographs that no network here was trained on: what export decisions are judged on.

Why a second held-out set: the shipped clean networks were trained on all 291 training
images, the held-out slice (:data:`~fmen_gui.training.data.HOLDOUT`) included, before the
slice was chosen. On the slice the shipped files score higher than on new pictures, so a
campaign run that generalises better can still lose to them there (the FMEN-S ×4 run fell
from the shipped file's 27.915 dB to 27.805 dB on the slice while it learned). The slice is
held out from every campaign run, but these photographs are fairer still: runs are chosen
and "is this better than what ships" is asked on them (where they have been fetched), and
neither the run nor the shipped file ever saw them.

The photographs are the free ones in two Debian packages (GPL-2+; their copyright files are
kept beside them), fetched with ``apt-get download`` into a cache outside git
(``python -m fmen_gui.training photos``). They are never committed and never trained on. Each
is reduced by a whole factor with a box filter (area averaging), which washes out the
originals' JPEG blocks and sensor noise, and its centre :data:`HR_SIZE` is kept: a size that
2, 3 and 4 divide, so every scale measures the same pixels.

A second, disjoint collection (:data:`TRAINING_PHOTOS`, other packages: photographs of 2018–2021
cameras under CC licences) may be added to a run's training pool (``train --train-photos``):
the 281 training images are small scans of the 1990s, and the campaign's photo runs flatten
on them. Which is used is written in the run's record and the manifest.

Hand-written because no library packages "photographs from a Debian package";
the steps are Pillow, ``dpkg-deb`` and ``apt-get``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from PIL import Image

from fmen_gui.training.data import Pair, make_pair, split
from fmen_gui.weights.registry import APP_NAME

HR_SIZE = (576, 384)  # width, height of each HR crop: divisible by 2, 3 and 4
LICENSE = "GPL-2+"
# Training photographs are box-reduced by at least 2 (their JPEG blocks and sensor noise go)
# and by more where their short side stays at least this long.
TRAIN_MIN_REDUCE = 2
TRAIN_SHORT_SIDE = 1024
_PLASMA = "usr/share/wallpapers/{}/contents/images/{}"
_LOMIRI = "usr/share/backgrounds/{}.jpg"
# Package → {short name: path inside the package}. Photographs only: the packages' renders and
# illustrations (flat colour, vector art) would say little about photographs.
SOURCES: dict[str, dict[str, str]] = {
    "mate-backgrounds": {
        name: f"usr/share/backgrounds/mate/nature/{name}.jpg"
        for name in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    },
    "plasma-workspace-wallpapers": {
        name: _PLASMA.format(name, size)
        for name, size in (
            ("BytheWater", "2560x1600.jpg"),
            ("ColdRipple", "2560x1600.jpg"),
            ("EveningGlow", "2560x1600.jpg"),
            ("FallenLeaf", "2560x1600.jpg"),
            ("Grey", "2560x1600.jpg"),
            ("Kite", "2560x1600.jpg"),
            ("OneStandsOut", "2560x1600.jpg"),
            ("Path", "2560x1600.jpg"),
            ("Volna", "5120x2880.jpg"),
            ("summer_1am", "2560x1600.jpg"),
        )
    },
}
# Photographs only (the packages' renders are left out), none of them in SOURCES' packages.
TRAIN_SOURCES: dict[str, dict[str, str]] = {
    "lomiri-wallpapers-16.04": {
        name.split("_by_")[0]: _LOMIRI.format(name)
        for name in (
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        )
    },
    "lomiri-wallpapers-20.04": {"Kleiber": _LOMIRI.format("Kleiber_by_Lukas_Baubkus")},
}
# Not here, measured (README, "Eight more did not measurably help"): eight photographs of Debian's
# lxqt-themes (usr/share/lxqt/wallpapers) moved the FMEN-S ×4 photo run by +0.002 dB over
# 1,250 steps. Debian's ukui-wallpapers and gnome-backgrounds hold only renders.
MANIFEST = "manifest.json"
Downloader = Callable[[str, Path], Path]  # (package, folder) -> the .deb it wrote there


def prepare(img: Image.Image) -> Image.Image:
    """The HR crop of one photograph: box-reduced by the largest whole factor that keeps
    :data:`HR_SIZE`, then its centre."""
    img = img.convert("RGB")
    w, h = HR_SIZE
    if img.height > img.width:  # portrait: measured the same way, turned
        img = img.transpose(Image.Transpose.ROTATE_90)
    factor = min(img.width // w, img.height // h)
    if factor < 1:
        raise ValueError(f"a {img.width}×{img.height} photograph is smaller than {w}×{h}")
    img = img.reduce(factor)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


def prepare_training(img: Image.Image) -> Image.Image:
    """A training photograph: box-reduced by :data:`TRAIN_MIN_REDUCE` or more (see
    :data:`TRAIN_SHORT_SIDE`), whole, portrait or landscape as it is."""
    img = img.convert("RGB")
    factor = max(TRAIN_MIN_REDUCE, min(img.size) // TRAIN_SHORT_SIDE)
    return img.reduce(factor)


@dataclass(frozen=True)
class Collection:
    """Photographs from Debian packages, prepared into one cache folder."""

    folder_name: str  # under the user cache
    purpose: str  # written in the folder's manifest
    sources: dict[str, dict[str, str]]  # package → {short name: path inside the package}
    licenses: dict[str, str]  # package → the licence(s) of the photographs taken from it
    prepare: Callable[[Image.Image], Image.Image]
    preparation: str  # what ``prepare`` does, for the manifest

    @staticmethod
    def file_name(package: str, name: str) -> str:
        """The cached PNG of photograph ``name`` of ``package``."""
        return f"{package.split('-')[0]}-{name}.png"

    def file_names(self) -> list[str]:
        """The cached PNGs' names, in a fixed order."""
        return [
            self.file_name(package, name) for package, members in self.sources.items() for name in members
        ]

    def default_folder(self) -> Path:
        """The user cache folder: outside the project and git."""
        return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / self.folder_name

    def complete(self, folder: Path) -> bool:
        """Whether ``folder`` holds every photograph and its manifest (a fetch that finished)."""
        return (folder / MANIFEST).is_file() and all((folder / n).is_file() for n in self.file_names())


UNSEEN_PHOTOS = Collection(
    "validation-photos",
    "unseen validation photographs for export decisions; never trained on",
    SOURCES,
    dict.fromkeys(SOURCES, LICENSE),
    prepare,
    "RGB, box-reduced by the largest whole factor keeping hr_size, centre crop",
)
TRAINING_PHOTOS = Collection(
    "training-photos",
    "training photographs (train --train-photos); disjoint from the validation photographs",
    TRAIN_SOURCES,
    {
        # From the package's copyright file, per photograph (kept beside them as COPYRIGHT-*).
        "lomiri-wallpapers-16.04": "CC-BY-4.0 (8), CC-BY-SA-4.0 (4), CC0-1.0 (1)",
        "lomiri-wallpapers-20.04": "CC-BY-SA-3.0",
    },
    prepare_training,
    f"RGB, box-reduced by {TRAIN_MIN_REDUCE}, or more where the short side stays ≥ {TRAIN_SHORT_SIDE} px",
)


def default_folder() -> Path:
    """Where the unseen photographs are cached (see :meth:`Collection.default_folder`)."""
    return UNSEEN_PHOTOS.default_folder()


def file_names() -> list[str]:
    """The unseen photographs' cached names, in a fixed order."""
    return UNSEEN_PHOTOS.file_names()


def complete(folder: Path) -> bool:
    """Whether ``folder`` holds every unseen photograph and its manifest."""
    return UNSEEN_PHOTOS.complete(folder)


def apt_download(package: str, folder: Path) -> Path:
    """``apt-get download`` of ``package`` into ``folder`` (Debian's archive; no root needed)."""
    if shutil.which("apt-get") is None:
        raise RuntimeError("apt-get is not available: the validation photographs come from Debian packages")
    done = subprocess.run(
        ["apt-get", "download", package], cwd=folder, capture_output=True, text=True, timeout=600
    )
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not debs:
        raise RuntimeError(
            f"apt-get download {package} failed: {(done.stderr or done.stdout).strip()[-300:]}"
        )
    return debs[-1]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(
    folder: Path | None = None, download: Downloader = apt_download, collection: Collection = UNSEEN_PHOTOS
) -> Path:
    """Download, extract and prepare every photograph of ``collection`` into ``folder`` (default:
    its user cache folder); return it.

    Built in a temporary folder beside it and renamed into place, so an interrupted fetch
    leaves no half set behind (:func:`complete` stays false).
    """
    folder = folder or collection.default_folder()
    if collection.complete(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=folder.parent))
    try:
        build = work / "photos"
        build.mkdir()
        packages = {}
        for package, members in collection.sources.items():
            deb = download(package, work)
            tree = work / package
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, capture_output=True)
            version = subprocess.run(
                ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
            ).stdout.strip()
            copyright_file = tree / "usr" / "share" / "doc" / package / "copyright"
            if copyright_file.is_file():
                shutil.copy(copyright_file, build / f"COPYRIGHT-{package}")
            for name, member in members.items():
                source = tree / member
                if not source.is_file():
                    raise RuntimeError(f"{package} {version} has no {member}")
                with Image.open(source) as img:
                    collection.prepare(img).save(build / collection.file_name(package, name))
            packages[package] = {
                "version": version,
                "deb_sha256": _sha256(deb),
                "files": list(members.values()),
                "license": collection.licenses[package],
            }
        manifest = {
            "purpose": collection.purpose,
            **({"hr_size": list(HR_SIZE)} if collection is UNSEEN_PHOTOS else {}),
            "preparation": collection.preparation,
            "packages": packages,
            "images": collection.file_names(),
        }
        (build / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            shutil.rmtree(folder)  # an incomplete earlier fetch
        build.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def photo_pairs(folder: Path, scale: int) -> list[Pair]:
    """The photographs as (bicubic LR, HR) pairs, made as the training pairs are."""
    if not complete(folder):
        raise FileNotFoundError(f"{folder} does not hold the validation photographs (fetch them first)")
    return [make_pair(folder / name, scale) for name in file_names()]


def training_photos(folder: Path) -> list[Path]:
    """The training photographs' paths, for a run's pool (``train --train-photos``)."""
    if not TRAINING_PHOTOS.complete(folder):
        raise FileNotFoundError(
            f"{folder} does not hold the training photographs (python -m fmen_gui.training photos --training)"
        )
    return [folder / name for name in TRAINING_PHOTOS.file_names()]


SLICE = "the validation slice"


def validation_images(data: Path, scale: int, unseen: Path | None) -> tuple[str, list[Pair]]:
    """(what they are, clean pairs) of the images runs are chosen and judged on: the unseen
    photographs where ``unseen`` holds them all, else the held-out slice of ``data``."""
    if unseen is not None and complete(unseen):
        return f"{len(file_names())} unseen photographs", photo_pairs(unseen, scale)
    return SLICE, [make_pair(p, scale) for p in split(data)[1]]
