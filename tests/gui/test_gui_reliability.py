"""Nothing lost, nothing crashes: the desktop app against bad inputs, write faults and a soak.

The GUI half of docs/reliability.md. Everything goes through the real main window, its real
worker thread and the real :class:`Engine`, but with a tiny FMEN-family ×2 network made here,
so a job on a few pixels takes milliseconds. The bad inputs are the same as the command line's
(the generators come from tests/test_reliability_cli.py). A bad input is either turned away at
drop time with one status-bar line, or its queue item fails with a one-line reason; the other
items still finish. No dialog pops up, nothing is logged as an error, no input changes and no
temporary file is left behind.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QMimeData, QObject, QPointF, Qt, QUrl, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from fmen_gui import atomicfiles
from fmen_gui.arch.fmen import FMEN, FMENConfig
from fmen_gui.engine import images
from fmen_gui.engine.memory import rss_bytes
from fmen_gui.engine.pipeline import Engine
from fmen_gui.gui.app import ErrorReporter
from fmen_gui.gui.jobs import JobOutcome, JobSpec, next_job_id
from fmen_gui.gui.queue import CANCELLED, DONE, FAILED, LOADING
from fmen_gui.gui.worker import UpscaleWorker, WorkerController
from fmen_gui.weights.loading import save_safetensors
from tests.conftest import dead_and_live_temps
from tests.test_reliability_cli import (
    deny_reading,
    exif_orientation,
    leftovers,
    png16_rgb,
    png_by_hand,
    png_header,
    snapshot,
)

SUFFIX = "_fmen-s_x2"  # the tiny file is a custom ×2 FMEN-family network, named after --model
SOAK_JOBS = 300
SOAK_WARMUP = 30
SOAK_TIME_LIMIT_S = 120.0
SOAK_RSS_LIMIT = 50 * 2**20


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny images run fastest on one thread, above all on a busy machine; put it back after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_x2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = FMEN(FMENConfig(channels=8, mid_channels=6, down_blocks=1, up_blocks=(1, 1), scale=2))
    path = tmp_path_factory.mktemp("tiny") / "tiny_x2.safetensors"
    save_safetensors(model, path)
    return path


def noise(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


def save_noise(path: Path, height: int = 5, width: int = 6, seed: int = 0, **params: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise(np.random.default_rng(seed), height, width)).save(path, **params)
    return path


# --------------------------------------------------------------------------------------------
# Watching the window: dialogs, the error reporter, the log and the status bar


@dataclass
class Watch:
    dialogs: list[str]
    messages: list[str]
    reporter: ErrorReporter
    caplog: pytest.LogCaptureFixture

    def errors_logged(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    def assert_quiet(self) -> None:
        """No dialog, no exception escaped to the reporter, no traceback anywhere."""
        assert self.dialogs == [], self.dialogs
        assert self.reporter.count == 0
        assert QApplication.activeModalWidget() is None
        assert self.errors_logged() == []
        assert not any("Traceback" in m for m in self.messages)


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Watch]:
    """Any message box counts as a failure (and returns at once instead of blocking)."""
    dialogs: list[str] = []

    def popped(name: str) -> Callable[..., object]:
        def fake(*args: object, **kwargs: object) -> object:
            dialogs.append(f"{name}{args[1:]}")
            return QMessageBox.StandardButton.Ok

        return fake

    for name in ("warning", "critical", "information", "question", "about", "exec"):
        monkeypatch.setattr(QMessageBox, name, popped(name))
    caplog.set_level(logging.INFO)
    reporter = ErrorReporter(show_dialog=False)
    reporter.install()
    try:
        yield Watch(dialogs, [], reporter, caplog)
    finally:
        reporter.uninstall()


@pytest.fixture
def window_for(make_window, tiny_x2: Path, watch: Watch):  # type: ignore[no-untyped-def]
    """``window_for(out_dir)``: a real window on the tiny weights, writing PNGs to ``out_dir``."""

    def make(out: Path, tile: int = 0):  # type: ignore[no-untyped-def]
        window = make_window(weights=tiny_x2)
        window.panel.folder_edit.setText(str(out))
        panel = window.panel
        panel.format_combo.setCurrentIndex(panel.format_combo.findData("png"))  # not "same as input"
        window.panel.tile_spin.setValue(tile)
        window.statusBar().messageChanged.connect(lambda m: m and watch.messages.append(m))
        return window

    return make


def drop(window, paths: list[Path]) -> None:  # type: ignore[no-untyped-def]
    """A real drag and drop of local files: enter, then drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    rest = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(pos.toPoint(), *rest)  # Qt 6: an integer point here, a float one below
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(pos, *rest))


