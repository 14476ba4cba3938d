"""The temporary file behind every write, and the final step that may not replace anything.

Every file this app writes (upscaled images, weights, the weights manifest) is written to a
hidden temporary file in the target's folder and then put under its final name. This module
holds the three rules of that dance, once, for the engine, the weights package, the CLI and the
GUI worker (stdlib only: no torch, no Qt):

* **Naming** (:func:`create_temp`): ``.NAME.fmen-tmp-PID-HOST-XXXXXXXX.part``. Hidden, marked
  as this app's, and carrying the writer's process id and a tag of its host name, so that a
  later run can tell the leftover of a killed run from a file another run is still writing.
* **Publishing** (:func:`publish`): without the user's word an existing file is never
  replaced. The refusal is the final step itself (a hard link, or a rename that refuses), so a
  file that appears at the output path while a job runs (another process, a second input with
  the same output name) is kept, and the job is told with :class:`FileExistsError`. An
  ``exists()`` check beforehand cannot give that guarantee: the name can be taken between the
  check and the rename, and ``os.replace`` would then silently destroy the other file.
* **Sweeping** (:func:`sweep_stale`): removes this app's temporary files whose writer is dead
  (killed, power cut), and nothing else.

:func:`atomic_file` puts the three together for every writer (images, weights, the manifest):
temporary file, fsync, the permissions a plain save would give, publish, fsync of the folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import re
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "TEMP_SUFFIX",
    "AtomicFile",
    "NameTakenError",
    "atomic_file",
    "create_temp",
    "is_temp_name",
    "numbered_names",
    "publish",
    "sweep_stale",
]

TEMP_SUFFIX = ".part"
_TAG = "fmen-tmp"
# The leading part of the target's name is kept so a user who finds a leftover knows what it
# was; it is shortened so a target near the file system's 255-byte name limit still gets one.
_NAME_KEEP = 100
_TEMP_NAME = re.compile(rf"^\..*\.{_TAG}-(?P<pid>\d+)-(?P<host>[0-9a-f]{{8}})-[^.]+{re.escape(TEMP_SUFFIX)}$")
# Why a hard link can fail although the name is free: the file system has no hard links (FAT,
# exFAT, some FUSE and SMB mounts say EPERM, EOPNOTSUPP or ENOSYS), or the inode is full of them.
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV, errno.EACCES}
)
_MAX_NUMBERED = 10_000


@functools.cache
def _host_tag() -> str:
    """Eight hex digits naming this machine, so a sweep never judges another host's PIDs.

    A folder on a network share can hold temporary files of a run on another computer, whose
    process ids mean nothing here.
    """
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def create_temp(target: Path) -> tuple[int, Path]:
    """Create and open a fresh temporary file beside ``target``; return (fd, path).

    Beside, because only a rename or link inside one file system is atomic. Raises OSError
    (the folder is missing or read-only, the disk is full) for the caller to translate.
    """
    target = Path(target)
    prefix = f".{target.name[:_NAME_KEEP]}.{_TAG}-{os.getpid()}-{_host_tag()}-"
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=TEMP_SUFFIX)
    return fd, Path(name)


class NameTakenError(FileExistsError):
    """:func:`atomic_file` found its target name (and, when numbered, every numbered one) taken."""


@dataclass
class AtomicFile:
    """What :func:`atomic_file` hands its ``with`` block.

    ``file`` is open for writing; ``temp`` is its name, for writers that insist on opening the
    file themselves (safetensors). ``final`` is the name the file got, set once published.
    """

    file: BinaryIO
    temp: Path
    final: Path | None = None


@contextlib.contextmanager
def atomic_file(target: Path, *, overwrite: bool, numbered: bool = False) -> Iterator[AtomicFile]:
    """Yield a temporary file beside ``target`` that becomes ``target`` if the block succeeds.

    After the block: the data is flushed and fsynced, the file gets the permissions a plain
    ``open(target, "w")`` would have given (an existing target's, else 0666 less the umask:
    mkstemp makes files private), it is published (:func:`publish`: replacing ``target`` only
    with ``overwrite``; with ``numbered`` the next free ``name (2).ext``… is taken instead of
    refusing), and the folder is fsynced so the new name survives a power cut. Without
    ``overwrite`` a taken name raises :class:`NameTakenError`. On any exception, Ctrl-C included,
    the temporary file is removed and ``target`` is as it was. OSErrors are left for the
    caller to put in its own words.
    """
    target = Path(target)
    fd, temp = create_temp(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            handle = AtomicFile(file=fh, temp=temp)
            yield handle
            fh.flush()
            os.fsync(fh.fileno())  # also what a writer that reopened ``temp`` by name wrote
        _copy_permissions(temp, target)
        handle.final = _publish(temp, target, overwrite=overwrite, numbered=numbered)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def _publish(temp: Path, target: Path, *, overwrite: bool, numbered: bool) -> Path:
    if overwrite:
        publish(temp, target, overwrite=True)
        return target
    for candidate in numbered_names(target) if numbered else (target,):
        try:
            publish(temp, candidate, overwrite=False)
        except FileExistsError:
            continue
        return candidate
    raise NameTakenError(errno.EEXIST, "no free name" if numbered else "file exists", str(target))


def _copy_permissions(temp: Path, target: Path) -> None:
    """Give the new file the permissions a normal save would have had.

    mkstemp creates files readable only by their owner; without this, every upscaled image and
    every imported weights file would silently become private. An existing target keeps its mode.
    """
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_current_umask()
    with contextlib.suppress(OSError):  # some file systems (FAT, SMB) do not do permissions
        os.chmod(temp, mode)


def _current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; best effort, as Windows cannot open folders.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of this app's temporary files (whoever wrote it)."""
    return _TEMP_NAME.match(name) is not None


