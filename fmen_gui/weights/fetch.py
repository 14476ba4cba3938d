"""Download the authors' official FMEN-S ×4 weights, verified, or store nothing at all.

Torch-free and stdlib-only (``urllib``) so the GUI can offer the download before torch loads
and the frozen app needs no extra HTTP stack. The URL pins a commit, and the SHA-256 pins the
bytes: a proxy's error page, a truncated transfer or a changed upstream file is rejected.
Bytes stream into a hidden temporary file beside the destination and only a complete, verified
file is renamed into place, so every failure (HTTP error, timeout, reset, cancel, bad hash)
leaves the folder exactly as it was.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

import fmen_gui
from fmen_gui.errors import Cancelled, DownloadError, WeightsError
from fmen_gui.weights.files import atomic_writer, sha256_file
from fmen_gui.weights.registry import read_manifest, record_entry, user_weights_dir

OFFICIAL_URL = "https://github.com/NJU-Jet/FMEN/raw/a1def169d0e2c99ecebdb1b08bf567f329c3a566/test_weights.pt"
OFFICIAL_SHA256 = "d5534eba1feacfdd4043d9175d3bf0730b1ab4c91ba5c3f40a2282cd496fb4a5"
OFFICIAL_FILENAME = "fmen_s_x4_official.pt"
OFFICIAL_MODEL = "fmen-s"
OFFICIAL_SCALE = 4
OFFICIAL_PARAMS = 341_066  # fixed by the hash; checked against the real file by the tests
ENV_OFFICIAL_URL = "FMEN_OFFICIAL_URL"

CHUNK_SIZE = 64 * 1024
MAX_DOWNLOAD_BYTES = 256 * 1024**2
"""Stop a server that streams without end: the real file is 1.4 MB."""

ProgressCallback = Callable[[int, int | None], None]


def official_url(url: str | None = None) -> str:
    """The URL to fetch: the argument, else ``FMEN_OFFICIAL_URL`` (mirrors, tests), else upstream."""
    return url or os.environ.get(ENV_OFFICIAL_URL) or OFFICIAL_URL


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("download cancelled; nothing was stored")


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        total = int(value) if value is not None else None
    except ValueError:
        return None
    return total if total is not None and total >= 0 else None


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    """Open ``url``, turning every way a connection can fail into one-line DownloadErrors."""
    request = urllib.request.Request(url, headers={"User-Agent": f"fmen-upscaler/{fmen_gui.__version__}"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"download failed: HTTP {exc.code} {exc.reason} from {_host(url)}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise DownloadError(f"download failed: no answer from {_host(url)} in {timeout:g} s") from None
        detail = getattr(reason, "strerror", None) or reason
        raise DownloadError(f"download failed: cannot reach {_host(url)}: {detail}") from None
    except TimeoutError:
        raise DownloadError(f"download failed: no answer from {_host(url)} in {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DownloadError(f"download failed: {_host(url)}: {exc or type(exc).__name__}") from None


def _stream(
    url: str,
    out: IO[bytes],
    *,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    timeout: float,
) -> str:
    """Copy the response body into ``out`` and return its SHA-256.

    Cancellation is checked between chunks, so it takes effect within one read (at most
    ``timeout`` seconds on a stalled connection).
    """
    digest = hashlib.sha256()
    response = _open(url, timeout)
    with response:
        total = _content_length(response)
        done = 0
        if progress is not None:
            progress(0, total)
        while True:
            _check_cancel(cancel)
            try:
                chunk = response.read(CHUNK_SIZE)
            except http.client.IncompleteRead:
                chunk = b""  # reported below as a short read, with the byte counts
            except TimeoutError:
                raise DownloadError(
                    f"download failed: {_host(url)} stopped sending for {timeout:g} s"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(
                    f"download failed: connection to {_host(url)} lost after {done} bytes ({exc})"
                ) from None
            if not chunk:
                break
            done += len(chunk)
            if done > MAX_DOWNLOAD_BYTES:
                raise DownloadError(f"download failed: {_host(url)} sent over {MAX_DOWNLOAD_BYTES} bytes")
            digest.update(chunk)
            out.write(chunk)
            if progress is not None:
                progress(done, total)
        _check_cancel(cancel)
        if total is not None and done != total:
            raise DownloadError(
                f"download failed: connection to {_host(url)} closed after {done} of {total} bytes"
            )
    return digest.hexdigest()


def _record(dest_dir: Path, dest: Path) -> None:
    record_entry(
        dest_dir,
        {
            "file": dest.name,
            "model": OFFICIAL_MODEL,
            "scale": OFFICIAL_SCALE,
            "sha256": OFFICIAL_SHA256,
            "params": OFFICIAL_PARAMS,
            "psnr": {},
            "source": "official",
            "original_name": "test_weights.pt",
        },
    )


def fetch_official(
    *,
    url: str | None = None,
    dest_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 30,
) -> Path:
    """Download the official FMEN-S ×4 weights into ``dest_dir`` and register them.

    ``progress(bytes_done, total_or_None)`` is called once before the first chunk and after
    each one. Returns the stored file (``fmen_s_x4_official.pt``); if it is already there with
    the right hash nothing is downloaded. Raises :class:`DownloadError` or :class:`Cancelled`
    with nothing stored.
    """
    folder = Path(dest_dir) if dest_dir is not None else user_weights_dir()
    dest = folder / OFFICIAL_FILENAME
    try:
        present = dest.is_file() and sha256_file(dest) == OFFICIAL_SHA256
    except OSError:
        present = False
    if present:
        if not any(e.get("file") == dest.name for e in read_manifest(folder)):
            _record(folder, dest)
        return dest
    _check_cancel(cancel)
    read_manifest(folder)  # a corrupt manifest fails now, not after the download
    source = official_url(url)
    try:
        with atomic_writer(dest) as out:
            sha = _stream(source, out, progress=progress, cancel=cancel, timeout=timeout)
            if sha != OFFICIAL_SHA256:
                raise DownloadError(
                    f"download from {_host(source)} does not match the official weights "
                    f"(sha256 {sha[:12]}…, expected {OFFICIAL_SHA256[:12]}…); nothing was stored"
                )
    except OSError as exc:  # network errors are already DownloadErrors; this is the disk
        raise DownloadError(f"cannot store the download in {folder}: {exc.strerror or exc}") from None
    try:
        _record(folder, dest)
    except WeightsError as exc:
        dest.unlink(missing_ok=True)
        raise DownloadError(f"downloaded, but {exc}; nothing was stored") from None
    return dest
