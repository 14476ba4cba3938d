"""Nothing lost, nothing crashes: the command line against bad inputs, faults and hostile weights.

Every input is generated here (no binary blobs). The unit-level behaviour of the reader, the
writer and the weights loader is tested in test_images.py and test_weights.py; these tests drive
the same cases through ``fmen-upscale`` (in-process) and :class:`Engine`, the way a user meets them:
one clear ``error: PATH: reason`` line per bad input, no traceback, inputs untouched, no temporary
file left anywhere and the rest of the batch still done. See docs/reliability.md for the table.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pathlib
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui import atomicfiles, cli
from fmen_gui.arch.fmen import FMEN, FMENConfig
from fmen_gui.cli import run
from fmen_gui.engine import images
from fmen_gui.engine.images import read_image
from fmen_gui.engine.pipeline import Engine, EngineSettings, Upscaler
from fmen_gui.errors import Cancelled
from fmen_gui.weights.loading import save_safetensors
from fmen_gui.weights.registry import user_weights_dir
from tests.conftest import NJUJET, need

RNG = np.random.default_rng(20240601)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny images run fastest on one thread, above all on a busy machine; put it back after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Helpers


def _cli(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run([str(a) for a in args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str | None]:
    """Every entry under ``folder``: file -> hash, folder -> None (so new or changed ones show)."""
    return {
        str(p.relative_to(folder)): (sha256(p) if p.is_file() else None) for p in sorted(folder.rglob("*"))
    }


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of the atomic writer (``.NAME.*.part``) or any other hidden file."""
    return [p for p in folder.rglob("*") if p.name.endswith(".part") or p.name.startswith(".")]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def png_by_hand(width: int, height: int, depth: int, colour_type: int, rows: bytes | None = None) -> bytes:
    """A PNG written byte by byte: signature, IHDR (correct CRC), one IDAT, IEND."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    idat = zlib.compress(rows if rows is not None else b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def png16_rgb(pixels: np.ndarray) -> bytes:
    """16-bit RGB PNG (which Pillow cannot write): rows of filter byte 0 + big-endian samples."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))
    return png_by_hand(width, height, 16, 2, raw)


def png_header(blob: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) straight from an IHDR, independent of Pillow."""
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and blob[12:16] == b"IHDR"
    width, height, depth, colour_type = struct.unpack(">IIBB", blob[16:26])
    return width, height, depth, colour_type


def noise(height: int, width: int, channels: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, channels), dtype=np.uint8)


def save_noise(path: Path, height: int = 7, width: int = 5, **params: Any) -> Path:
    Image.fromarray(noise(height, width)).save(path, **params)
    return path


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def permissions_bite() -> bool:
    """Whether chmod really locks us out: POSIX and not root (root reads and writes regardless)."""
    return os.name == "posix" and os.geteuid() != 0


def deny_reading(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """An unreadable file: chmod 000 where that bites, else the reader's open() is refused."""
    if permissions_bite():
        path.chmod(0)
        return
    real_open = open

    def guarded_open(file: object, *args: object, **kwargs: object) -> object:
        if isinstance(file, str | os.PathLike) and Path(file) == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(images, "open", guarded_open, raising=False)


# --------------------------------------------------------------------------------------------
# Bad (and odd but valid) inputs, all in one batch


@dataclass(frozen=True)
class Ok:
    """A correct output: name in the output folder, (width, height), Pillow mode, format."""

    name: str
    size: tuple[int, int]
    mode: str
    fmt: str
    check: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class Fails:
    """Exactly one ``error: PATH: ...`` line containing ``reason``; no output."""

    reason: str


@dataclass(frozen=True)
class Skipped:
    """A folder input with nothing to upscale: no line, no output (folders are scanned)."""


Expectation = Ok | Fails | Skipped


def _check_16bit_rgb(out: Path) -> None:
    assert png_header(out.read_bytes())[2:] == (16, 2)  # 16 bits, RGB
    assert read_image(out).rgb.dtype == np.uint16


def _check_16bit_gray(out: Path) -> None:
    assert png_header(out.read_bytes())[2:] == (16, 0)  # 16 bits, gray


