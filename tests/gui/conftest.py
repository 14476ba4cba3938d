"""Fixtures for the GUI tests: offscreen Qt, isolated settings and weights, a fake engine.

The fake pipeline mimics ``fmen_gui.engine.pipeline`` (tiles, progress, cancel, on_tile) with
nearest-neighbour upscaling and a tunable delay per tile, so queue, cancel and progressive
display can be tested quickly and deterministically; the real engine is used where the
behaviour of the real network matters (tests marked by needing the official weights).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from fmen_gui.engine import jobs
from fmen_gui.errors import Cancelled

# Before anything imports Qt (nothing above does): the tests never need a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
OFFICIAL_WEIGHTS = SHARED / "weights" / "official" / "fmen_s_x4_njujet.pt"
SET5_BABY_LR = SHARED / "data" / "benchmark" / "Set5" / "x4" / "img_001_SRF_4_LR.png"


def need(path: Path) -> Path:
    """Skip with a clear reason when a file from ../shared is absent."""
    if not path.exists():
        pytest.skip(f"needs {path} (from ../shared), which is absent on this machine")
    return path


@pytest.fixture(autouse=True)
def _isolated_weights(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's installed weights or writes to their data or Pictures folder."""
    monkeypatch.setenv("FMEN_WEIGHTS_DIR", str(tmp_path_factory.mktemp("project_weights")))
    monkeypatch.setenv("FMEN_DATA_DIR", str(tmp_path_factory.mktemp("user_data")))
    # Pasted images are saved in the user's Pictures folder: never the real one from a test.
    import platformdirs

    pictures = str(tmp_path_factory.mktemp("Pictures"))
    monkeypatch.setattr(platformdirs, "user_pictures_dir", lambda: pictures)
    # A test's app never forwards its files to a developer's running window (nor to another test).
    monkeypatch.setenv("FMEN_STATE_DIR", str(tmp_path_factory.mktemp("state")))  # the saved queue
    monkeypatch.setenv("FMEN_GUI_INSTANCE", str(tmp_path_factory.mktemp("instance") / "fmen.sock"))


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "settings" / "fmen-gui.ini"


@pytest.fixture
def store(settings_path: Path):  # type: ignore[no-untyped-def]
    from fmen_gui.gui.settings import SettingsStore

    return SettingsStore.from_file(str(settings_path))


