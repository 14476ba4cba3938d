"""``scripts/system-deps.sh``: the system libraries Qt needs, checked (and installed) by ``make run``.

The script's decisions (quiet, install as root, one ``sudo`` line otherwise, words without apt)
are tested on a stand-in PySide6 tree with stand-ins for ``ldd``, ``id`` and ``apt-get`` first on
a PATH that holds nothing else, so each case is exact whatever this machine has installed.
The list itself is checked against the real PySide6 in this environment, and
``tests/gui/test_real_window.py`` proves it is enough to open the real window.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "system-deps.sh"
BASH = shutil.which("bash")

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux only"),
    pytest.mark.skipif(BASH is None, reason="needs bash"),
]

# The real tools the script uses besides the stand-ins.
TOOLS = ("awk", "sort", "sed", "basename", "dirname", "uname")

FAKE_LDD = """#!{bash}
printf '%s\\n' "$*" >> "$STATE/ldd.args"
printf '%s\\n' "${{LD_LIBRARY_PATH:-}}" >> "$STATE/ldd.path"
for f in "$@"; do
  echo "$f:"
  echo "	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0000000000)"
  while read -r lib; do [ -n "$lib" ] && echo "	$lib => not found"; done < "$STATE/missing"
done
"""
FAKE_ID = """#!{bash}
echo "$FAKE_UID"
"""
# Installing clears what ldd reports missing, unless the case says the install does not help.
FAKE_APT_GET = """#!{bash}
printf '%s %s\\n' "${{DEBIAN_FRONTEND:-}}" "$*" >> "$STATE/apt.log"
if [ "$1" = install ] && [ ! -e "$STATE/install-fails-to-help" ]; then : > "$STATE/missing"; fi
"""


@dataclass
class Result:
    code: int
    out: str
    err: str
    state: Path

    def log(self, name: str) -> list[str]:
        path = self.state / name
        return path.read_text().splitlines() if path.exists() else []


def _stand_in_qt(folder: Path, *, bundle: bool = False) -> Path:
    """Empty files where a virtual environment (or a bundle) keeps PySide6's Qt."""
    qt = (
        folder / "_internal" / "PySide6" / "Qt"
        if bundle
        else folder / "lib" / "python3.11" / "site-packages" / "PySide6" / "Qt"
    )
    for name in (
        "lib/libQt6Widgets.so.6",
        "lib/libQt6Svg.so.6",
        "plugins/platforms/libqxcb.so",
        "plugins/xcbglintegrations/libqxcb-glx-integration.so",
    ):
        (qt / name).parent.mkdir(parents=True, exist_ok=True)
        (qt / name).touch()
    return folder


def run(
    tmp_path: Path,
    *args: str,
    missing: tuple[str, ...] = (),
    uid: int = 1000,
    apt: bool = True,
    install_helps: bool = True,
    script: Path = SCRIPT,
    env: dict[str, str] | None = None,
) -> Result:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "missing").write_text("".join(f"{lib}\n" for lib in missing))
    if not install_helps:
        (state / "install-fails-to-help").touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real is not None, f"needs {tool}"
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(real)
    fakes = {"ldd": FAKE_LDD, "id": FAKE_ID, **({"apt-get": FAKE_APT_GET} if apt else {})}
    for name, text in fakes.items():
        (bin_dir / name).write_text(text.format(bash=BASH))
        (bin_dir / name).chmod(0o755)
    full_env = {"PATH": str(bin_dir), "STATE": str(state), "FAKE_UID": str(uid), **(env or {})}
    proc = subprocess.run(
        [str(BASH), str(script), *args], capture_output=True, text=True, env=full_env, timeout=60
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, state)


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    return _stand_in_qt(tmp_path / "venv")


XCB_GAPS = ("libxcb-icccm.so.4", "libxcb-keysyms.so.1")


def test_quiet_and_fast_path_when_everything_is_there(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, str(venv))
    assert (result.code, result.out, result.err) == (0, "", "")
    assert result.log("apt.log") == []
    # One ldd call over Qt's libraries and the xcb platform plugin.
    (args,) = result.log("ldd.args")
    assert "libQt6Widgets.so.6" in args and "platforms/libqxcb.so" in args


def test_not_root_prints_one_sudo_line_and_stops(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, str(venv), missing=XCB_GAPS, uid=1000)
    assert result.code == 1
    lines = (result.out + result.err).splitlines()
    assert [line for line in lines if "apt-get" in line] == [
        "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1"
    ]
    assert "libxcb-icccm.so.4 (package libxcb-icccm4)" in result.err
    assert result.log("apt.log") == []  # nothing attempted without root


def test_root_with_apt_installs_what_is_missing_and_goes_on(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, str(venv), missing=XCB_GAPS, uid=0)
    assert result.code == 0, result.err
    assert result.log("apt.log") == [
        "noninteractive update -qq",
        "noninteractive install -y -qq --no-install-recommends libxcb-icccm4 libxcb-keysyms1",
    ]
    assert "installing libxcb-icccm4 libxcb-keysyms1" in result.err
    assert len(result.log("ldd.args")) == 2  # checked again after the install


def test_root_stops_when_the_install_did_not_help(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, str(venv), missing=XCB_GAPS, uid=0, install_helps=False)
    assert result.code == 1
    assert "still missing after the install: libxcb-icccm.so.4 libxcb-keysyms.so.1" in result.err


