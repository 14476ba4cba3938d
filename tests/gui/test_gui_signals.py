"""SIGTERM and Ctrl+C quit the app through Qt at once, even while the event loop sleeps in C++.

The end-to-end case (the real app under Xvfb, exit status 0 after SIGTERM) is in
``test_real_window.py``; this one runs everywhere, in-process.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from fmen_gui.gui.app import _quit_on_signals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


class _Loop:
    """Stands in for the QApplication: its quit() ends a plain event loop and is counted."""

    def __init__(self) -> None:
        self.loop = QEventLoop()
        self.quits = 0

    def quit(self) -> None:
        self.quits += 1
        self.loop.quit()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_wakes_the_sleeping_loop_and_quits(qapp: QApplication, signum: int) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    app = _Loop()
    restore = _quit_on_signals(app)  # type: ignore[arg-type]
    gave_up = []
    try:
        # The only Python the loop would otherwise run is this far-off limit; without the
        # wakeup socket the handler would wait for it.
        QTimer.singleShot(120_000, lambda: (gave_up.append(True), app.loop.quit()))
        threading.Timer(0.2, os.kill, (os.getpid(), signum)).start()
        app.loop.exec()
    finally:
        restore()
    assert app.quits == 1 and not gave_up
    assert {s: signal.getsignal(s) for s in before} == before  # put back afterwards