def numbered_names(path: Path) -> Iterator[Path]:
    """``path``, then ``name (2).ext``, ``name (3).ext``…: the GUI's policy for a taken name."""
    path = Path(path)
    yield path
    for n in range(2, _MAX_NUMBERED):
        yield path.with_name(f"{path.stem} ({n}){path.suffix}")


def publish(temp: Path, final: Path, *, overwrite: bool) -> None:
    """Give the complete file ``temp`` the name ``final``; ``temp`` is gone afterwards.

    With ``overwrite`` an existing ``final`` is replaced atomically (``os.replace``). Without
    it, :class:`FileExistsError` is raised when ``final`` exists at the moment of the final step,
    whatever an earlier check said, and ``temp`` is left for the caller to remove.

    How the refusal is made, in order of preference:

    1. ``os.link(temp, final)`` then unlink ``temp``: POSIX and Windows, fails with EEXIST
       atomically. (Killed between the two calls, ``temp`` is a second name of the finished
       file, which :func:`sweep_stale` removes later.)
    2. Where the file system has no hard links: a rename that refuses to replace, which the
       standard library does not offer on POSIX, hence ``ctypes``: Linux ``renameat2`` with
       ``RENAME_NOREPLACE`` (glibc ≥ 2.28; every local Linux file system since 4.9), macOS
       ``renamex_np`` with ``RENAME_EXCL``. On Windows ``os.rename`` already refuses.
    3. Where neither exists (some network file systems): the name is reserved by creating it
       with ``O_EXCL`` and the reservation is then replaced. A crash between the two leaves an
       empty file under the final name, never someone else's file destroyed.
    """
    temp, final = Path(temp), Path(final)
    if overwrite:
        os.replace(temp, final)
        return
    try:
        os.link(temp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    else:
        with contextlib.suppress(OSError):  # the result is in place; a leftover is swept later
            os.unlink(temp)
        return
    if os.name == "nt":
        os.rename(temp, final)  # raises FileExistsError when final exists
        return
    if _rename_noreplace(temp, final):
        return
    fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # FileExistsError if taken
    os.close(fd)
    try:
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(final)
        raise


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _rename_noreplace(temp: Path, final: Path) -> bool:
    """Rename refusing to replace; False when this system or file system cannot do it.

    Raises FileExistsError when ``final`` exists, another OSError for other failures.
    """
    libc = _libc()
    old, new = os.fsencode(temp), os.fsencode(final)
    if sys.platform.startswith("linux") and libc is not None and hasattr(libc, "renameat2"):
        at_fdcwd, rename_noreplace = -100, 1
        result = libc.renameat2(at_fdcwd, old, at_fdcwd, new, rename_noreplace)
    elif sys.platform == "darwin" and libc is not None and hasattr(libc, "renamex_np"):
        rename_excl = 0x4
        result = libc.renamex_np(old, new, rename_excl)
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # the flag is not supported here
    raise OSError(code, os.strerror(code), str(temp), None, str(final))


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists (POSIX); any doubt answers yes."""
    if pid <= 0:
        return True  # kill(0, …) and kill(-1, …) address groups, not one process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # EPERM: it exists but belongs to someone else
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Remove this app's temporary files in ``folder`` whose writer process is dead.

    Only names made by :func:`create_temp` on this host are considered; a file is removed only
    when its process id is not running and is not this process, so a temporary file that a
    live run is writing is never touched (a recycled id errs the same safe way: kept). Only
    plain files, never links or folders; not recursive. Best effort: returns what was removed
    and never raises. On Windows nothing is removed, as it has no cheap, side-effect-free
    "is this process alive" probe in the standard library (``os.kill(pid, 0)`` there would
    send CTRL_C_EVENT).
    """
    if os.name != "posix":
        return []
    removed: list[Path] = []
    own, host = os.getpid(), _host_tag()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or match["host"] != host:
            continue
        pid = int(match["pid"])
        if pid == own or _process_alive(pid):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
