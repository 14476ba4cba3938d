"""Single instance: a second start hands its files to the running window and exits 0."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fmen_gui.gui.app import connect_instance
from fmen_gui.gui.single_instance import ENV_INSTANCE, InstanceServer, send_to_running, server_name
from tests.gui.conftest import ROOT


@pytest.fixture
def name() -> str:
    return os.environ[ENV_INSTANCE]  # per test, from the conftest


def test_nobody_listening_means_no_forwarding(qtbot, name: str) -> None:  # type: ignore[no-untyped-def]
    assert server_name() == name
    assert send_to_running([Path("a.png")], name) is False


def test_second_start_hands_its_files_to_the_window(
    qtbot, make_window, wait_loaded, make_png, tmp_path: Path, name: str
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    server = InstanceServer(name)
    assert server.listen()
    connect_instance(server, window)
    image = make_png(tmp_path / "in" / "opened.png")
    with qtbot.waitSignal(server.files_received, timeout=10000) as got:
        assert send_to_running([image], name)
    assert got.args == [[image]]
    wait_loaded(window, 1)
    assert window.model.items()[0].path == image
    server.close()


def test_a_stale_socket_is_replaced(qtbot, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(name)  # what a crashed instance leaves behind: a socket file nobody answers on
    stale.close()
    assert Path(name).exists()
    assert send_to_running([tmp_path / "x.png"], name) is False
    server = InstanceServer(name)
    assert server.listen()
    with qtbot.waitSignal(server.files_received, timeout=10000) as got:
        assert send_to_running([tmp_path / "x.png"], name)
    assert got.args == [[tmp_path / "x.png"]]
    server.close()


def test_second_process_forwards_relative_paths_and_exits_0(
    qtbot, make_png, tmp_path: Path, name: str
) -> None:  # type: ignore[no-untyped-def]
    server = InstanceServer(name)
    assert server.listen()
    make_png(tmp_path / "photo.png")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    with qtbot.waitSignal(server.files_received, timeout=60000) as got:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fmen_gui", "photo.png"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    assert got.args == [[tmp_path / "photo.png"]]  # made absolute by the sender
    server.close()
