"""The double-click launcher: ``--self-test``, ``build.spec`` and (slow) the PyInstaller bundle.

The fast tests run in the default suite. The ones marked ``slow`` build the bundle and run it;
they skip themselves unless ``FMEN_RUN_SLOW=1`` is set or ``-m slow`` selects them, so
``make test`` never builds anything. ``make test-bundle`` runs them.

The slow tests reuse ``dist/fmen-upscaler`` when its executable is newer than every input of the
build (``build.spec``, ``pyproject.toml``, ``fmen_gui/``, ``resources/``, ``weights/`` and the
venv's site-packages folder); otherwise, or with ``FMEN_BUNDLE_REBUILD=1``, they build it
(minutes), with the output in ``build/pyinstaller-test.log``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui import selftest
from fmen_gui.arch.fmen import FMEN, FMENConfig
from fmen_gui.weights.loading import save_safetensors
from tests.conftest import slow_enabled

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist" / "fmen-upscaler"
EXE = DIST / ("fmen-upscaler.exe" if sys.platform == "win32" else "fmen-upscaler")


# --------------------------------------------------------------------------- tiny weights


def tiny_fmen(scale: int, *, nearest: bool = True, seed: int = 0) -> FMEN:
    """A small FMEN-family network; ``nearest`` sets it to enlarge like nearest-neighbour.

    The features are the input's three channels (head = identity), the body is cancelled by a
    zero ``lr_conv`` (whose output is added to the head's), and the tail copies each channel
    into its ``scale²`` sub-pixels. With ``nearest=False`` the weights are random: garbage.
    """
    torch.manual_seed(seed)
    model = FMEN(FMENConfig(channels=8, mid_channels=6, down_blocks=1, up_blocks=(1, 1), scale=scale))
    if nearest:
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
            tail = model.tail[0]
            assert isinstance(tail, torch.nn.Conv2d)
            for c in range(3):
                model.head.weight[c, c, 1, 1] = 1.0
                tail.weight[c * scale * scale : (c + 1) * scale * scale, c, 1, 1] = 1.0
    return model


def write_weights(folder: Path, scales: dict[int, bool], *, source: str | None = None) -> Path:
    """A weights folder with one FMEN-S-labelled tiny file per scale (value: nearest or garbage)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for scale, nearest in scales.items():
        name = f"tiny_{'nearest' if nearest else 'random'}_x{scale}.safetensors"
        save_safetensors(tiny_fmen(scale, nearest=nearest), folder / name)
        entry: dict[str, Any] = {"file": name, "model": "fmen-s", "scale": scale, "sha256": ""}
        if source:
            entry["source"] = source
        entries.append(entry)
    (folder / "manifest.json").write_text(json.dumps({"version": 1, "weights": entries}), encoding="utf-8")
    return folder


Bundled = Callable[[dict[int, bool]], Path]


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bundled:
    """Point the 'shipped with the app' weights folder at a fresh temporary one."""

    def make(scales: dict[int, bool]) -> Path:
        folder = write_weights(tmp_path / "bundled", scales)
        monkeypatch.setenv("FMEN_WEIGHTS_DIR", str(folder))
        return folder

    return make


# --------------------------------------------------------------------------- run_self_test


def test_self_test_passes_with_bundled_fmen_s_x4(
    bundled: Bundled, capsys: pytest.CaptureFixture[str]
) -> None:
    bundled({2: True, 4: True})
    data_dir = os.environ["FMEN_DATA_DIR"]
    assert selftest.run_self_test() == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("self-test passed: ")
    assert "×4" in out[0] and "96×64 -> 384×256" in out[0] and "tiny_nearest_x4" in out[0]
    assert "upscale " in out[0] and "import " in out[0]
    assert out[0].endswith("; spandrel loaded and ran a RealESRGAN Compact model")
    assert os.environ["FMEN_DATA_DIR"] == data_dir  # restored afterwards


@pytest.mark.parametrize(("scales", "expected"), [({2: True, 3: True}, 2), ({3: True}, 3)])
def test_self_test_falls_back_to_another_scale(
    bundled: Bundled, capsys: pytest.CaptureFixture[str], scales: dict[int, bool], expected: int
) -> None:
    bundled(scales)
    assert selftest.run_self_test() == 0
    w, h = Image.open(selftest.sample_path()).size
    assert f"-> {w * expected}×{h * expected}" in capsys.readouterr().out


def test_self_test_fails_clearly_without_fmen_s_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    (empty / "manifest.json").write_text('{"version": 1, "weights": []}', encoding="utf-8")
    monkeypatch.setenv("FMEN_WEIGHTS_DIR", str(empty))
    assert selftest.run_self_test() == 1
    err = capsys.readouterr().err
    assert err.startswith("self-test FAILED: no FMEN-S weights are bundled")
    assert str(empty) in err


def test_self_test_rejects_garbage_weights(bundled: Bundled, capsys: pytest.CaptureFixture[str]) -> None:
    bundled({4: False})
    assert selftest.run_self_test() == 1
    assert capsys.readouterr().err.startswith("self-test FAILED: output ")


def test_self_test_ignores_the_users_own_weights(
    bundled: Bundled, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fetched or imported file would win in the app; the self-test checks the shipped one."""
    bundled({4: True})
    write_weights(Path(os.environ["FMEN_DATA_DIR"]) / "weights", {4: False}, source="official")
    assert selftest.run_self_test() == 0
    assert "tiny_nearest_x4" in capsys.readouterr().out


def test_self_test_reports_a_missing_sample(
    bundled: Bundled, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundled({4: True})
    monkeypatch.setattr(selftest, "resources_dir", lambda: tmp_path / "nowhere")
    assert selftest.run_self_test() == 1
    assert "sample image is missing" in capsys.readouterr().err


def test_resources_dir_inside_a_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert selftest.sample_path() == ROOT / "resources" / "sample.png"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert selftest.sample_path() == tmp_path / "resources" / "sample.png"


def test_check_result() -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    good = src.repeat(3, axis=0).repeat(3, axis=1)
    assert selftest.check_result(src, good, 3) == 0.0
    with pytest.raises(selftest.SelfTestError, match=r"output is 36×24, expected 24×16"):
        selftest.check_result(src, good, 2)
    with pytest.raises(selftest.SelfTestError, match="blank"):
        selftest.check_result(src, np.full_like(good, 128), 3)
    with pytest.raises(selftest.SelfTestError, match="does not resemble"):
        selftest.check_result(src, 255 - good, 3)


def test_self_test_option_never_opens_a_window(tmp_path: Path) -> None:
    """``python -m fmen_gui --self-test`` with no display at all: a QApplication would abort."""
    folder = write_weights(tmp_path / "w", {4: True})
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    env.update(FMEN_WEIGHTS_DIR=str(folder), FMEN_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [sys.executable, "-m", "fmen_gui", "--self-test"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("self-test passed: ")
    assert not (tmp_path / "data").exists()  # nothing written to the user's folder


# --------------------------------------------------------------------------- build.spec


def _small_lib() -> Path:
    return Path(torch.__file__).parent / "lib" / "libtorch_global_deps.so"  # a real .so of 12 kB


def _exec_spec(monkeypatch: pytest.MonkeyPatch, platform: str, workpath: Path) -> dict[str, Any]:
    """Run build.spec with stand-ins for PyInstaller's classes and record what it asked for."""
    calls: dict[str, Any] = {}
    small_lib = str(_small_lib())
    found_binaries = [
        ("torch/lib/libtorch_cpu.so", small_lib, "BINARY"),
        ("torch/lib/libtorchbind_test.so", "/x", "BINARY"),
        ("torch/lib/libc10.so", small_lib, "BINARY"),
        ("PySide6/Qt/lib/libQt6Network.so.6", "/x", "BINARY"),
        ("libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "SYMLINK"),
        ("PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6", "/x", "BINARY"),
        ("libQt6Svg.so.6", "PySide6/Qt/lib/libQt6Svg.so.6", "SYMLINK"),
        ("PySide6/Qt/lib/libQt6DBus.so.6", "/x", "BINARY"),
        ("PySide6/Qt/lib/libQt6Svg.so.6", "/x", "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/x", "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", "/x", "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqvnc.so", "/x", "BINARY"),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", "/x", "BINARY"),
        ("PySide6/Qt/plugins/tls/libqopensslbackend.so", "/x", "BINARY"),
    ]
    found_datas = [
        ("torch/include/ATen/ATen.h", "/x", "DATA"),
        ("torch/share/cmake/Torch/TorchConfig.cmake", "/x", "DATA"),
        ("torch/bin/protoc", "/x", "DATA"),
        ("torch/bin/torch_shm_manager", "/x", "DATA"),
        ("torch/test/test_api", "/x", "DATA"),
        ("torch/lib/libtorch_cpu.a", "/x", "DATA"),
        ("torch/_C/__init__.pyi", "/x", "DATA"),
        ("torch/utils/data/sampler.py", "/x", "DATA"),
        ("resources/sample.png", "/x", "DATA"),
    ]

    def analysis(scripts: list[str], **kw: Any) -> SimpleNamespace:
        calls["Analysis"] = {"scripts": scripts, **kw}
        return SimpleNamespace(binaries=list(found_binaries), datas=list(found_datas), pure=[], scripts=[])

    def recorder(name: str) -> Callable[..., SimpleNamespace]:
        def record(*args: Any, **kw: Any) -> SimpleNamespace:
            calls[name] = {"args": args, **kw}
            return SimpleNamespace(name=name, args=args, kw=kw)

        return record

    monkeypatch.setattr(sys, "platform", platform)
    namespace: dict[str, Any] = {
        "SPECPATH": str(ROOT),
        "workpath": str(workpath),
        "DISTPATH": str(workpath / "dist"),
        "Analysis": analysis,
        **{n: recorder(n) for n in ("PYZ", "EXE", "COLLECT", "BUNDLE")},
    }
    exec(compile((ROOT / "build.spec").read_text(encoding="utf-8"), "build.spec", "exec"), namespace)
    calls["a"] = namespace["a"]
    return calls


def test_spec_on_linux(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    calls = _exec_spec(monkeypatch, "linux", tmp_path)
    analysis = calls["Analysis"]
    assert analysis["scripts"] == [str(ROOT / "fmen_gui" / "__main__.py")]
    dests = {(Path(src).relative_to(ROOT).as_posix(), dest) for src, dest in analysis["datas"]}
    assert ("resources/sample.png", "resources") in dests
    assert ("resources/fmen-upscaler.svg", "resources") in dests
    assert ("resources/icons/fmen-upscaler-256.png", "resources/icons") in dests
    assert ("weights/manifest.json", "weights") in dests
    assert not any(src.endswith(".py") for src, _ in dests)
    kernels = sorted((ROOT / "fmen_gui" / "engine" / "backends").glob("_winograd*.so"))
    assert analysis["binaries"] == [(str(k), "fmen_gui/engine/backends") for k in kernels]
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text(encoding="utf-8"))
    assert len(dests & {(f"weights/{e['file']}", "weights") for e in manifest["weights"]}) == len(
        [e for e in manifest["weights"] if (ROOT / "weights" / e["file"]).is_file()]
    )
    for name in ("tkinter", "PySide6.QtNetworkAuth", "PySide6.QtQml", "PySide6.QtWebEngineCore", "sympy"):
        assert name in analysis["excludes"]
    # spandrel with every architecture (listed without importing it), never torchvision.
    assert "torchvision" in analysis["excludes"]
    hidden = set(analysis["hiddenimports"])
    assert {
        "spandrel",
        "spandrel.architectures.Compact",
        "spandrel.architectures.SwinIR.__arch.SwinIR",
    } <= hidden
    assert "imagecodecs._png" in hidden
    # QtNetwork stays: the single-instance socket (a second start hands its files to the first).
    used = {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtSvg", "PySide6.QtNetwork"}
    assert not used & set(analysis["excludes"])

    kept = {dest for dest, _, _ in (*calls["a"].binaries, *calls["a"].datas)}
    assert kept == {
        "torch/lib/libtorch_cpu.so",
        "torch/lib/libc10.so",
        "PySide6/Qt/lib/libQt6DBus.so.6",
        "PySide6/Qt/lib/libQt6Network.so.6",
        "libQt6Network.so.6",
        "PySide6/Qt/lib/libQt6Svg.so.6",
        "libQt6Svg.so.6",
        "torch/bin/torch_shm_manager",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/imageformats/libqsvg.so",
        "torch/utils/data/sampler.py",
        "resources/sample.png",
    }
    assert "left out 10 files" in capsys.readouterr().out
    # The system-library check travels beside the executable, runnable (see the README).
    script = tmp_path / "dist" / "fmen-upscaler" / "system-deps.sh"
    assert script.read_bytes() == (ROOT / "scripts" / "system-deps.sh").read_bytes()
    assert os.access(script, os.X_OK)
    if shutil.which("strip"):  # torch's libraries are stripped copies, the others untouched
        sources = {dest: src for dest, src, _ in calls["a"].binaries}
        assert sources["torch/lib/libc10.so"] == str(tmp_path / "stripped" / "libc10.so")
        assert (tmp_path / "stripped" / "libc10.so").stat().st_size <= _small_lib().stat().st_size
        assert sources["PySide6/Qt/lib/libQt6Svg.so.6"] == "/x"

    exe = calls["EXE"]
    assert exe["name"] == "fmen-upscaler" and exe["console"] is False and exe["exclude_binaries"] is True
    # Not PyInstaller's strip: it breaks the libraries auditwheel patched (numpy's OpenBLAS).
    assert exe["strip"] is False and calls["COLLECT"]["strip"] is False
    assert exe["icon"].endswith("fmen-upscaler.ico") and Path(exe["icon"]).is_file()
    assert calls["COLLECT"]["name"] == "fmen-upscaler"
    assert "BUNDLE" not in calls


def test_spec_on_macos(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _exec_spec(monkeypatch, "darwin", tmp_path)
    assert not (tmp_path / "dist").exists()  # the system-library check is for Linux only
    assert calls["EXE"]["icon"].endswith(".icns") and calls["EXE"]["argv_emulation"] is True
    bundle = calls["BUNDLE"]
    assert bundle["name"] == "FMEN Upscaler.app"
    assert Path(bundle["icon"]).is_file() and bundle["bundle_identifier"]
    types = {t for doc in bundle["info_plist"]["CFBundleDocumentTypes"] for t in doc["LSItemContentTypes"]}
    assert {"public.png", "public.jpeg", "public.tiff"} <= types


def test_build_outputs_are_ignored_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and the repository")
    for path in ("dist/fmen-upscaler/fmen-upscaler", "build/build/warn-build.txt"):
        proc = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert proc.returncode == 0, f"{path} is not ignored by git"


# --------------------------------------------------------------------------- the bundle (slow)


def _newest_input() -> float:
    paths = [ROOT / "build.spec", ROOT / "pyproject.toml", Path(sysconfig.get_paths()["purelib"])]
    for folder in ("fmen_gui", "resources", "weights"):
        paths += [p for p in (ROOT / folder).rglob("*") if "__pycache__" not in p.parts]
    return max(p.stat().st_mtime for p in paths if p.exists())


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def bundle(request: pytest.FixtureRequest) -> Iterator[Path]:
    if not slow_enabled(request.config):
        pytest.skip("builds the PyInstaller bundle: run `make test-bundle` (or FMEN_RUN_SLOW=1 / -m slow)")
    if shutil.which("pyinstaller") is None and not (Path(sys.executable).parent / "pyinstaller").exists():
        pytest.skip("PyInstaller is not installed: .venv/bin/pip install 'pyinstaller>=6'")
    fresh = EXE.exists() and EXE.stat().st_mtime > _newest_input()
    if fresh and os.environ.get("FMEN_BUNDLE_REBUILD") != "1":
        print(f"\nbundle: reusing {DIST} (newer than every input)")
    else:
        log = ROOT / "build" / "pyinstaller-test.log"
        log.parent.mkdir(exist_ok=True)
        nice = ["nice", "-n", "19"] if shutil.which("nice") else []
        start = time.perf_counter()
        with log.open("w", encoding="utf-8") as fh:
            proc = subprocess.run(
                [*nice, sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "build.spec"],
                cwd=ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=3600,
            )
        seconds = time.perf_counter() - start
        assert proc.returncode == 0, log.read_text(encoding="utf-8")[-5000:]
        print(f"\nbundle: built in {seconds:.0f} s (log: {log})")
    assert EXE.exists()
    print(f"bundle: {DIST} is {_size(DIST) / 2**20:.0f} MiB")
    yield EXE


def _bundle_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"FMEN_WEIGHTS_DIR", "PYTHONPATH"}}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        FMEN_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    return env


@pytest.mark.slow
def test_bundle_self_test(bundle: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(bundle), "--self-test"], capture_output=True, text=True, timeout=600, env=_bundle_env(tmp_path)
    )
    print(f"bundle --self-test (exit {proc.returncode}): {proc.stdout.strip()} {proc.stderr.strip()[-2000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("self-test passed: FMEN-S")
    from fmen_gui.engine.backends import winograd

    if winograd.available():  # built here and this CPU runs it: the bundle must use it too
        assert f"(Winograd {winograd.isa().upper()} + oneDNN)" in proc.stdout


@pytest.mark.slow
def test_bundle_window_starts_offscreen(bundle: Path, tmp_path: Path) -> None:
    env = _bundle_env(tmp_path)
    env["FMEN_GUI_EXIT_AFTER_SHOW"] = "1"
    proc = subprocess.run(
        [str(bundle), "--settings", str(tmp_path / "s.ini")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "window shown, torch imported: False" in proc.stdout


@pytest.mark.slow
def test_bundle_upscales_a_file_given_on_the_command_line(bundle: Path, tmp_path: Path) -> None:
    """What a file dropped on the launcher does: it is queued, and --upscale runs it."""
    src = tmp_path / "in" / "dropped.png"
    src.parent.mkdir()
    shutil.copy(ROOT / "resources" / "sample.png", src)
    proc = subprocess.run(
        [
            str(bundle),
            "--settings",
            str(tmp_path / "s.ini"),
            "--upscale",
            "--screenshot",
            str(tmp_path / "shot.png"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_bundle_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(src.parent.glob("dropped_fmen*_x*.png"))
    assert results, proc.stderr[-3000:]
    w, h = Image.open(src).size
    out_w, out_h = Image.open(results[0]).size
    assert out_w % w == 0 and out_w // w in (2, 3, 4) and out_h == h * (out_w // w)


@pytest.mark.slow
def test_bundle_leaves_out_what_the_app_never_uses(bundle: Path) -> None:
    internal = bundle.parent / "_internal"
    assert (internal / "resources" / "sample.png").is_file()
    assert (internal / "resources" / "icons" / "fmen-upscaler-512.png").is_file()
    assert (internal / "weights" / "manifest.json").is_file()
    assert not (internal / "resources" / "generate.py").exists()
    # The Winograd kernel travels with the app when it was built here (it is loaded by ctypes).
    kernels = {p.name for p in (ROOT / "fmen_gui" / "engine" / "backends").glob("_winograd*.so")}
    assert kernels <= {p.name for p in (internal / "fmen_gui" / "engine" / "backends").glob("_winograd*.so")}
    for unwanted in ("torch/include", "torch/test", "tkinter", "sympy", "PySide6/Qt/qml"):
        assert not (internal / unwanted).exists(), unwanted
    assert {p.name for p in (internal / "torch" / "bin").iterdir()} == {"torch_shm_manager"}
    names = {p.name for p in internal.rglob("*")}
    assert any(n.startswith("libQt6Network") for n in names)  # single instance
    for prefix in (
        "libQt6Qml",
        "libQt6Quick",
        "libQt6Pdf",
        "libQt6Sql",
        "_tkinter",
        "libqgtk3",
    ):
        assert not any(n.startswith(prefix) for n in names), prefix
    assert not any(n.endswith((".a", ".h", ".cmake")) for n in names)


@pytest.mark.slow
def test_bundle_libraries_find_their_dependencies(bundle: Path) -> None:
    """Every shared library left in the bundle (Qt plugins included) resolves all it links."""
    if shutil.which("ldd") is None:
        pytest.skip("needs ldd")
    internal = bundle.parent / "_internal"
    libraries = sorted(
        p for p in internal.rglob("*.so*") if p.is_file() and not p.is_symlink() and p.suffix != ".py"
    )
    assert any(p.name == "libqxcb.so" for p in libraries)
    # A library this machine does not have either (say libwayland-cursor on a server) could not
    # be bundled; the user's desktop provides it. Only what the build could have shipped counts.
    here = {p.name for p in Path(sysconfig.get_paths()["purelib"]).rglob("*.so*")}
    if shutil.which("ldconfig"):
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        here |= {line.split()[0] for line in cache.splitlines()[1:] if line.strip()}
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal)}  # as the bootloader sets it
    missing: dict[str, list[str]] = {}
    absent_here: set[str] = set()
    for lib in libraries:
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, env=env).stdout
        for lost in {line.split()[0] for line in out.splitlines() if "not found" in line}:
            if lost in here:
                missing.setdefault(str(lib.relative_to(internal)), []).append(lost)
            else:
                absent_here.add(lost)
    if absent_here:
        print(f"\nbundle: left to the user's system (absent on the build machine): {sorted(absent_here)}")
    assert not missing


@pytest.mark.slow
def test_bundle_checks_the_system_libraries_qt_needs(bundle: Path) -> None:
    """``system-deps.sh`` beside the executable finds the bundle's Qt by itself and checks it.

    The bundle leaves the X11/xcb libraries to the system; it must not need more of them than
    the virtual environment the source tree runs from.
    """
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    script = bundle.parent / "system-deps.sh"
    in_bundle = subprocess.run([str(script), "--check"], capture_output=True, text=True, env=env)
    from_source = subprocess.run(
        ["bash", str(ROOT / "scripts" / "system-deps.sh"), "--check", sys.prefix],
        capture_output=True,
        text=True,
        env=env,
    )
    assert "no PySide6" not in in_bundle.stderr
    if from_source.returncode == 0:
        assert in_bundle.returncode == 0, in_bundle.stderr
        assert in_bundle.stderr == ""
    else:  # this machine lacks some: the bundle names them the same way
        assert in_bundle.returncode == 1 and "sudo apt-get install -y " in in_bundle.stderr