def _check_palette_alpha(out: Path) -> None:
    alpha = np.array(Image.open(out))[..., 3]
    # the left two source columns were the transparent index, the right three opaque
    assert alpha[:, :4].max() == 0 and alpha[:, -6:].min() == 255


def _check_la(out: Path) -> None:
    assert np.all(np.array(Image.open(out))[..., 1] == 128)


def _check_first_frame(out: Path) -> None:
    rgb = np.array(Image.open(out)).astype(float)
    assert rgb[..., 0].mean() > 200 and rgb[..., 2].mean() < 60  # red frame 1, not the blue frame 2


def _check_upright(out: Path) -> None:
    assert Image.open(out).getexif().get(0x0112, 1) == 1  # pixels turned, tag reset


def _build_batch(src: Path, out: Path) -> dict[str, Expectation]:
    """Write every input into ``src``; return input name -> what must happen to it."""
    cases: dict[str, Expectation] = {}

    def ok(name: str, size: tuple[int, int], mode: str = "RGB", check: Callable | None = None) -> None:
        stem, suffix = name.rsplit(".", 1)
        ext = {"gif": "png", "bmp": "png"}.get(suffix, suffix)
        fmt = {"png": "PNG", "jpg": "JPEG"}[ext]
        cases[name] = Ok(f"{stem}_fmen-s_x4.{ext}", (size[0] * 4, size[1] * 4), mode, fmt, check)

    # The two good images the batch must still produce.
    save_noise(src / "good a.png")
    ok("good a.png", (5, 7))
    save_noise(src / "good-b.jpg", quality=95)
    ok("good-b.jpg", (5, 7))

    # Valid but odd.
    save_noise(src / "one.png", 1, 1)
    ok("one.png", (1, 1))
    save_noise(src / "two by three.png", 3, 2)
    ok("two by three.png", (2, 3))
    deep = RNG.integers(0, 65536, (7, 5, 3), dtype=np.uint16)
    (src / "deep16.png").write_bytes(png16_rgb(deep))
    ok("deep16.png", (5, 7), check=_check_16bit_rgb)
    Image.fromarray(RNG.integers(0, 65536, (7, 5), dtype=np.uint16)).save(src / "gray16.png")
    ok("gray16.png", (5, 7), mode="I;16", check=_check_16bit_gray)
    Image.new("CMYK", (5, 7), (10, 200, 30, 40)).save(src / "cmyk.jpg")
    ok("cmyk.jpg", (5, 7))
    index = np.zeros((7, 5), np.uint8)
    index[:, 2:] = 1
    palette = Image.frombytes("P", (5, 7), index.tobytes())
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.save(src / "palette alpha.png", transparency=0)
    ok("palette alpha.png", (5, 7), mode="RGBA", check=_check_palette_alpha)
    gray_alpha = np.dstack([noise(7, 5, 1)[..., 0], np.full((7, 5), 128, np.uint8)])
    Image.fromarray(gray_alpha, "LA").save(src / "la.png")
    ok("la.png", (5, 7), mode="LA", check=_check_la)
    frames = [Image.new("RGB", (5, 7), colour) for colour in ("red", "blue")]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    ok("anim.gif", (5, 7), check=_check_first_frame)
    save_noise(src / "rotated.jpg", 7, 5, exif=exif_orientation(6))  # stored 5 wide, 7 high
    ok("rotated.jpg", (7, 5), check=_check_upright)  # shown turned: 7 wide, 5 high
    save_noise(src / "holiday photo é 日本.png")
    ok("holiday photo é 日本.png", (5, 7))
    (src / "folder.png").mkdir()  # a folder where a file is expected: scanned, not opened
    save_noise(src / "folder.png" / "inner.png")
    cases["folder.png/inner.png"] = Ok("inner_fmen-s_x4.png", (20, 28), "RGB", "PNG")
    (src / "empty folder.jpg").mkdir()
    cases["empty folder.jpg"] = Skipped()

    # Broken.
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
    cases["missing.png"] = Fails("file not found")  # named on the command line, never created
    save_noise(src / "locked.png")
    cases["locked.png"] = Fails("permission denied")
    # A folder squatting on an output's name: refused (exists), the folder left alone.
    save_noise(src / "blocked.png")
    (out / "blocked_fmen-s_x4.png").mkdir(parents=True)
    cases["blocked.png"] = Fails("already exists")
    return cases


