"""Planning a job against the memory really available, so that it is never killed silently.

Allocations rarely fail on Linux: overcommit promises memory that is not there and a cgroup
limit kills the process outright. The engine therefore plans each job before it starts
(``Engine.plan``) from ``memory.available_bytes()``. The /proc and /sys files are faked here for
the arithmetic (``root`` parameter); one test runs the real command line in a real
memory-limited cgroup where this machine allows creating one.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmen_gui.cli import run
from fmen_gui.engine import memory, pipeline
from fmen_gui.engine.images import ImageData, read_image
from fmen_gui.engine.pipeline import MIN_TILE, Engine, EngineSettings, Upscaler
from fmen_gui.errors import EngineError, ImageError

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "fmen_s_x4.safetensors"
GIB = 2**30
MIB = 2**20


# --------------------------------------------------------------------------------------------
# available_bytes() from faked /proc and /sys


def fake_system(
    root: Path,
    *,
    meminfo_kib: int | None = 8 * 2**20,
    v2: dict[str, dict[str, str]] | None = None,
    v1: dict[str, dict[str, str]] | None = None,
    v2_path: str = "/user.slice/job",
    v1_path: str = "/job",
    v2_mount_root: str = "/",
) -> Path:
    """A /proc and /sys/fs/cgroup under ``root``: ``v2``/``v1`` map cgroup folders to files."""
    (root / "proc" / "self").mkdir(parents=True)
    if meminfo_kib is not None:
        (root / "proc" / "meminfo").write_text(
            f"MemTotal:       {meminfo_kib * 2} kB\nMemFree:        1000 kB\n"
            f"MemAvailable:   {meminfo_kib} kB\nSwapFree:       99999999 kB\n"
        )
    memberships = ["1:name=systemd:/"]
    mounts = ["31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755"]
    if v1 is not None:
        memberships.append(f"4:memory:{v1_path}")
        mounts.append("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory")
        for folder, files in v1.items():
            where = root / "sys/fs/cgroup/memory" / folder.lstrip("/")
            where.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (where / name).write_text(text)
    if v2 is not None:
        memberships.append(f"0::{v2_path}")
        mounts.append(f"40 31 0:40 {v2_mount_root} /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw")
        for folder, files in v2.items():
            where = root / "sys/fs/cgroup/unified" / folder.lstrip("/")
            where.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (where / name).write_text(text)
    (root / "proc" / "self" / "cgroup").write_text("\n".join(memberships) + "\n")
    (root / "proc" / "self" / "mountinfo").write_text("\n".join(mounts) + "\n")
    return root


def test_meminfo_alone(tmp_path: Path) -> None:
    assert memory.available_bytes(fake_system(tmp_path, meminfo_kib=3 * 2**20)) == 3 * GIB


def test_cgroup_v2_limit_minus_working_set(tmp_path: Path) -> None:
    root = fake_system(
        tmp_path,
        v2={
            "/user.slice/job": {
                "memory.max": str(2 * GIB),
                "memory.current": str(1536 * MIB),
                "memory.stat": f"anon 123\nfile 999\ninactive_file {512 * MIB}\nactive_file 7\n",
            }
        },
    )
    # 2 GiB - (1.5 GiB used - 0.5 GiB reclaimable cache) = 1 GiB, below MemAvailable's 8 GiB
    assert memory.available_bytes(root) == 1 * GIB


def test_cgroup_v2_max_means_unlimited_and_parents_count(tmp_path: Path) -> None:
    root = fake_system(
        tmp_path,
        v2={
            "/user.slice/job": {"memory.max": "max", "memory.current": str(100 * MIB)},
            "/user.slice": {"memory.max": str(3 * GIB), "memory.current": str(2 * GIB)},
        },
    )
    assert memory.available_bytes(root) == 1 * GIB  # the parent's limit applies to the job


def test_cgroup_v2_without_limits_leaves_meminfo(tmp_path: Path) -> None:
    root = fake_system(tmp_path, meminfo_kib=5 * 2**20, v2={"/user.slice/job": {"memory.max": "max"}})
    assert memory.available_bytes(root) == 5 * GIB


def test_cgroup_v2_in_a_namespace(tmp_path: Path) -> None:
    """Inside a container the mount's root is the container's own cgroup."""
    root = fake_system(
        tmp_path,
        v2={"/": {"memory.max": str(GIB), "memory.current": str(256 * MIB)}},
        v2_path="/docker/abc",
        v2_mount_root="/docker/abc",
    )
    assert memory.available_bytes(root) == 768 * MIB


def test_cgroup_v1_limit_and_unlimited_parent(tmp_path: Path) -> None:
    unlimited = str(9223372036854771712)
    root = fake_system(
        tmp_path,
        v1={
            "/job": {
                "memory.limit_in_bytes": str(1536 * MIB),
                "memory.usage_in_bytes": str(1 * GIB),
                "memory.stat": f"cache 5\ntotal_inactive_file {256 * MIB}\n",
            },
            "/": {"memory.limit_in_bytes": unlimited, "memory.usage_in_bytes": str(5 * GIB)},
        },
    )
    assert memory.available_bytes(root) == 768 * MIB


def test_nothing_known_is_none(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    assert memory.available_bytes(tmp_path) is None


def test_this_machine_reports_something_plausible() -> None:
    free = memory.available_bytes()
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc and /sys: Linux only")
    assert free is not None and 0 < free <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------------------------
# Engine.plan: the arithmetic, with the measurement replaced


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(EngineSettings(weights=WEIGHTS, device="cpu", precision="fp32"))


def image(height: int, width: int, *, alpha: bool = False, depth: int = 8) -> ImageData:
    dtype = np.uint8 if depth == 8 else np.uint16
    rgb = np.zeros((height, width, 3), dtype)
    return ImageData(rgb=rgb, alpha=np.zeros((height, width), dtype) if alpha else None)


def test_plenty_of_memory_changes_nothing(engine: Engine) -> None:
    plan = engine.plan(image(600, 800), pillow_format="JPEG", tile=0, available=64 * GIB)
    assert (plan.tile, plan.optimize, plan.notes) == (0, True, ())
    assert plan.needed < 64 * GIB and plan.available == 64 * GIB


def test_estimate_adds_up_the_parts(engine: Engine) -> None:
    data = image(300, 200, alpha=True, depth=16)
    plan = engine.plan(data, pillow_format="PNG", tile=64, available=64 * GIB)
    pixels = 1200 * 800
    expected = (
        pixels * 3 * 2
        + pixels * pipeline.ALPHA_BYTES[16]
        + pipeline.JOB_OVERHEAD
        + engine.upscaler.host_bytes(300, 200, 64)
        + memory.encode_bytes("PNG", pixels, bit_depth=16, alpha=True, grayscale=False, optimize=True)
    )
    assert plan.needed == expected


def test_whole_image_that_does_not_fit_falls_back_to_tiles(engine: Engine) -> None:
    data = image(1000, 1000)
    whole = engine.plan(data, pillow_format="PNG", tile=0, available=64 * GIB).needed
    tiles = engine.plan(data, pillow_format="PNG", tile=250, available=64 * GIB).needed
    assert tiles < whole
    plan = engine.plan(data, pillow_format="PNG", tile=0, available=(tiles + whole) // 2)
    assert 0 < plan.tile < 1000 and plan.needed <= (tiles + whole) // 2
    assert plan.notes == (f"the whole image would not fit in the {memory.gib(plan.available or 0)} available: "
                          f"using {plan.tile}-pixel tiles",)  # fmt: skip


def test_jpeg_optimize_is_dropped_when_only_it_does_not_fit(engine: Engine) -> None:
    data = image(1500, 1500)
    small = engine.plan(data, pillow_format="JPEG", tile=MIN_TILE, available=64 * GIB)
    optimized = small.needed
    plain = optimized - 7 * 6000 * 6000  # what optimize adds per output pixel
    plan = engine.plan(data, pillow_format="JPEG", tile=MIN_TILE, available=(plain + optimized) // 2)
    assert plan.optimize is False and plan.tile == MIN_TILE
    assert plan.notes[-1].startswith("JPEG written without optimize: it needs more than the ")


def test_nothing_fits_fails_before_upscaling_with_one_line(engine: Engine) -> None:
    with pytest.raises(EngineError) as info:
        engine.plan(image(3000, 3000), pillow_format="JPEG", tile=0, available=GIB)
    message = str(info.value)
    assert message.startswith("not enough memory for the 12000×12000 result: it needs about ")
    assert message.endswith(", 1.0 GiB available") and "\n" not in message


@pytest.mark.parametrize(
    ("size", "fmt", "reason"),
    [
        ((5000, 3), "webp", "image is 20000×12, too large for WEBP (at most 16383 pixels per side)"),
        ((17000, 4), "jpg", "image is 68000×16, too large for JPEG (at most 65500 pixels per side)"),
    ],
)
def test_output_format_limits_fail_before_any_network_work(
    size: tuple[int, int], fmt: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "wide.png"
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(src)
    ran: list[object] = []
    monkeypatch.setattr(Upscaler, "_forward", lambda self, x: ran.append(x))
    out, err = io.StringIO(), io.StringIO()
    code = run(
        [str(src), "-o", str(tmp_path / "out"), "--format", fmt, "--weights", str(WEIGHTS)],
        stdout=out,
        stderr=err,
    )
    assert code == 1 and out.getvalue() == ""
    assert err.getvalue() == f"error: {src}: {reason}; save as PNG or TIFF\n"
    assert ran == []  # refused before the network saw a pixel
    assert not (tmp_path / "out").exists()  # nothing written, and the empty folder it made removed


def test_tiff_over_4_gib_is_refused_up_front(engine: Engine) -> None:
    with pytest.raises(ImageError, match=r"^image is 28000×28000, too large for TIFF \(4\.4 GiB of pixels"):
        engine.plan(image(7000, 7000, depth=16), pillow_format="TIFF", available=1 << 50)


def test_cli_reports_what_it_adapted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tight budget: the result is still written, smaller tiles and no optimize, and said so."""
    src = tmp_path / "photo.png"
    y, x = np.mgrid[0:90, 0:120]
    Image.fromarray(np.stack([x * 2, y * 2, x + y], axis=2).astype(np.uint8)).save(src)
    data = read_image(src)
    eng = Engine(EngineSettings(weights=WEIGHTS, device="cpu", precision="fp32", tile=0))
    roomy = eng.plan(data, pillow_format="JPEG", tile=MIN_TILE, available=1 << 50).needed
    budget = roomy - 4 * 480 * 360  # less than optimize needs at the smallest tile
    monkeypatch.setattr(memory, "available_bytes", lambda root=Path("/"): budget)
    out, err = io.StringIO(), io.StringIO()
    dst = tmp_path / "photo.jpg"
    code = run([str(src), "-o", str(dst), "--tile", "0", "--weights", str(WEIGHTS)], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    notes = err.getvalue().splitlines()
    assert notes == [
        f"note: {src}: the whole image would not fit in the {memory.gib(budget)} available: using 32-pixel tiles",
        f"note: {src}: JPEG written without optimize: it needs more than the {memory.gib(budget)} available",
    ]
    with Image.open(dst) as im:
        assert im.size == (480, 360)
        pixels = np.asarray(im)
    # Same pixels as with optimize (Huffman tables change the size, never the image).
    monkeypatch.undo()
    again = tmp_path / "optimized.jpg"
    assert (
        run(
            [str(src), "-o", str(again), "--weights", str(WEIGHTS)],
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(again)), pixels)
    assert again.stat().st_size < dst.stat().st_size


# --------------------------------------------------------------------------------------------
# The real thing: a memory-limited cgroup


def _memory_cgroup_root() -> tuple[int, Path] | None:
    """(version, folder) where a child memory cgroup can be made, or None."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    v1 = None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        point = Path(fields[4])
        if tail[0] == "cgroup2":
            try:
                if "memory" in (point / "cgroup.subtree_control").read_text().split():
                    return 2, point
            except OSError:
                pass
        elif tail[0] == "cgroup" and "memory" in tail[2].split(","):
            v1 = (1, point)
    return v1


@pytest.fixture
def limited_cgroup() -> Iterator[tuple[int, Path]]:
    found = _memory_cgroup_root()
    if found is None:
        pytest.skip("no cgroup memory controller to delegate on this machine")
    version, base = found
    folder = base / f"fmen-test-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir()
        (folder / ("memory.max" if version == 2 else "memory.limit_in_bytes")).write_text(str(1 * GIB))
    except OSError as exc:
        pytest.skip(f"cannot create a memory-limited cgroup here ({exc.strerror}): needs root and delegation")
    try:
        yield version, folder
    finally:
        with contextlib.suppress(OSError):  # already gone, or a stray process still in it
            folder.rmdir()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups are Linux only")
def test_job_too_large_for_the_cgroup_fails_with_one_line_instead_of_being_killed(
    limited_cgroup: tuple[int, Path], tmp_path: Path
) -> None:
    """3000² ×4 to JPEG needs about 2 GiB; under a 1 GiB limit it was killed with no message."""
    _version, folder = limited_cgroup
    src = tmp_path / "big.png"
    y, x = np.mgrid[0:3000, 0:3000]
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)).save(src)
    dst = tmp_path / "big.jpg"
    procs = folder / "cgroup.procs"

    def enter_cgroup() -> None:  # runs in the child, before it starts Python
        procs.write_text(str(os.getpid()))

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmen_gui.cli",
            str(src),
            "-o",
            str(dst),
            "--weights",
            str(WEIGHTS),
            "--tile",
            "0",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=enter_cgroup,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {src}: not enough memory for the 12000×12000 result: it needs about ")
    assert lines[0].endswith(" GiB available")
    assert not dst.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]
