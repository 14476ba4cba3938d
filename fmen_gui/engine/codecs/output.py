"""The file object the encoders get: every byte through Python's buffered writer.

One class, shared by the Pillow and TIFF encoders, because both libraries would otherwise
reach past Python to the descriptor underneath (see :class:`PythonWrites`).
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO


class PythonWrites:
    """A file object without ``fileno()`` or ``name``, so encoders write through Python.

    Given a real file descriptor, Pillow's C encoders call ``write(2)`` themselves and ignore
    a short write, which is what a filling disk returns first: a JPEG could then be published
    truncated as a success, or fail with the encoder's own words ("broken data stream")
    instead of the errno. Through the buffered writer every byte is written or an OSError
    with the real errno (ENOSPC, EDQUOT, EIO) is raised. tifffile, for its part, takes a
    descriptor's number for a file name; given this it treats the file as a plain stream.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, data: bytes) -> int:
        return self._fh.write(data)

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def flush(self) -> None:
        self._fh.flush()

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")
