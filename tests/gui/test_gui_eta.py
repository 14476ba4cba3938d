"""The time-left estimate as pure functions driven by a fake clock (no Qt, no sleeping).

The scenario: 16-megapixel PNG results, 10 tiles of 2 s each, then 8 s of encoding and writing
(0.5 s per output megapixel). The old estimate extrapolated tiles only and said 12 s at the 4th
tile of the first image while 20 s were left, and nothing about the two images still queued.
"""

from __future__ import annotations

import pytest

from fmen_gui.gui.eta import DEFAULT_FINISH_S_PER_MPX, FinishRates, item_seconds_left, queue_seconds_left

MPX16 = 16_000_000
TILE_S, TILES, FINISH_S = 2.0, 10, 8.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def test_estimate_includes_saving_and_the_rest_of_the_queue() -> None:
    clock = FakeClock()
    rates = FinishRates()
    rates.s_per_mpx["png"] = FINISH_S / 16  # as learned from an earlier job of the session
    finish = rates.seconds("png", MPX16)
    assert finish == pytest.approx(FINISH_S)
    started = clock.now
    for _ in range(4):
        clock.advance(TILE_S)
    truth_item = (TILES - 4) * TILE_S + FINISH_S  # 20 s
    truth_queue = truth_item + 2 * (TILES * TILE_S + FINISH_S)  # 76 s
    left = item_seconds_left(clock.now, started, 4, TILES, finish)
    assert left == pytest.approx(truth_item)
    queued = [(MPX16, rates.seconds("png", MPX16))] * 2
    total = queue_seconds_left(clock.now, started, 4, TILES, MPX16, finish, queued)
    assert total == pytest.approx(truth_queue)
    # The old tiles-only figure, for the record: it was 8 s short for this one image alone.
    assert (clock.now - started) / 4 * (TILES - 4) == pytest.approx(truth_item - FINISH_S)


def test_after_the_last_tile_the_saving_step_counts_down() -> None:
    clock = FakeClock()
    started = clock.now
    last_tile = clock.advance(TILES * TILE_S)
    clock.advance(3.0)
    assert item_seconds_left(clock.now, started, TILES, TILES, FINISH_S, last_tile) == pytest.approx(5.0)
    clock.advance(10.0)  # saving took longer than expected: never a negative time
    assert item_seconds_left(clock.now, started, TILES, TILES, FINISH_S, last_tile) == 0.0
    queued = [(MPX16, FINISH_S)]
    total = queue_seconds_left(clock.now, started, TILES, TILES, MPX16, FINISH_S, queued, last_tile)
    assert total == pytest.approx(TILES * TILE_S + FINISH_S)  # the queued image at the measured speed


def test_nothing_is_claimed_before_the_first_tile() -> None:
    assert item_seconds_left(5.0, None, 0, 10, FINISH_S) is None
    assert item_seconds_left(5.0, 1.0, 0, 10, FINISH_S) is None
    assert queue_seconds_left(5.0, 1.0, 0, 10, MPX16, FINISH_S, [(MPX16, 1.0)]) is None


def test_finish_rates_start_from_measured_defaults_and_learn() -> None:
    rates = FinishRates()
    # A 6000×4000 ×4 result as PNG: minutes of encoding that a tiles-only estimate ignored.
    assert rates.seconds("png", 24000 * 16000) == pytest.approx(DEFAULT_FINISH_S_PER_MPX["png"] * 384)
    assert rates.seconds("jpg", MPX16) < rates.seconds("png", MPX16)
    for _ in range(12):
        rates.learn("png", MPX16, FINISH_S)
    assert rates.seconds("png", MPX16) == pytest.approx(FINISH_S, rel=1e-3)
    rates.learn("png", 0, 5.0)  # nothing to learn from an empty image
    assert rates.seconds("png", MPX16) == pytest.approx(FINISH_S, rel=1e-3)
