"""Shared fixtures: the read-only material in ../shared and isolated user folders."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OFFICIAL = SHARED / "weights" / "official"
NJUJET = OFFICIAL / "fmen_s_x4_njujet.pt"
NTIRE = OFFICIAL / "fmen_s_x4_ntire2022.pth"
BENCHMARK = SHARED / "data" / "benchmark"


def need(path: Path) -> Path:
    """Skip (with the reason) when a file from ../shared is not there."""
    if not path.exists():
        pytest.skip(f"needs {path} from ../shared, which is absent on this machine")
    return path


def outputs_psnr(inputs: list[Path], out_dir: Path, scale: int, model: str = "fmen-s") -> float:
    """Mean Y-PSNR of the CLI's default-named outputs of benchmark ``*_LR.png`` inputs."""
    import numpy as np
    from PIL import Image

    from fmen_gui.metrics import psnr_y

    scores = []
    for lr in inputs:
        hr = np.array(Image.open(str(lr).replace("_LR", "_HR")).convert("RGB"))
        sr = np.array(Image.open(out_dir / f"{lr.stem}_{model}_x{scale}.png").convert("RGB"))
        scores.append(psnr_y(sr, hr, scale))
    return float(np.mean(scores))


def install_clean_and_photo(folder: Path, model: str = "fmen-s", scale: int = 2) -> tuple[Path, Path]:
    """A weights folder with the shipped clean network and a "photo" one beside it.

    The photo file is the clean network with the final convolution's bias raised by one grey
    level (a real, loadable network whose every output differs), so a test can tell which of
    the two ran without training one.
    """
    import json
    import shutil

    import torch

    from fmen_gui.weights.loading import load_weights, save_safetensors

    folder.mkdir(parents=True, exist_ok=True)
    name = f"{model.replace('-', '_')}_x{scale}"
    clean = folder / f"{name}.safetensors"
    shutil.copy(ROOT / "weights" / clean.name, clean)
    net, _desc = load_weights(clean)
    with torch.no_grad():
        net.tail[0].bias.add_(1.0)
    photo = folder / f"{name}_photo.safetensors"
    save_safetensors(net, photo)
    entries = [
        {"file": clean.name, "model": model, "scale": scale, "sha256": ""},
        {"file": photo.name, "model": model, "scale": scale, "sha256": "", "kind": "photo"},
    ]
    (folder / "manifest.json").write_text(json.dumps({"version": 1, "weights": entries}))
    return clean, photo


@contextlib.contextmanager
def dead_and_live_temps(folder: Path, dead_stem: str, live_stem: str) -> Iterator[tuple[Path, Path]]:
    """Temp files this app names ``.STEM.png.fmen-tmp-PID-HOST-….part``: one of a process that
    has exited (a killed run), one of a process still running (a live run), in ``folder``."""
    import subprocess
    import sys

    from fmen_gui import atomicfiles

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    host = atomicfiles._host_tag()
    stale = folder / f".{dead_stem}.png.fmen-tmp-{dead.pid}-{host}-abcdefgh.part"
    live = folder / f".{live_stem}.png.fmen-tmp-{alive.pid}-{host}-ijklmnop.part"
    stale.write_bytes(b"half an image")
    live.write_bytes(b"half an image")
    try:
        yield stale, live
    finally:
        assert alive.stdin is not None
        alive.stdin.close()
        alive.wait()


def slow_enabled(config: pytest.Config) -> bool:
    """Slow tests (``-m slow``) run only when selected or with ``FMEN_RUN_SLOW=1``."""
    if os.environ.get("FMEN_RUN_SLOW") == "1":
        return True
    expr = str(config.getoption("markexpr") or "")
    return "slow" in expr and "not slow" not in expr


@pytest.fixture(autouse=True)
def _isolated_user_folders(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Never read or write the real user's data folder from a test."""
    data = tmp_path_factory.mktemp("userdata")
    monkeypatch.setenv("FMEN_DATA_DIR", str(data))
    yield


@pytest.fixture
def njujet() -> Path:
    return need(NJUJET)


@pytest.fixture
def ntire() -> Path:
    return need(NTIRE)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small training folder laid out like ``../shared/data/train`` (T91/ and BSD200/ with
    the held-out names): smooth random pictures, so that SR has something to learn."""
    import numpy as np
    from PIL import Image

    from fmen_gui.training.data import HOLDOUT

    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(1)
    names = [*HOLDOUT, *(f"T91/t{i}.png" for i in range(4)), "BSD200/extra.png"]
    for name in names:
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(small).resize((64, 48), Image.Resampling.BICUBIC).save(path)
    return root


@pytest.fixture()
def unseen(tmp_path: Path) -> Path:
    """Stand-ins for the fetched photographs (see test_photos.py for a real fetch)."""
    import numpy as np
    from PIL import Image

    from fmen_gui.training import photos

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name in photos.file_names():
        small = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
        Image.fromarray(small).resize((72, 48), Image.Resampling.BICUBIC).save(folder / name)
    (folder / photos.MANIFEST).write_text("{}")
    return folder
