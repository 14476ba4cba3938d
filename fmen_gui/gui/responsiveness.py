"""How long the GUI event loop goes without serving events: the measure of "never frozen".

A 5 ms timer ticks on the GUI thread; the largest gap between two ticks is the longest time a
click or a repaint would have waited. Used by the benchmark and the tests, and cheap enough
to leave in a debug session.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer


class GapMeter(QObject):
    """Records the gaps between ticks of a fast timer on the thread that owns it."""

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.gaps: list[float] = []

    def start(self) -> None:
        self.gaps = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def largest(self) -> float:
        """Seconds of the longest gap so far (0 before the first tick)."""
        return max(self.gaps, default=0.0)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now