@dataclass
class Batch:
    src: Path
    out: Path
    cases: dict[str, Expectation]
    code: int
    stdout: str
    stderr: str
    before: dict[str, str | None]
    after: dict[str, str | None]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    """Run ``fmen-upscale`` once over every case plus the good images."""
    weights = need(NJUJET)
    root = tmp_path_factory.mktemp("batch")
    src, out = root / "in", root / "out"
    src.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMEN_DATA_DIR", str(root / "userdata"))  # module scope: the autouse one is not up yet
        cases = _build_batch(src, out)
        before = snapshot(src)
        deny_reading(mp, src / "locked.png")
        try:
            inputs = [src / name for name in dict.fromkeys(n.split("/")[0] for n in cases)]
            code, stdout, stderr = _cli(*inputs, "-o", out, "--weights", weights)
        finally:
            (src / "locked.png").chmod(0o644)
    yield Batch(src, out, cases, code, stdout, stderr, before, snapshot(src))


def test_batch_exit_status_and_no_traceback(batch: Batch) -> None:
    assert batch.code == 1
    assert "Traceback" not in batch.stdout + batch.stderr
    errors = [c for c in batch.cases.values() if isinstance(c, Fails)]
    lines = batch.stderr.splitlines()
    assert len(lines) == len(errors) and all(line.startswith("error: ") for line in lines), batch.stderr
    successes = [c for c in batch.cases.values() if isinstance(c, Ok)]
    assert len(batch.stdout.splitlines()) == len(successes)


def test_batch_leaves_inputs_byte_for_byte_unchanged(batch: Batch) -> None:
    assert batch.after == batch.before  # same names, same bytes: nothing added, nothing changed


def test_batch_leaves_no_temporary_files(batch: Batch) -> None:
    assert leftovers(batch.src) == [] and leftovers(batch.out) == []
    expected = {c.name for c in batch.cases.values() if isinstance(c, Ok)} | {"blocked_fmen-s_x4.png"}
    assert {p.name for p in batch.out.iterdir()} == expected
    assert (batch.out / "blocked_fmen-s_x4.png").is_dir()
    assert list((batch.out / "blocked_fmen-s_x4.png").iterdir()) == []


CASE_NAMES = [
    "good a.png",
    "good-b.jpg",
    "one.png",
    "two by three.png",
    "deep16.png",
    "gray16.png",
    "cmyk.jpg",
    "palette alpha.png",
    "la.png",
    "anim.gif",
    "rotated.jpg",
    "holiday photo é 日本.png",
    "folder.png/inner.png",
    "empty folder.jpg",
    "zero.png",
    "cut.png",
    "cut.jpg",
    "notes.png",
    "page.jpg",
    "bomb.png",
    "missing.png",
    "locked.png",
    "blocked.png",
]


