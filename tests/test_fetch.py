"""The official download against a real HTTP server on 127.0.0.1.

Each failure mode a real network produces (wrong bytes, a connection cut half-way, a 404, a
stalled server, a cancel) must end in one exception and an untouched destination folder.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fmen_gui.errors import Cancelled, DownloadError
from fmen_gui.weights import fetch, registry
from fmen_gui.weights.files import sha256_file

OFFICIAL = Path(__file__).parents[1].parent / "shared" / "weights" / "official" / "fmen_s_x4_njujet.pt"


def official_available() -> bool:
    return OFFICIAL.is_file()


def require_official() -> None:
    """Only a download of the real bytes can pass the pinned hash; failures need no real file."""
    if not official_available():
        pytest.skip(f"official checkpoint {OFFICIAL.name} not available under {OFFICIAL.parent}")


@pytest.fixture(scope="module")
def payload() -> bytes:
    if official_available():
        return OFFICIAL.read_bytes()
    return bytes(range(256)) * 5000  # same order of size as the real 1.4 MB file


class Server(ThreadingHTTPServer):
    """Serves the official bytes, well or badly depending on the request path."""

    daemon_threads = True
    payload: bytes = b""
    release: threading.Event

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up mid-transfer is what several tests do on purpose: stay quiet."""


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""

    def _headers(self, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self) -> None:
        data = self.server.payload
        self.close_connection = True
        with contextlib.suppress(ConnectionError):
            if self.path == "/good":
                self._headers(len(data))
                self.wfile.write(data)
            elif self.path == "/wrong":
                wrong = bytearray(data)
                wrong[len(wrong) // 2] ^= 0xFF
                self._headers(len(wrong))
                self.wfile.write(bytes(wrong))
            elif self.path == "/short":
                self._headers(len(data))
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            elif self.path == "/stall":
                self._headers(len(data))
                self.wfile.write(data[:1000])
                self.wfile.flush()
                self.server.release.wait(10)
            else:
                self.send_error(404, "Not Found")


@pytest.fixture(scope="module")
def base_url(payload: bytes) -> Iterator[str]:
    server = Server(("127.0.0.1", 0), Handler)
    server.payload = payload
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.ENV_DATA_DIR, str(tmp_path / "data"))
    monkeypatch.setenv(registry.ENV_WEIGHTS_DIR, str(tmp_path / "bundled"))
    monkeypatch.delenv(fetch.ENV_OFFICIAL_URL, raising=False)


def stored(folder: Path) -> list[str]:
    """Everything in the folder, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_success_stores_verified_file_and_registers_it(base_url: str, payload: bytes) -> None:
    require_official()
    seen: list[tuple[int, int | None]] = []
    path = fetch.fetch_official(url=f"{base_url}/good", progress=lambda d, t: seen.append((d, t)))
    folder = registry.user_weights_dir()
    assert path == folder / fetch.OFFICIAL_FILENAME
    assert sha256_file(path) == fetch.OFFICIAL_SHA256
    assert stored(folder) == sorted([fetch.OFFICIAL_FILENAME, registry.MANIFEST_NAME])

    done = [d for d, _ in seen]
    assert done == sorted(done) and len(done) > 2
    assert seen[-1] == (len(payload), len(payload))
    assert all(t == len(payload) for _, t in seen)

    entry = registry.find_weights("fmen-s", 4)
    assert (entry.path, entry.source, entry.params) == (path, "official", fetch.OFFICIAL_PARAMS)
    assert entry.label == "FMEN-S ×4 (official)"

    # Already there with the right hash: returned as is, the (broken) URL is never opened.
    assert fetch.fetch_official(url=f"{base_url}/missing") == path


def test_url_comes_from_environment(base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_official()
    monkeypatch.setenv(fetch.ENV_OFFICIAL_URL, f"{base_url}/good")
    path = fetch.fetch_official(dest_dir=tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / fetch.OFFICIAL_FILENAME
    assert registry.read_manifest(tmp_path / "elsewhere")[0]["source"] == "official"


@pytest.mark.parametrize(
    ("route", "fragment"),
    [
        ("/wrong", "does not match"),
        ("/short", "closed after"),
        ("/missing", "HTTP 404"),
    ],
)
def test_failures_store_nothing(base_url: str, tmp_path: Path, route: str, fragment: str) -> None:
    dest = tmp_path / "w"
    with pytest.raises(DownloadError) as info:
        fetch.fetch_official(url=base_url + route, dest_dir=dest)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert stored(dest) == []


def test_stalled_server_times_out(base_url: str, tmp_path: Path) -> None:
    dest = tmp_path / "w"
    with pytest.raises(DownloadError, match="stopped sending"):
        fetch.fetch_official(url=f"{base_url}/stall", dest_dir=dest, timeout=0.3)
    assert stored(dest) == []


def test_refused_connection(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot reach"):
        fetch.fetch_official(url=f"http://127.0.0.1:{port}/x", dest_dir=tmp_path / "w", timeout=2)
    assert stored(tmp_path / "w") == []


def test_cancel_mid_download_stores_nothing(base_url: str, tmp_path: Path) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            cancel.set()

    dest = tmp_path / "w"
    with pytest.raises(Cancelled):
        fetch.fetch_official(url=f"{base_url}/good", dest_dir=dest, progress=progress, cancel=cancel)
    assert stored(dest) == []


def test_cancel_before_start(base_url: str, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        fetch.fetch_official(url=f"{base_url}/good", dest_dir=tmp_path / "w", cancel=cancel)
    assert stored(tmp_path / "w") == []


def test_corrupt_copy_in_place_is_replaced(base_url: str, tmp_path: Path) -> None:
    require_official()
    dest = tmp_path / "w"
    dest.mkdir()
    (dest / fetch.OFFICIAL_FILENAME).write_bytes(b"partial junk")
    path = fetch.fetch_official(url=f"{base_url}/good", dest_dir=dest)
    assert sha256_file(path) == fetch.OFFICIAL_SHA256
