"""The final step of every write (never replace without the word) and the sweep of killed runs' temp files.

Real files in a temporary folder and real processes for the sweep's "is the writer alive"
question: a child that has exited is dead, one that sleeps is alive.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmen_gui import atomicfiles
from fmen_gui.atomicfiles import create_temp, is_temp_name, numbered_names, publish, sweep_stale
from fmen_gui.weights.files import atomic_write_bytes, atomic_writer

posix_only = pytest.mark.skipif(os.name != "posix", reason="the sweep judges PIDs on POSIX only")


def _temp_with(folder: Path, name: str, content: bytes) -> Path:
    fd, temp = create_temp(folder / name)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    return temp


def test_temp_names_are_hidden_ours_and_carry_the_pid(tmp_path: Path) -> None:
    fd, temp = create_temp(tmp_path / "photo_fmen-s_x4.png")
    os.close(fd)
    assert temp.parent == tmp_path and temp.name.startswith(".photo_fmen-s_x4.png.fmen-tmp-")
    assert f"-{os.getpid()}-" in temp.name and temp.name.endswith(".part")
    assert is_temp_name(temp.name)
    long_fd, long_temp = create_temp(tmp_path / ("x" * 250 + ".png"))  # near the name limit
    os.close(long_fd)
    assert is_temp_name(long_temp.name) and len(long_temp.name) < 200
    for other in (".photo.png.abc123.part", "photo.png", ".photo.png.fmen-tmp-12-zz.part", "x.part"):
        assert not is_temp_name(other)


def test_publish_refuses_an_existing_file_and_keeps_the_temp(tmp_path: Path) -> None:
    final = tmp_path / "out.png"
    final.write_bytes(b"someone else's")
    temp = _temp_with(tmp_path, "out.png", b"mine")
    with pytest.raises(FileExistsError):
        publish(temp, final, overwrite=False)
    assert final.read_bytes() == b"someone else's" and temp.read_bytes() == b"mine"
    publish(temp, final, overwrite=True)  # the user's word
    assert final.read_bytes() == b"mine" and not temp.exists()


def test_publish_to_a_free_name(tmp_path: Path) -> None:
    temp = _temp_with(tmp_path, "out.png", b"mine")
    publish(temp, tmp_path / "out.png", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"mine"


@pytest.fixture
def no_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without hard links (FAT, exFAT, some network mounts) answers EPERM."""

    def link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(atomicfiles.os, "link", link)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_without_hard_links_the_rename_refuses(tmp_path: Path, no_hard_links: None) -> None:
    final = tmp_path / "out.png"
    final.write_bytes(b"someone else's")
    temp = _temp_with(tmp_path, "out.png", b"mine")
    with pytest.raises(FileExistsError):
        publish(temp, final, overwrite=False)
    assert final.read_bytes() == b"someone else's" and temp.exists()
    free = tmp_path / "free.png"
    publish(temp, free, overwrite=False)
    assert free.read_bytes() == b"mine" and not temp.exists()


def test_without_hard_links_or_renameat2_the_name_is_reserved_first(
    tmp_path: Path, no_hard_links: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomicfiles, "_rename_noreplace", lambda temp, final: False)
    final = tmp_path / "out.png"
    final.write_bytes(b"someone else's")
    temp = _temp_with(tmp_path, "out.png", b"mine")
    with pytest.raises(FileExistsError):
        publish(temp, final, overwrite=False)
    assert final.read_bytes() == b"someone else's"
    publish(temp, tmp_path / "free.png", overwrite=False)
    assert (tmp_path / "free.png").read_bytes() == b"mine" and not temp.exists()


def test_numbered_names() -> None:
    names = numbered_names(Path("/x/a_fmen-s_x4.png"))
    assert [next(names).name for _ in range(3)] == [
        "a_fmen-s_x4.png",
        "a_fmen-s_x4 (2).png",
        "a_fmen-s_x4 (3).png",
    ]


def test_weights_writer_replaces_its_own_files_only_when_told(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    atomic_write_bytes(manifest, b"[1]")
    atomic_write_bytes(manifest, b"[1, 2]")  # a manifest is rewritten: replacing is the point
    assert manifest.read_bytes() == b"[1, 2]"
    with pytest.raises(FileExistsError), atomic_writer(manifest, overwrite=False) as fh:
        fh.write(b"lost?")
    assert manifest.read_bytes() == b"[1, 2]" and sorted(tmp_path.iterdir()) == [manifest]


# --------------------------------------------------------------------------------------------
# Sweeping temp files of killed runs


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The id of a process that is running for the whole test."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        yield child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()


def _named(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(b"partial image")
    return path


@posix_only
def test_sweep_removes_only_temp_files_of_dead_processes_of_this_app(
    tmp_path: Path, dead_pid: int, live_pid: int
) -> None:
    host = atomicfiles._host_tag()
    stale = _named(tmp_path, f".a.png.fmen-tmp-{dead_pid}-{host}-k2j4h1x9.part")
    running = _named(tmp_path, f".b.png.fmen-tmp-{live_pid}-{host}-9s8d7f6g.part")
    fd, mine = create_temp(tmp_path / "c.png")  # this process is writing it right now
    os.close(fd)
    elsewhere = _named(tmp_path, f".d.png.fmen-tmp-{dead_pid}-00000000-abcdefgh.part")  # another host
    if host == "00000000":
        pytest.skip("this host's tag collides with the test's 'other host'")
    others = [
        _named(tmp_path, "photo.png"),
        _named(tmp_path, f".e.png.{dead_pid}.part"),  # someone else's naming
        _named(tmp_path, f".f.png.fmen-tmp-{dead_pid}-{host}-abc.txt"),  # not a .part
    ]
    folder_like = tmp_path / f".g.png.fmen-tmp-{dead_pid}-{host}-qqqqqqqq.part"
    folder_like.mkdir()
    link_like = tmp_path / f".h.png.fmen-tmp-{dead_pid}-{host}-llllllll.part"
    link_like.symlink_to(others[0])

    removed = sweep_stale(tmp_path)

    assert removed == [stale] and not stale.exists()
    for kept in (running, mine, elsewhere, *others):
        assert kept.exists(), kept
    assert folder_like.is_dir() and link_like.is_symlink() and others[0].read_bytes() == b"partial image"


@posix_only
def test_sweep_of_a_missing_or_unreadable_folder_is_quiet(tmp_path: Path) -> None:
    assert sweep_stale(tmp_path / "missing") == []
    assert sweep_stale(tmp_path / "file-not-folder") == []