def test_case_list_is_complete(batch: Batch) -> None:
    assert sorted(batch.cases) == sorted(CASE_NAMES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_batch_outcome(batch: Batch, name: str) -> None:
    expect = batch.cases[name]
    path = batch.src / name
    mentions = [line for line in batch.stderr.splitlines() if line.startswith(f"error: {path}: ")]
    if isinstance(expect, Fails):
        assert len(mentions) == 1, batch.stderr
        assert expect.reason in mentions[0]
        assert "\n" not in mentions[0]
        return
    assert mentions == [], batch.stderr
    if isinstance(expect, Skipped):
        assert str(path) not in batch.stdout + batch.stderr
        return
    result = batch.out / expect.name
    assert f"{path} -> {result}" in batch.stdout
    with Image.open(result) as im:
        assert (im.size, im.mode, im.format) == (expect.size, expect.mode, expect.fmt)
    if expect.check is not None:
        expect.check(result)


# --------------------------------------------------------------------------------------------
# Faults while writing


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    return [save_noise(folder / f"{name}.png") for name in ("a", "b", "c")]


def _result(out: Path, src: Path) -> Path:
    return out / f"{src.stem}_fmen-s_x4.png"


def test_read_only_output_folder(
    njujet: Path, three: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(three[0].parent)
    if not permissions_bite():  # e.g. root: refuse the temp file as the kernel would
        real_mkstemp = atomicfiles.tempfile.mkstemp

        def read_only(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:
            if dir is not None and Path(dir) == out:  # type: ignore[arg-type]
                raise PermissionError(errno.EACCES, "Permission denied")
            return real_mkstemp(*args, dir=dir, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(atomicfiles.tempfile, "mkstemp", read_only)
    else:
        out.chmod(0o555)
    try:
        code, stdout, stderr = _cli(*three, "-o", out, "--weights", njujet)
    finally:
        out.chmod(0o755)
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 3
    for src, line in zip(three, lines, strict=True):
        assert line.startswith(f"error: {src}: permission denied")
    assert list(out.iterdir()) == []
    assert snapshot(three[0].parent) == before


def _full_encode(real: Callable[..., None]) -> Callable[..., None]:
    def encode(fh: io.BufferedWriter, *args: object) -> None:
        fh.write(b"\x89PNG\r\n\x1a\n half of an image")  # a fragment reaches the temp file first
        raise OSError(errno.ENOSPC, "No space left on device")

    return encode


def _full_fsync(real: Callable[[int], None]) -> Callable[[int], None]:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    return fsync


def _full_replace(real: Callable[..., None]) -> Callable[..., None]:
    def replace(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    return replace


@pytest.mark.parametrize(
    ("target", "name", "fault"),
    [
        (images, "_encode", _full_encode),
        (os, "fsync", _full_fsync),
        (os, "link", _full_replace),
    ],
    ids=["while-encoding", "on-fsync", "on-link"],
)
def test_disk_full_fails_one_file_and_the_batch_goes_on(
    njujet: Path,
    three: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: object,
    name: str,
    fault: Callable,
) -> None:
    """The disk is full while the first file is written, then space returns for the others."""
    out = tmp_path / "out"
    real = getattr(target, name)
    failing = fault(real)
    full = [True]

    def maybe_full(*args: object, **kwargs: object) -> object:
        if full[0]:
            full[0] = False
            return failing(*args, **kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, maybe_full)
    code, _stdout, stderr = _cli(*three, "-o", out, "--weights", njujet)
    assert code == 1 and "Traceback" not in stderr
    assert stderr.splitlines() == [f"error: {three[0]}: no space left on device"]
    assert leftovers(out) == [] and leftovers(three[0].parent) == []
    assert not _result(out, three[0]).exists()
    for src in three[1:]:
        assert Image.open(_result(out, src)).size == (20, 28)
    monkeypatch.undo()
    code, _stdout, stderr = _cli(three[0], "-o", out, "--weights", njujet)
    assert code == 0, stderr
    assert Image.open(_result(out, three[0])).size == (20, 28)


def test_output_name_taken_is_never_overwritten_without_asking(
    njujet: Path, three: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    taken = _result(out, three[0])
    taken.write_bytes(b"precious earlier result")
    code, _stdout, stderr = _cli(three[0], "-o", out, "--weights", njujet)
    assert code == 1
    assert stderr == f"error: {three[0]}: output already exists: {taken} (use --overwrite to replace it)\n"
    assert taken.read_bytes() == b"precious earlier result"

    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: object, dst: object) -> None:
        renames.append((Path(src), Path(dst)))  # type: ignore[arg-type]
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", spy)
    code, _stdout, stderr = _cli(three[0], "-o", out, "--weights", njujet, "--overwrite")
    assert code == 0, stderr
    # Replaced by renaming a complete hidden temp file from the same folder over it: atomic.
    assert len(renames) == 1 and renames[0][1] == taken
    temp = renames[0][0]
    assert temp.parent == out and temp.name.startswith(f".{taken.name}.") and temp.name.endswith(".part")
    assert Image.open(taken).size == (20, 28)
    assert leftovers(out) == []


def test_overwrite_never_replaces_an_input_or_a_folder(
    njujet: Path, three: list[Path], tmp_path: Path
) -> None:
    before = snapshot(three[0].parent)
    # --name {stem} beside the input names the input itself.
    code, _stdout, stderr = _cli(three[0], "--name", "{stem}", "--overwrite", "--weights", njujet)
    assert code == 1
    assert stderr == f"error: {three[0]}: refusing to write the output onto an input file\n"
    out = tmp_path / "out"
    (out / "b_fmen-s_x4.png").mkdir(parents=True)
    code, _stdout, stderr = _cli(three[1], "-o", out, "--overwrite", "--weights", njujet)
    assert code == 1
    assert stderr == f"error: {three[1]}: output path is a directory\n"
    assert (out / "b_fmen-s_x4.png").is_dir() and leftovers(out) == []
    assert snapshot(three[0].parent) == before


# --------------------------------------------------------------------------------------------
# Cancel and out of memory, through the Engine the CLI and the GUI worker share


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(EngineSettings(weights=need(NJUJET), device="cpu", precision="fp32", tile=32))


@pytest.fixture(scope="module")
def seventy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70×70 pixels: a 3×3 grid of 32-pixel tiles."""
    return save_noise(tmp_path_factory.mktemp("seventy") / "seventy.png", 70, 70)


@pytest.mark.parametrize("k", [0, 1, 5, 9])
def test_cancel_at_tile_k_writes_nothing_and_the_next_job_runs(
    engine: Engine, seventy: Path, tmp_path: Path, k: int
) -> None:
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == k:
            cancel.set()

    dst = tmp_path / "cancelled.png"
    with pytest.raises(Cancelled):
        engine.upscale_file(seventy, dst, progress=progress, cancel=cancel)
    assert seen[-1] == (k, 9)  # stopped right after tile k (k = 9: after the last, before writing)
    assert not dst.exists() and list(tmp_path.iterdir()) == []
    after = tmp_path / "after.png"
    result = engine.upscale_file(seventy, after, cancel=threading.Event())
    assert result.out_size == (280, 280)
    whole = engine.upscaler.upscale_rgb(read_image(seventy).rgb, tile=0)
    assert np.array_equal(np.array(Image.open(after)), whole)


def test_ctrl_c_in_the_cli_writes_nothing(
    njujet: Path, three: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = save_noise(three[0].parent / "big.png", 70, 70)

    def interrupt(self: object, done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._Progress, "__call__", interrupt)
    out = tmp_path / "out"
    code, _stdout, stderr = _cli(big, *three, "-o", out, "--tile", "32", "--weights", njujet)
    assert code == 130
    assert stderr == "interrupted: the current output was not written\n"
    assert not out.exists()  # created for the batch, removed again: nothing (not even a .part) in it


def _oom_above(limit: int, attempts: list[tuple[int, int]]) -> Callable:
    """An Upscaler._forward that fails like the CPU allocator for inputs larger than ``limit``."""
    real = Upscaler._forward

    def forward(self: Upscaler, x: torch.Tensor) -> torch.Tensor:
        attempts.append((int(x.shape[2]), int(x.shape[3])))
        if max(x.shape[2:]) > limit:
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB")
        return real(self, x)

    return forward


def test_out_of_memory_through_the_cli_halves_the_tile_and_stays_exact(
    njujet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = save_noise(tmp_path / "wide.png", 40, 121)
    small = save_noise(tmp_path / "small.png", 9, 9)
    code, _stdout, stderr = _cli(src, "-o", tmp_path / "reference", "--tile", "0", "--weights", njujet)
    assert code == 0, stderr
    reference = np.array(Image.open(tmp_path / "reference" / "wide_fmen-s_x4.png"))

    attempts: list[tuple[int, int]] = []
    # FMEN-S sees 34 pixels around a tile: only 32-pixel tiles (100 with context, 101 where a
    # box at an odd-sized edge starts one pixel early to keep its corner even) fit.
    monkeypatch.setattr(Upscaler, "_forward", _oom_above(32 + 2 * 34 + 1, attempts))
    code, _stdout, stderr = _cli(src, "-o", tmp_path / "oom", "--tile", "0", "--weights", njujet)
    assert code == 0, stderr
    assert np.array_equal(np.array(Image.open(tmp_path / "oom" / "wide_fmen-s_x4.png")), reference)
    assert attempts[0] == (40, 121) and len(attempts) > 2  # the whole image failed, smaller tiles did not

    # Not even the smallest tile fits: that image fails with one line, the next one is done.
    monkeypatch.setattr(Upscaler, "_forward", _oom_above(50, []))
    code, _stdout, stderr = _cli(src, small, "-o", tmp_path / "tight", "--tile", "0", "--weights", njujet)
    assert code == 1
    assert stderr.startswith(f"error: {src}: out of memory on CPU") and stderr.count("\n") == 1
    assert stderr.endswith("even with 32-pixel tiles\n")
    assert [p.name for p in (tmp_path / "tight").iterdir()] == ["small_fmen-s_x4.png"]


# --------------------------------------------------------------------------------------------
# Untrusted weights through --weights


class TouchOnLoad:
    """Unpickling this would create ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (self.marker,))


EVIL_MODULE = "fmen_reliability_evil"


def plant_evil_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put an importable module on sys.path whose import creates a marker file; return the marker.

    A pickle that names it would run code on load; the marker proves whether that happened.
    """
    marker = tmp_path / "MARKER"
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / f"{EVIL_MODULE}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\ndef boom():\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    return marker


def _weights_cases(folder: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    """name -> (weights file, a fragment its one error line must contain)."""
    official = need(NJUJET).read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, fragment: str) -> None:
        (folder / name).write_bytes(data)
        cases[name] = (folder / name, fragment)

    damaged = bytearray(official)
    damaged[-200:] = RNG.integers(0, 256, 200, dtype=np.uint8).tobytes()  # the zip directory
    put("corrupt.pt", bytes(damaged), "truncated or corrupt archive")
    put("truncated.pt", official[: len(official) // 2], "truncated or corrupt archive")
    put("empty.pth", b"", "the file is empty")
    put("error-page.pth", b"<html><body>403 Forbidden</body></html>", "unrecognised contents")
    linear = folder / "linear.pt"
    torch.save(torch.nn.Linear(4, 4).state_dict(), linear)
    cases["linear.pt"] = (linear, "unsupported model: no known architecture matches")
    # A raw pickle whose first act would import a module that creates the marker file.
    put("evil-import.pth", b"\x80\x02c" + EVIL_MODULE.encode() + b"\nboom\n)R.", "unsafe pickle")
    evil_zip = folder / "evil-zip.pt"
    torch.save({"head.weight": torch.zeros(1), "payload": TouchOnLoad(marker)}, evil_zip)
    cases["evil-zip.pt"] = (evil_zip, "unsafe pickle")
    huge = folder / "huge.pth"
    with open(huge, "wb") as fh:
        fh.truncate(3 * 2**30)  # sparse: 3 GB on paper, nothing on disk
    cases["huge.pth"] = (huge, "file too large (3.0 GB; the limit is 2.0 GB)")
    (folder / "folder.pt").mkdir()
    cases["folder.pt"] = (folder / "folder.pt", "is a folder")
    return cases


WEIGHTS_CASES = [
    "corrupt.pt",
    "truncated.pt",
    "empty.pth",
    "error-page.pth",
    "linear.pt",
    "evil-import.pth",
    "evil-zip.pt",
    "huge.pth",
    "folder.pt",
]


@pytest.mark.parametrize("case", WEIGHTS_CASES)
def test_untrusted_weights_give_one_line_and_run_nothing(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = plant_evil_module(tmp_path, monkeypatch)
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    path, fragment = _weights_cases(weights_dir, marker)[case]
    stat_before = path.stat()
    image = save_noise(tmp_path / "a.png")
    out = tmp_path / "out"

    code, stdout, stderr = _cli(image, "-o", out, "--weights", path)

    assert code == 1 and stdout == ""
    assert stderr.startswith(f"error: {path}: ") and stderr.count("\n") == 1, stderr
    assert fragment in stderr and "Traceback" not in stderr
    assert not marker.exists() and EVIL_MODULE not in sys.modules
    assert not out.exists()
    user = user_weights_dir()
    assert not user.exists() or list(user.iterdir()) == []  # nothing installed or copied
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (stat_before.st_size, stat_before.st_mtime_ns)


@pytest.fixture
def tiny_x2(tmp_path: Path) -> Path:
    """An FMEN-family ×2 checkpoint (not one of the presets), as a trained custom model would be."""
    torch.manual_seed(0)
    model = FMEN(FMENConfig(channels=8, mid_channels=6, down_blocks=1, up_blocks=(1, 1), scale=2))
    path = tmp_path / "tiny_x2.safetensors"
    save_safetensors(model, path)
    return path


@pytest.mark.parametrize("which", ["x4-file-asked-x2", "x2-file-asked-x4"])
def test_checkpoint_of_the_wrong_scale_is_a_usage_error(
    which: str, njujet: Path, tiny_x2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights, asked, actual = (njujet, 2, 4) if which == "x4-file-asked-x2" else (tiny_x2, 4, 2)
    image = save_noise(tmp_path / "a.png")
    with pytest.raises(SystemExit) as info:
        _cli(image, "-o", tmp_path / "out", "--weights", weights, "--scale", asked)
    assert info.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert message == (
        f"fmen-upscale: error: --scale {asked} conflicts with {weights}, which is a ×{actual} model"
    )
    assert not (tmp_path / "out").exists()


def test_custom_checkpoint_scale_comes_from_the_file(tiny_x2: Path, tmp_path: Path) -> None:
    image = save_noise(tmp_path / "a.png")
    code, _stdout, stderr = _cli(image, "-o", tmp_path / "out", "--weights", tiny_x2)
    assert code == 0, stderr
    # custom weights are named after --model (default fmen-s)
    assert Image.open(tmp_path / "out" / "a_fmen-s_x2.png").size == (10, 14)


# --------------------------------------------------------------------------------------------
# Regressions found while writing these tests


def test_undecodable_and_control_character_names_give_one_line_each(njujet: Path, tmp_path: Path) -> None:
    """A name that is not UTF-8 once crashed a strict UTF-8 stdout with a traceback mid-batch."""
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsencode(folder)
    try:
        with open(os.path.join(raw, b"caf\xe9.png"), "wb") as fh:  # Latin-1 "café", from an old zip
            Image.fromarray(noise(7, 5)).save(fh, format="PNG")
        open(os.path.join(raw, b"bad\xff.png"), "wb").close()
        (folder / "new\nline.png").write_bytes(b"")
    except (OSError, ValueError):
        pytest.skip("this file system only takes UTF-8 names without newlines")
    before = snapshot(folder)
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="\n")
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="\n")
    code = run(
        [str(folder), "-o", str(tmp_path / "out"), "--weights", str(njujet)], stdout=stdout, stderr=stderr
    )
    stdout.seek(0)
    stderr.seek(0)
    out_text, err_text = stdout.read(), stderr.read()
    assert code == 1
    assert out_text.count("\n") == 1 and "caf\\udce9.png -> " in out_text
    assert sorted(err_text.splitlines()) == [
        f"error: {folder}/bad\\udcff.png: empty file",
        f"error: {folder}/new\\nline.png: empty file",
    ]
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9_fmen-s_x4.png"]
    assert snapshot(folder) == before


@pytest.mark.parametrize("where", ["result", "alpha"])
def test_a_result_too_large_for_memory_fails_alone(
    where: str, njujet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Allocating the upscaled image (or its alpha) can fail outright; that once escaped as a traceback."""
    from fmen_gui.engine import pipeline

    big = tmp_path / "big.png"
    Image.fromarray(noise(7, 5, 4)).save(big)  # RGBA
    small = save_noise(tmp_path / "small.png", 3, 3)
    if where == "result":
        real_empty = np.empty

        def empty(shape: object, *args: object, **kwargs: object) -> np.ndarray:
            if shape == (28, 20, 3):
                raise MemoryError("Unable to allocate 9.6 GiB for an array")
            return real_empty(shape, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(pipeline.np, "empty", empty)
        reason = "not enough memory for the 20×28 result"
    else:

        def resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
            raise MemoryError

        monkeypatch.setattr(pipeline, "resize_alpha", resize_alpha)
        reason = "not enough memory to upscale the alpha channel"
    code, _stdout, stderr = _cli(big, small, "-o", tmp_path / "out", "--weights", njujet)
    assert code == 1
    assert stderr == f"error: {big}: {reason}\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["small_fmen-s_x4.png"]
