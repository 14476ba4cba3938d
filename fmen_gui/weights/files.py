"""Torch-free file helpers shared by the registry, the loader and the downloader.

Every file this package stores is written to a temporary name in the destination folder and
then renamed over the final name. A rename inside one folder is atomic, so a crash, a full disk
or a cancelled job can never leave a half-written weights file or manifest where the app would
later pick it up. The writing itself is :func:`fmen_gui.atomicfiles.atomic_file`, the same as
the image writer's: same temporary names (a killed run's leftovers are swept the same way),
same fsync of the file and of the folder, same permissions as a plain save.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from fmen_gui.atomicfiles import atomic_file

CHUNK_SIZE = 1 << 20


def sha256_file(path: Path, *, chunk_size: int = CHUNK_SIZE) -> str:
    """Hex SHA-256 of a file, read in chunks so large checkpoints never sit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_writer(path: Path, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file that becomes ``path`` only if the ``with`` block succeeds.

    The folder is created if needed. On any exception, cancellation included, the temporary
    file is removed and ``path`` is left exactly as it was. Replacing is the default here
    because these are the app's own files (a manifest rewritten, a corrupt download fetched
    again); with ``overwrite=False`` an existing ``path`` raises FileExistsError at the final
    step instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, overwrite=overwrite) as out:
        yield out.file


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(data)


def copy_atomically(src: Path, dst: Path, *, chunk_size: int = CHUNK_SIZE) -> str:
    """Copy ``src`` to ``dst`` atomically and return the SHA-256 of the bytes actually written.

    Hashing while copying (rather than before) means the recorded hash describes the stored
    copy even if the source changes while it is being read.
    """
    digest = hashlib.sha256()
    with open(src, "rb") as fin, atomic_writer(dst) as fout:
        while chunk := fin.read(chunk_size):
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest()