def write_png(path: Path, size: tuple[int, int] = (24, 24), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_png(folder / "a.png", seed=1)
    write_png(folder / "b.png", seed=2)
    return folder


@pytest.fixture
def real_small_image(tmp_path: Path) -> Path:
    """A 24×24 crop of a real photograph (Set5 baby), fast enough for CPU tests."""
    src = need(SET5_BABY_LR)
    dst = tmp_path / "real" / "baby24.png"
    dst.parent.mkdir(parents=True)
    Image.open(src).convert("RGB").crop((48, 40, 72, 64)).save(dst)
    return dst


@pytest.fixture
def official_weights() -> Path:
    return need(OFFICIAL_WEIGHTS)


# ---------------------------------------------------------------------------------- fake engine
FakeSettings = jobs.EngineSettings  # the real (torch-free) settings: only the network is fake


class FakeEngine:
    """Nearest-neighbour "network" with the real engine's calling conventions."""

    created: list[FakeSettings] = []  # noqa: RUF012 - shared on purpose: counts loads per test
    tile_delay = 0.0
    fail_with: Exception | None = None
    started = threading.Event()

    def __init__(self, settings: FakeSettings) -> None:
        type(self).created.append(settings)
        self.settings = settings
        self.scale = settings.scale
        self.model_key = settings.model
        self.label = f"{'FMEN-S' if settings.model == 'fmen-s' else 'FMEN'} ×{settings.scale}"
        self.device_label = "Fake CPU"

    def run(self, job, **kw):  # type: ignore[no-untyped-def]
        """The real engine's job pipeline (naming, rules, writing) around the fake network."""
        return jobs.run(self, job, **kw)

    def plan(self, data, *, pillow_format=None, tile=None, ensemble=None):  # type: ignore[no-untyped-def]
        """The real engine's pre-flight check, without memory figures (nothing to plan here)."""
        return SimpleNamespace(tile=tile, optimize=True, notes=())

    def upscale_data(
        self, data, *, tile=None, ensemble=None, progress=None, cancel=None, on_tile=None, plan=None
    ):  # type: ignore[no-untyped-def]
        if type(self).fail_with is not None:
            raise type(self).fail_with
        s = self.scale
        h, w = data.rgb.shape[:2]
        size = 8 if tile in (None, "auto", 0) else int(tile)
        boxes = [
            (y, min(h, y + size), x, min(w, x + size)) for y in range(0, h, size) for x in range(0, w, size)
        ]
        out = np.zeros((h * s, w * s, 3), dtype=data.rgb.dtype)
        type(self).started.set()
        for done, (y0, y1, x0, x1) in enumerate(boxes, 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            time.sleep(type(self).tile_delay)
            block = data.rgb[y0:y1, x0:x1].repeat(s, 0).repeat(s, 1)
            out[y0 * s : y1 * s, x0 * s : x1 * s] = block
            if on_tile:
                on_tile(out, (y0 * s, y1 * s, x0 * s, x1 * s))
            if progress:
                progress(done, len(boxes))
        alpha = None if data.alpha is None else data.alpha.repeat(s, 0).repeat(s, 1)
        return replace(data, rgb=out, alpha=alpha)


@pytest.fixture
def fake_pipeline() -> Iterator[SimpleNamespace]:
    FakeEngine.created = []
    FakeEngine.tile_delay = 0.0
    FakeEngine.fail_with = None
    FakeEngine.started = threading.Event()
    yield SimpleNamespace(
        Engine=FakeEngine,
        EngineSettings=FakeSettings,
        FakeEngine=FakeEngine,
    )


@pytest.fixture
def fake_devices() -> SimpleNamespace:
    info = SimpleNamespace
    return SimpleNamespace(
        list_devices=lambda: [
            info(key="cuda:0", label="CUDA 0: Fake RTX"),
            info(key="cpu", label="CPU (2 threads)"),
        ],
        precision_choices=lambda key: (
            ["auto", "fp16", "fp32"] if key.startswith("cuda") else ["auto", "fp32"]
        ),
    )


# ---------------------------------------------------------------------------------- windows
@pytest.fixture
def make_window(qtbot, store) -> Iterator[Callable[..., object]]:  # type: ignore[no-untyped-def]
    """Build main windows whose worker threads are always joined at the end of the test."""
    from fmen_gui.gui.main_window import MainWindow
    from fmen_gui.gui.worker import UpscaleWorker, WorkerController

    made: list[MainWindow] = []

    def make(pipeline=None, devices=None, weights: Path | None = None, settings_store=None) -> MainWindow:  # type: ignore[no-untyped-def]
        controller = WorkerController(UpscaleWorker(pipeline=pipeline, devices=devices))
        window = MainWindow(store=settings_store or store, controller=controller, weights_override=weights)
        window.confirm_close_during_job = lambda: True  # type: ignore[method-assign]
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        made.append(window)
        return window

    yield make
    for window in made:
        window.shutdown()
        assert window.controller.worker_thread.isFinished(), "the worker thread outlived its window"


@pytest.fixture
def wait_loaded(qtbot) -> Callable[..., None]:  # type: ignore[no-untyped-def]
    """``wait_loaded(window, n)``: wait until n queue items are decoded (or failed to be)."""

    def wait(window, count: int) -> None:  # type: ignore[no-untyped-def]
        qtbot.waitUntil(
            lambda: (
                len(window.model.items()) == count
                and all(i.original is not None or i.status == "failed" for i in window.model.items())
            ),
            timeout=10000,
        )

    return wait


@pytest.fixture
def make_png() -> Callable[..., Path]:
    return write_png


@pytest.fixture
def set5_baby() -> Path:
    """The 128×128 Set5 "baby" low-resolution input."""
    return need(SET5_BABY_LR)