def wait_read(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: all(i.status != LOADING for i in window.model.items()), timeout=30000)


def run_all(qtbot, window, timeout: int = 60000) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.idle, timeout=timeout):
        window.start()


def by_name(window) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {i.name: i for i in window.model.items()}


def assert_one_line_failure(window, item, reason: str, watch: Watch) -> None:  # type: ignore[no-untyped-def]
    """The item says why in one line; its tooltip and a status-bar line name the file."""
    assert item.status == FAILED, (item.name, item.status, item.message)
    assert reason in item.message and "\n" not in item.message, item.message
    tip = window.model.data(window.model.index(window.model.row_of(item.key)), Qt.ItemDataRole.ToolTipRole)
    assert tip == f"{item.path}\n{item.message}"
    assert f"{item.name}: {item.message}" in watch.messages


# --------------------------------------------------------------------------------------------
# Every bad (and odd but valid) input, in one dropped batch


@dataclass(frozen=True)
class Ok:
    """A correct output in the output folder: name, (width, height), Pillow mode."""

    name: str
    size: tuple[int, int]
    mode: str = "RGB"
    check: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class Fails:
    """The queue item fails with a one-line reason containing this; nothing is written."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """Never queued: one status-bar line at drop time names the file and says why."""

    reason: str


def _check_16bit_rgb(out: Path) -> None:
    assert png_header(out.read_bytes())[2:] == (16, 2)


def _check_16bit_gray(out: Path) -> None:
    assert png_header(out.read_bytes())[2:] == (16, 0)


def _check_palette_alpha(out: Path) -> None:
    alpha = np.array(Image.open(out))[..., 3]
    # the left two source columns were the transparent index, the right three opaque
    assert alpha[:, :2].max() == 0 and alpha[:, -4:].min() == 255


def _check_la(out: Path) -> None:
    assert np.all(np.array(Image.open(out))[..., 1] == 128)


def _check_first_frame(out: Path) -> None:
    # The tiny network is untrained, so compare with the results of its two frames as stills.
    frame = np.array(Image.open(out))
    assert np.array_equal(frame, np.array(Image.open(out.with_name(f"red{SUFFIX}.png"))))
    assert not np.array_equal(frame, np.array(Image.open(out.with_name(f"blue{SUFFIX}.png"))))


def _check_upright(out: Path) -> None:
    assert Image.open(out).getexif().get(0x0112, 1) == 1  # pixels turned, tag reset


def _build_batch(src: Path, out: Path) -> tuple[list[Path], dict[str, Ok | Fails | Refused]]:
    """Write every input into ``src``; return what to drop and what must happen to each name."""
    rng = np.random.default_rng(7)
    cases: dict[str, Ok | Fails | Refused] = {}

    def ok(name: str, size: tuple[int, int], mode: str = "RGB", check: Callable | None = None) -> None:
        stem = name.rsplit(".", 1)[0]  # the window's output format is PNG for every input
        cases[name] = Ok(f"{stem}{SUFFIX}.png", (size[0] * 2, size[1] * 2), mode, check)

    save_noise(src / "good a.png", seed=1)
    ok("good a.png", (6, 5))
    save_noise(src / "good-b.jpg", seed=2, quality=95)
    ok("good-b.jpg", (6, 5))
    save_noise(src / "one.png", 1, 1)
    ok("one.png", (1, 1))
    save_noise(src / "two by three.png", 3, 2)
    ok("two by three.png", (2, 3))
    (src / "deep16.png").write_bytes(png16_rgb(rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)))
    ok("deep16.png", (6, 5), check=_check_16bit_rgb)
    Image.fromarray(rng.integers(0, 65536, (5, 6), dtype=np.uint16)).save(src / "gray16.png")
    ok("gray16.png", (6, 5), mode="I;16", check=_check_16bit_gray)
    Image.new("CMYK", (6, 5), (10, 200, 30, 40)).save(src / "cmyk.jpg")
    ok("cmyk.jpg", (6, 5))
    index = np.zeros((7, 5), np.uint8)
    index[:, 2:] = 1
    palette = Image.frombytes("P", (5, 7), index.tobytes())
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.save(src / "palette alpha.png", transparency=0)
    ok("palette alpha.png", (5, 7), mode="RGBA", check=_check_palette_alpha)
    gray_alpha = np.dstack([noise(rng, 5, 6, 1)[..., 0], np.full((5, 6), 128, np.uint8)])
    Image.fromarray(gray_alpha, "LA").save(src / "la.png")
    ok("la.png", (6, 5), mode="LA", check=_check_la)
    frames = [Image.new("RGB", (6, 5), colour) for colour in ("red", "blue")]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    ok("anim.gif", (6, 5), check=_check_first_frame)
    for frame, colour in zip(frames, ("red", "blue"), strict=True):
        frame.save(src / f"{colour}.png")
        ok(f"{colour}.png", (6, 5))
    save_noise(src / "rotated.jpg", 7, 5, exif=exif_orientation(6))  # stored 5 wide, 7 high
    ok("rotated.jpg", (7, 5), check=_check_upright)  # upright: 7 wide, 5 high
    save_noise(src / "holiday photo é 日本.png", seed=3)
    ok("holiday photo é 日本.png", (6, 5))
    save_noise(src / "folder.png" / "inner.png", seed=4)  # a folder where a file is expected
    ok("inner.png", (6, 5))
    (src / "empty folder.jpg").mkdir()  # scanned like any folder: nothing to add, no complaint
    # A folder squatting on an output's name: the GUI never overwrites, it numbers the name.
    save_noise(src / "blocked.png", seed=5)
    (out / f"blocked{SUFFIX}.png").mkdir(parents=True)
    cases["blocked.png"] = Ok(f"blocked{SUFFIX} (2).png", (12, 10))

    (src / "zero.png").write_bytes(b"")
    cases["zero.png"] = Fails("empty file")
    whole = save_noise(src / "whole.png", 24, 24).read_bytes()
    (src / "whole.png").unlink()
    (src / "cut.png").write_bytes(whole[: len(whole) // 2])
    cases["cut.png"] = Fails("truncated or corrupt")
    whole = save_noise(src / "whole.jpg", 24, 24, quality=90).read_bytes()
    (src / "whole.jpg").unlink()
    (src / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    cases["cut.jpg"] = Fails("truncated or corrupt")
    (src / "notes.png").write_text("shopping list: milk, eggs\n")
    cases["notes.png"] = Fails("not a supported image")
    (src / "page.jpg").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>\n")
    cases["page.jpg"] = Fails("not a supported image")
    (src / "bomb.png").write_bytes(png_by_hand(40000, 40000, 8, 2))
    cases["bomb.png"] = Fails("image is 40000×40000 (1600 MP), over the 200 MP limit")
    save_noise(src / "locked.png")
    cases["locked.png"] = Fails("permission denied")
    cases["missing.png"] = Refused("Not found: missing.png")  # dropped, then gone
    (src / "readme.txt").write_text("not an image")
    cases["readme.txt"] = Refused("Not a supported image: readme.txt")

    dropped = [src / name for name in cases if name != "inner.png"]
    dropped[dropped.index(src / "blocked.png") : dropped.index(src / "blocked.png")] = [
        src / "folder.png",
        src / "empty folder.jpg",
    ]
    return dropped, cases


def test_every_bad_input_in_one_dropped_batch(
    qtbot, window_for, watch: Watch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    dropped, cases = _build_batch(src, out)
    before = snapshot(src)
    deny_reading(monkeypatch, src / "locked.png")  # chmod 000 where that bites, else refused
    window = window_for(out)

    drop(window, dropped)
    wait_read(qtbot, window)
    summary = next(m for m in watch.messages if m.startswith("Added "))
    queued = [n for n, c in cases.items() if not isinstance(c, Refused)]
    assert summary.startswith(f"Added {len(queued)} images. ") and "\n" not in summary
    for case in cases.values():
        if isinstance(case, Refused):
            assert case.reason in summary, summary
    assert sorted(by_name(window)) == sorted(queued)
    run_all(qtbot, window)

    items = by_name(window)
    for name, case in cases.items():
        if isinstance(case, Fails):
            assert_one_line_failure(window, items[name], case.reason, watch)
            assert not items[name].results
        elif isinstance(case, Ok):
            item = items[name]
            assert item.status == DONE, (name, item.message)
            result = item.latest_result()
            assert result.path == out / case.name and result.size == case.size, (name, result)
            with Image.open(result.path) as im:
                assert (im.size, im.mode, im.format) == (case.size, case.mode, "PNG"), name
            if case.check is not None:
                case.check(result.path)
    watch.assert_quiet()
    assert window.isVisible() and not window.is_busy()
    assert snapshot(src) == before  # same names, same bytes: nothing added, nothing changed
    assert leftovers(src) == [] and leftovers(out) == []
    written = {c.name for c in cases.values() if isinstance(c, Ok)} | {f"blocked{SUFFIX}.png"}
    assert {p.name for p in out.iterdir()} == written
    assert list((out / f"blocked{SUFFIX}.png").iterdir()) == []  # the squatting folder is untouched


# --------------------------------------------------------------------------------------------
# Write faults, a taken name, cancel at any tile and a crash inside the worker


def _two_inputs(folder: Path) -> list[Path]:
    return [save_noise(folder / f"{name}.png", seed=seed) for seed, name in enumerate("ab")]


def _raise_once(
    monkeypatch: pytest.MonkeyPatch, target: object, name: str, error: OSError, when: Callable[..., bool]
) -> None:
    """Replace ``target.name`` so its first matching call fails with ``error``."""
    real = getattr(target, name)
    armed = [True]

    def maybe_fail(*args: object, **kwargs: object) -> object:
        if armed[0] and when(*args, **kwargs):
            armed[0] = False
            if name == "_encode":
                args[0].write(b"\x89PNG\r\n\x1a\n half of an image")  # type: ignore[attr-defined]
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, maybe_fail)


@pytest.mark.parametrize("fault", ["read-only", "disk-full-encoding", "disk-full-link"])
def test_write_faults_fail_their_item_only(
    qtbot, window_for, watch: Watch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:  # type: ignore[no-untyped-def]
    src, out = tmp_path / "in", tmp_path / "out"
    a, b = _two_inputs(src)
    before = snapshot(src)
    if fault == "read-only":  # as root chmod does not bite: refuse the temp file as the kernel would
        real_mkstemp = atomicfiles.tempfile.mkstemp

        def read_only(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:
            if dir is not None and Path(dir) == out:  # type: ignore[arg-type]
                raise PermissionError(errno.EACCES, "Permission denied")
            return real_mkstemp(*args, dir=dir, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(atomicfiles.tempfile, "mkstemp", read_only)
        reason = "permission denied (the output folder is read-only or not writable)"
    else:
        full = OSError(errno.ENOSPC, "No space left on device")
        if fault == "disk-full-encoding":
            _raise_once(monkeypatch, images, "_encode", full, lambda *a, **k: True)
        else:
            _raise_once(monkeypatch, os, "link", full, lambda s, d: Path(d).parent == out)
        reason = "no space left on device"
    window = window_for(out)
    window.add_paths([a, b])
    wait_read(qtbot, window)
    run_all(qtbot, window)

    first, second = window.model.items()
    assert_one_line_failure(window, first, reason, watch)
    assert leftovers(out) == [] and leftovers(src) == []
    if fault == "read-only":
        assert_one_line_failure(window, second, reason, watch)
        assert list(out.iterdir()) == []
    else:  # space is back for the next item, and for the failed one when it is run again
        assert second.status == DONE and (out / f"b{SUFFIX}.png").exists()
        assert not (out / f"a{SUFFIX}.png").exists()
        with qtbot.waitSignal(window.idle, timeout=60000):
            window.rerun_items([first.key])
        assert first.status == DONE
        assert Image.open(out / f"a{SUFFIX}.png").size == (12, 10)
    watch.assert_quiet()
    assert snapshot(src) == before


def test_a_taken_output_name_gets_a_numbered_name(qtbot, window_for, watch: Watch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, out = tmp_path / "in", tmp_path / "out"
    a, _b = _two_inputs(src)
    out.mkdir()
    taken = out / f"a{SUFFIX}.png"
    taken.write_bytes(b"precious earlier result")
    window = window_for(out)
    window.add_paths([a])
    wait_read(qtbot, window)
    run_all(qtbot, window)
    item = window.model.items()[0]
    assert item.status == DONE and item.latest_result().path == out / f"a{SUFFIX} (2).png"
    with qtbot.waitSignal(window.idle, timeout=60000):
        window.rerun_items([item.key])
    assert item.latest_result().path == out / f"a{SUFFIX} (3).png"
    assert taken.read_bytes() == b"precious earlier result"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [taken.name, f"a{SUFFIX} (2).png", f"a{SUFFIX} (3).png"]
    )
    assert leftovers(out) == []
    watch.assert_quiet()


def test_a_name_taken_during_the_job_gets_the_next_number(
    qtbot, window_for, watch: Watch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The numbered-name check happens before the job; the final step re-checks atomically."""
    src, out = tmp_path / "in", tmp_path / "out"
    a, _b = _two_inputs(src)
    intruder = out / f"a{SUFFIX}.png"
    real = images._encode

    def encode(fh: object, *args: object) -> None:
        real(fh, *args)
        if not intruder.exists():  # another program saves under the same name meanwhile
            intruder.write_bytes(b"another program's picture")

    monkeypatch.setattr(images, "_encode", encode)
    window = window_for(out)
    window.add_paths([a])
    wait_read(qtbot, window)
    run_all(qtbot, window)
    item = window.model.items()[0]
    assert item.status == DONE, item.message
    assert item.latest_result().path == out / f"a{SUFFIX} (2).png"
    assert Image.open(out / f"a{SUFFIX} (2).png").size == (12, 10)
    assert intruder.read_bytes() == b"another program's picture"
    assert leftovers(out) == []
    watch.assert_quiet()


