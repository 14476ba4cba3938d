"""How long the running image and the rest of the queue will take: pure functions, no clock.

Why the old per-item figure ran low: it extrapolated the network's tiles only. After the last
tile the job still encodes and writes the output, and a PNG encoder needs about 0.45 s per
output megapixel on a 2-core CPU (a 6000×4000 ×4 result is 384 MP: three minutes that the
estimate never showed), and the images still waiting in the queue were not counted at all.
The estimate here adds both: the finishing step from a per-format rate (a measured default,
then what this session's jobs actually took) and the queued images at the running job's own
speed per output pixel. Everything takes ``now`` as an argument, so tests drive it with a fake
clock and the window passes ``time.monotonic()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Seconds per output megapixel spent after the last tile (encode + write), before any job of
# the session was measured. PNG and TIFF use zlib level 6; measured here on a photograph.
DEFAULT_FINISH_S_PER_MPX: dict[str, float] = {"png": 0.45, "tiff": 0.45, "webp": 0.35, "jpg": 0.03}
_FALLBACK_FINISH_S_PER_MPX = 0.45  # an unknown format: assume the slow, lossless kind
_LEARN_WEIGHT = 0.5  # how much one finished job moves a learned rate (a moving average)


@dataclass
class FinishRates:
    """Seconds per output megapixel of the finishing step, per output format."""

    s_per_mpx: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FINISH_S_PER_MPX))

    def seconds(self, fmt: str, out_pixels: int) -> float:
        """Expected finishing time of an ``out_pixels`` result written as ``fmt``."""
        return self.s_per_mpx.get(fmt, _FALLBACK_FINISH_S_PER_MPX) * out_pixels / 1e6

    def learn(self, fmt: str, out_pixels: int, seconds: float) -> None:
        """Fold in a measured finishing time (last tile → result saved)."""
        if out_pixels <= 0 or seconds < 0:
            return
        measured = seconds / (out_pixels / 1e6)
        old = self.s_per_mpx.get(fmt, _FALLBACK_FINISH_S_PER_MPX)
        self.s_per_mpx[fmt] = old + _LEARN_WEIGHT * (measured - old)


def item_seconds_left(
    now: float,
    tiles_started_at: float | None,
    done: int,
    total: int,
    finish_seconds: float,
    last_tile_at: float | None = None,
) -> float | None:
    """Time left for the running image: its remaining tiles plus the finishing step.

    ``None`` until a tile is done (before that there is no speed to extrapolate). Once all
    tiles are done, the finishing estimate counts down from the last tile and never goes
    below zero.
    """
    if tiles_started_at is None or total <= 0 or done <= 0:
        return None
    if done >= total:
        since = now - (last_tile_at if last_tile_at is not None else now)
        return max(0.0, finish_seconds - since)
    per_tile = (now - tiles_started_at) / done
    return per_tile * (total - done) + finish_seconds


def queue_seconds_left(
    now: float,
    tiles_started_at: float | None,
    done: int,
    total: int,
    out_pixels: int,
    finish_seconds: float,
    queued: list[tuple[int, float]],
    last_tile_at: float | None = None,
) -> float | None:
    """Time left for the running image and every queued one.

    ``queued`` holds (output pixels, finishing seconds) of each image still waiting. Their tile
    time is the running job's measured seconds per output pixel, which already includes the
    model and device in use.
    """
    left = item_seconds_left(now, tiles_started_at, done, total, finish_seconds, last_tile_at)
    if left is None or tiles_started_at is None or out_pixels <= 0:
        return None
    tiles_end = last_tile_at if done >= total and last_tile_at is not None else now
    s_per_pixel = (tiles_end - tiles_started_at) / (out_pixels * min(1.0, done / total))
    return left + sum(pixels * s_per_pixel + finish for pixels, finish in queued)