def test_check_only_never_installs(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, "--check", str(venv), missing=XCB_GAPS, uid=0)
    assert result.code == 1
    assert result.log("apt.log") == []
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in result.err


def test_without_apt_it_says_what_is_missing_in_words(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, str(venv), missing=("libxcb-cursor.so.0",), uid=0, apt=False)
    assert result.code == 1
    assert "libxcb-cursor.so.0 (package libxcb-cursor0)" in result.err
    assert "package manager" in result.err
    assert "sudo" not in result.err


def test_a_library_without_a_known_package_is_named(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, str(venv), missing=("libxcb-icccm.so.4", "libunheard.so.7"), uid=1000)
    assert result.code == 1
    assert "libunheard.so.7 (no package known here; 'apt-file search libunheard.so.7' finds it)" in result.err
    assert "sudo apt-get install -y libxcb-icccm4\n" in result.err


def test_another_platform_needs_no_xcb_libraries(tmp_path: Path, venv: Path) -> None:
    result = run(tmp_path, str(venv), env={"QT_QPA_PLATFORM": "offscreen"})
    assert result.code == 0
    (args,) = result.log("ldd.args")
    assert "libQt6Widgets.so.6" in args and "libqxcb" not in args
    result = run(tmp_path, str(venv), env={"QT_QPA_PLATFORM": "wayland;xcb"})  # xcb as fallback
    assert "libqxcb" in result.log("ldd.args")[-1]


def test_inside_the_bundle_it_finds_the_bundles_qt_by_itself(tmp_path: Path) -> None:
    """As dist/fmen-upscaler/system-deps.sh: no argument; ldd looks in _internal/ as the launcher does."""
    bundle = _stand_in_qt(tmp_path / "fmen-upscaler", bundle=True)
    shutil.copy2(SCRIPT, bundle / "system-deps.sh")
    result = run(tmp_path, script=bundle / "system-deps.sh", missing=XCB_GAPS, uid=1000)
    assert result.code == 1 and "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in result.err
    assert (
        str(bundle / "_internal" / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so")
        in result.log("ldd.args")[0]
    )
    assert result.log("ldd.path")[0].split(":")[0] == str(bundle / "_internal")


def test_no_qt_found_is_a_clear_error(tmp_path: Path) -> None:
    result = run(tmp_path, str(tmp_path / "nothing-here"))
    assert result.code == 2
    assert f"no PySide6 (Qt) under {tmp_path / 'nothing-here'}" in result.err


def test_package_list_is_one_line_without_repeats() -> None:
    out = subprocess.run(
        [str(BASH), str(SCRIPT), "--packages"], capture_output=True, text=True, check=True
    ).stdout
    packages = out.split()
    assert out.count("\n") == 1 and len(packages) == len(set(packages))
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0", "libgl1"} <= set(
        packages
    )
    # CI installs exactly this list (plus Xvfb for the real-window test): no second copy.
    assert "scripts/system-deps.sh --packages" in (ROOT / ".ci" / "run").read_text()
    assert "scripts/system-deps.sh $(VENV)" in (ROOT / "Makefile").read_text()


def _qt_dir() -> Path:
    import PySide6

    return Path(PySide6.__file__).resolve().parent / "Qt"


def test_the_list_covers_every_library_qt_links_for_a_window() -> None:
    """Each system library that Qt's window path links directly has its package in the list.

    Read from this environment's PySide6 with ``readelf``, so a PySide6 upgrade that links one
    more library fails here instead of on a user's machine.
    """
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("needs readelf (binutils)")
    qt = _qt_dir()
    files = [
        qt / "lib" / f"libQt6{name}.so.6" for name in ("Core", "Gui", "Widgets", "Svg", "DBus", "XcbQpa")
    ] + [
        qt / "plugins" / "platforms" / "libqxcb.so",
        qt / "plugins" / "xcbglintegrations" / "libqxcb-glx-integration.so",
    ]
    files = [f for f in files if f.exists()]
    if not files:
        pytest.skip(f"no Qt libraries under {qt}")
    shipped = {p.name for p in (qt / "lib").iterdir()}  # Qt's own, and what the wheel carries (ICU)
    glibc = re.compile(r"^(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[-\w]*)\.so")
    needed: set[str] = set()
    for f in files:
        out = subprocess.run([readelf, "-d", str(f)], capture_output=True, text=True, check=True).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    system = {lib for lib in needed if lib not in shipped and not glibc.match(lib)}
    table = subprocess.run(
        [str(BASH), str(SCRIPT), "--libraries"], capture_output=True, text=True, check=True
    )
    listed = {line.split()[0] for line in table.stdout.splitlines()}
    assert "libxcb-icccm.so.4" in system and "libxcb-keysyms.so.1" in system  # the two
    assert system <= listed, (
        f"libraries Qt links that scripts/system-deps.sh does not list: {sorted(system - listed)}"
    )


def test_real_environment_check_is_quiet_or_names_the_fix() -> None:
    """On this very machine: silent success, or one clear sudo line (never a crash or noise)."""
    proc = subprocess.run(
        [str(BASH), str(SCRIPT), "--check", sys.prefix],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "xcb"},
    )
    if proc.returncode == 0:
        assert proc.stdout == proc.stderr == ""
    else:
        assert proc.returncode == 1
        assert "Qt cannot open a window without these system libraries" in proc.stderr