@pytest.mark.skipif(os.name != "posix", reason="the sweep judges PIDs on POSIX only")
def test_worker_sweeps_temp_files_of_killed_runs_only(
    qtbot, window_for, watch: Watch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A crashed run left a hidden .part beside the input; the next run removes it, and only it."""

    src, out = tmp_path / "in", tmp_path / "out"
    a, _b = _two_inputs(src)
    out.mkdir()
    other = out / ".a.png.unrelated.part"
    other.write_bytes(b"half an image")
    with dead_and_live_temps(out, f"a{SUFFIX}", f"a{SUFFIX}") as (stale, live):
        window = window_for(out)
        window.add_paths([a])
        wait_read(qtbot, window)
        run_all(qtbot, window)
        assert window.model.items()[0].status == DONE
        assert not stale.exists() and live.exists() and other.exists()
        stale.write_bytes(b"another leftover")  # as if a run had been killed since
        UpscaleWorker().sweep([str(out)])  # the start-up sweep (a new session)
        assert not stale.exists()
        # What the app sweeps at start: weights folder, output folder, folders of named files.
        from fmen_gui.gui.app import startup_sweep_folders
        from fmen_gui.weights.registry import user_weights_dir

        assert startup_sweep_folders(str(out), [a]) == [user_weights_dir(), out, a.parent]
        assert startup_sweep_folders("", []) == [user_weights_dir()]
        assert live.exists() and other.exists()
    watch.assert_quiet()


CANCEL_AT = (0, 1, 5, 9)  # of 9 tiles; 0: before the first, 9: after the last, before writing


def test_cancel_at_tile_k_writes_nothing_and_the_next_job_runs(
    qtbot, window_for, watch: Watch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    src, out = tmp_path / "in", tmp_path / "out"
    paths = [save_noise(src / f"k{k}.png", 70, 70, seed=k) for k in CANCEL_AT]  # 3×3 tiles of 32
    paths.append(save_noise(src / "after.png", 40, 40, seed=99))
    window = window_for(out, tile=32)
    window.add_paths(paths)
    wait_read(qtbot, window)
    worker = window.controller.worker
    seen: dict[str, list[tuple[int, int]]] = {}

    def cancel_at_k(job_id: int, done: int, total: int) -> None:  # runs in the worker thread
        item = next((i for i in window.model.items() if i.job_id == job_id), None)
        assert item is not None
        seen.setdefault(item.name, []).append((done, total))
        if item.name.startswith("k") and done == int(item.path.stem[1:]):
            worker.cancel(job_id)

    worker.progress.connect(cancel_at_k, Qt.ConnectionType.DirectConnection)
    try:
        run_all(qtbot, window)
    finally:
        worker.progress.disconnect(cancel_at_k)
    items = by_name(window)
    for k in CANCEL_AT:
        item = items[f"k{k}.png"]
        assert item.status == CANCELLED and item.message == "nothing was saved"
        assert seen[item.name][-1] == (k, 9), seen[item.name]  # stopped right after tile k
        assert not (out / f"k{k}{SUFFIX}.png").exists()
    assert "Cancelled k9.png; nothing was saved" in watch.messages
    assert items["after.png"].status == DONE
    assert [p.name for p in out.iterdir()] == [f"after{SUFFIX}.png"]
    assert leftovers(out) == [] and leftovers(src) == []
    watch.assert_quiet()


def test_a_crash_inside_the_worker_marks_the_item_and_the_app_goes_on(
    qtbot, window_for, watch: Watch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    src, out = tmp_path / "in", tmp_path / "out"
    a, b = _two_inputs(src)
    real = Engine.upscale_data
    calls = [0]

    def boom_once(self: Engine, *args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "upscale_data", boom_once)
    window = window_for(out)
    window.add_paths([a, b])
    wait_read(qtbot, window)
    run_all(qtbot, window)
    first, second = window.model.items()
    assert_one_line_failure(window, first, "internal error: RuntimeError: boom", watch)
    assert second.status == DONE and second.latest_result().path.exists()
    # The traceback goes to the log for the bug report, not to the user; nothing else is logged.
    logged = watch.errors_logged()
    assert len(logged) == 1 and logged[0].name == "fmen_gui.gui.worker"
    assert "RuntimeError: boom" in logged[0].getMessage()
    watch.caplog.clear()
    watch.assert_quiet()
    assert window.isVisible() and not window.is_busy() and window.upscale_action.isEnabled()
    with qtbot.waitSignal(window.idle, timeout=60000):  # the failed item can simply be run again
        window.rerun_items([first.key])
    assert first.status == DONE and [p.name for p in sorted(out.iterdir())] == [
        f"a{SUFFIX}.png",
        f"b{SUFFIX}.png",
    ]


# --------------------------------------------------------------------------------------------
# Soak: 300 jobs through the worker on its thread, about one in five cancelled


class Collector(QObject):
    """Lives in the GUI thread, so the worker's signals arrive here queued, as in the app."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: dict[int, list[str]] = {}

    def _add(self, job_id: int, what: str) -> None:
        self.outcomes.setdefault(job_id, []).append(what)

    @Slot(object, QImage)
    def finished(self, outcome: JobOutcome, preview: QImage) -> None:
        assert outcome.dst.is_file() and preview.width() == outcome.out_size[0]
        outcome.dst.unlink()  # keep the folder small (and unique_path cheap)
        self._add(outcome.job_id, "finished")

    @Slot(int, str)
    def failed(self, job_id: int, reason: str) -> None:
        self._add(job_id, f"failed: {reason}")

    @Slot(int)
    def cancelled(self, job_id: int) -> None:
        self._add(job_id, "cancelled")


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_soak_300_jobs_with_random_cancels(
    qtbot, tiny_x2: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, record_property
) -> None:  # type: ignore[no-untyped-def]
    src, out = tmp_path / "in", tmp_path / "out"
    inputs = [save_noise(src / f"s{i}.png", 8, 8, seed=i) for i in range(4)]
    Image.fromarray(np.dstack([noise(np.random.default_rng(9), 8, 8), np.full((8, 8), 200, np.uint8)])).save(
        src / "alpha.png"
    )
    inputs.append(src / "alpha.png")
    rng = random.Random(0)
    plan: dict[int, str] = {}  # job id -> "run" | "at-start" | "after-tile"
    specs = []
    for n in range(SOAK_JOBS):
        spec = JobSpec(
            job_id=next_job_id(),
            src=inputs[n % len(inputs)],
            weights=tiny_x2,
            device="cpu",
            precision="fp32",
            out_dir=out,
        )
        roll = rng.random()
        plan[spec.job_id] = "at-start" if roll < 0.1 else "after-tile" if roll < 0.2 else "run"
        specs.append(spec)

    gc.collect()
    py_threads, sys_threads = threading.active_count(), os_threads()
    controller = WorkerController(UpscaleWorker())
    worker = controller.worker
    collector = Collector()
    worker.job_finished.connect(collector.finished)
    worker.job_failed.connect(collector.failed)
    worker.job_cancelled.connect(collector.cancelled)

    def on_start(job_id: int) -> None:  # worker thread
        if plan[job_id] == "at-start":
            worker.cancel(job_id)

    def on_progress(job_id: int, done: int, _total: int) -> None:  # worker thread
        if plan[job_id] == "after-tile" and done >= 1:
            worker.cancel(job_id)

    worker.job_started.connect(on_start, Qt.ConnectionType.DirectConnection)
    worker.progress.connect(on_progress, Qt.ConnectionType.DirectConnection)

    def run(batch: list[JobSpec]) -> None:
        for spec in batch:
            controller.submit(spec)
        ids = [s.job_id for s in batch]
        qtbot.waitUntil(lambda: all(i in collector.outcomes for i in ids), timeout=120000)

    try:
        t0 = time.perf_counter()
        run(specs[:SOAK_WARMUP])
        gc.collect()
        warm_rss = rss_bytes()
        run(specs[SOAK_WARMUP:])
        seconds = time.perf_counter() - t0
        gc.collect()
        qtbot.wait(50)  # let the last queued signals land
        growth = rss_bytes() - warm_rss
    finally:
        assert controller.shutdown()
    qtbot.waitUntil(lambda: threading.active_count() <= py_threads, timeout=5000)

    expected = {job: ["finished"] if what == "run" else ["cancelled"] for job, what in plan.items()}
    assert collector.outcomes == expected  # each job ended exactly once, as planned
    cancelled = sum(1 for what in plan.values() if what != "run")
    assert 0.12 * SOAK_JOBS < cancelled < 0.3 * SOAK_JOBS
    assert controller.worker_thread.isFinished()
    assert threading.active_count() == py_threads
    # A thread pool of the worker's own (OpenMP) winds down just after the worker thread ends.
    qtbot.waitUntil(lambda: os_threads() <= sys_threads, timeout=5000)
    assert os_threads() <= sys_threads, "a thread outlived the worker"
    assert list(out.iterdir()) == [] and leftovers(src) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    record_property("soak_seconds", round(seconds, 2))
    record_property("soak_rss_growth_mib", round(growth / 2**20, 2))
    print(
        f"\nsoak: {SOAK_JOBS} jobs ({cancelled} cancelled) in {seconds:.1f} s; "
        f"RSS {warm_rss / 2**20:.0f} MiB after {SOAK_WARMUP} jobs, growth {growth / 2**20:+.1f} MiB"
    )
    assert seconds < SOAK_TIME_LIMIT_S
    assert growth <= SOAK_RSS_LIMIT
