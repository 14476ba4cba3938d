"""One window per user: a second start hands its files to the running app and exits.

Opening an image with the app while it already runs used to start a second process (torch,
the network, another 0.5 GB). Now the first start listens on a per-user ``QLocalServer``; a
later start connects, sends its file paths (absolute, since its working folder may differ)
and exits 0, and the first window queues them and comes to the front. A socket left behind by
a crashed instance is detected (nobody answers a connection) and replaced.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

ENV_INSTANCE = "FMEN_GUI_INSTANCE"  # overrides the server name (tests, portable side-by-side use)
CONNECT_TIMEOUT_MS = 500
WRITE_TIMEOUT_MS = 2000


def server_name() -> str:
    """The local server name of this user's instance (also unique per home folder)."""
    override = os.environ.get(ENV_INSTANCE)
    if override:
        return override
    try:
        user = getpass.getuser()
    except Exception:  # no user name (some containers): the home folder still tells users apart
        user = ""
    digest = hashlib.sha256(f"{user}\0{Path.home()}".encode()).hexdigest()[:16]
    return f"fmen-upscaler-{digest}"


def send_to_running(paths: Sequence[Path], name: str | None = None) -> bool:
    """Give ``paths`` to the running instance; False when none is listening."""
    # Parented to the application, which frees it on exit: a socket that failed to connect still
    # has queued events, and deleting it early (garbage collection, deleteLater) crashed PySide.
    socket = QLocalSocket(QCoreApplication.instance())
    try:
        return _send(socket, paths, name or server_name())
    finally:
        socket.abort()


def _send(socket: QLocalSocket, paths: Sequence[Path], name: str) -> bool:
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    message = json.dumps({"files": [str(Path(p).absolute()) for p in paths]}).encode() + b"\n"
    socket.write(message)
    ok = socket.waitForBytesWritten(WRITE_TIMEOUT_MS) or socket.bytesToWrite() == 0
    socket.disconnectFromServer()
    if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
        socket.waitForDisconnected(WRITE_TIMEOUT_MS)
    return ok


class InstanceServer(QObject):
    """Listens for later starts; ``files_received`` carries the paths each one sent."""

    files_received = Signal(list)  # list[Path]; empty when a start had no files (raise only)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        """Start listening, replacing a stale socket of a crashed instance."""
        if self._server.listen(self.name):
            return True
        # A socket file nobody answers on (the caller found no running instance): remove it.
        QLocalServer.removeServer(self.name)
        if self._server.listen(self.name):
            return True
        log.warning("single instance: cannot listen on %s: %s", self.name, self._server.errorString())
        return False

    def close(self) -> None:
        self._server.close()

    def _on_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(lambda s=socket: self._finish(s))
            if socket.bytesAvailable():
                self._read(socket)

    def _read(self, socket: QLocalSocket) -> None:
        self._buffers[socket] = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if self._buffers[socket].endswith(b"\n"):
            self._finish(socket)

    def _finish(self, socket: QLocalSocket) -> None:
        data = self._buffers.pop(socket, None)
        if data is None:
            return
        if socket.bytesAvailable():
            data += bytes(socket.readAll().data())
        socket.disconnectFromServer()  # freed with the server: deleteLater here crashed PySide
        try:
            files = json.loads(data.decode() or "{}").get("files", [])
        except (ValueError, AttributeError):
            log.warning("single instance: ignored a malformed message")
            return
        self.files_received.emit([Path(f) for f in files if isinstance(f, str)])
