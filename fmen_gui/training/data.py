"""Training and validation data: the 291 classic images, a fixed held-out slice, patch pairs.

Set5 and Set14 are *test* sets: nothing here reads them. :data:`HOLDOUT` is ten BSD200 images
that never enter the training pool (every 20th file of BSD200 in name order, written out so
that the slice can never drift with a listing); checkpoints are chosen on it where the unseen
photographs of :mod:`fmen_gui.training.photos` have not been fetched.
Low-resolution images are made once per image with Pillow's antialiased bicubic (close to
the MATLAB ``imresize`` that made the benchmark inputs), so a training step is only numpy
slicing plus the network.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable
from multiprocessing.pool import AsyncResult
from pathlib import Path

import numpy as np
from PIL import Image

from fmen_gui.training.degrade import Degradation, condition, degrade

IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"})

# The validation slice, as paths relative to the training-data folder.
HOLDOUT: tuple[str, ...] = tuple(
    f"BSD200/{name}.png"
    for name in (
        "100075",
        "12074",
        "151087",
        "176035",
        "198023",
        "232038",
        "268002",
        "317080",
        "376020",
        "65010",
    )
)

Pair = tuple[np.ndarray, np.ndarray]  # (LR, HR), uint8 HWC RGB
VAL_SEED = 20220419  # noisy validation images: the same for every run and session
# What each kind of network is chosen on: the photo networks on the slice as Auto hands it to
# them (JPEG at two web qualities), with noise, and clean, so that a checkpoint that gives up
# the clean picture for the degraded ones is not chosen. Equal weight per condition.
VALIDATION: dict[str, tuple[str, ...]] = {
    "clean": ("clean",),
    "photo": ("clean", "jpeg75", "jpeg50", "noise5"),
}


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def bicubic_down(hr: np.ndarray, scale: int) -> np.ndarray:
    h, w = hr.shape[:2]
    return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.Resampling.BICUBIC))


def make_pair(path: Path, scale: int) -> Pair:
    """An HR image cropped to a multiple of ``scale`` and its bicubic LR."""
    with Image.open(path) as im:
        hr = np.asarray(im.convert("RGB"))
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    hr = np.ascontiguousarray(hr[:h, :w])
    return bicubic_down(hr, scale), hr


def split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(training pool, validation slice) of ``folder``; the slice must be complete."""
    images = list_images(folder)
    held = {(folder / rel).resolve() for rel in HOLDOUT}
    val = [p for p in images if p.resolve() in held]
    if len(val) != len(HOLDOUT):
        missing = sorted(
            str(folder / r) for r in HOLDOUT if (folder / r).resolve() not in {v.resolve() for v in val}
        )
        raise SystemExit(f"validation images missing from {folder}: {', '.join(missing)}")
    return [p for p in images if p.resolve() not in held], val


def condition_sets(pairs: list[Pair], kind: str = "clean") -> dict[str, list[Pair]]:
    """Clean pairs under each of ``VALIDATION[kind]``'s conditions (fixed seeds)."""
    return {
        how: [(condition(lr, how, VAL_SEED + i)[0], hr) for i, (lr, hr) in enumerate(pairs)]
        for how in VALIDATION[kind]
    }


def benchmark_pairs(folder: Path, scale: int) -> list[Pair]:
    """The MATLAB-made ``*_LR.png`` / ``*_HR.png`` pairs of a benchmark set (export only)."""
    pairs = []
    for lr_path in sorted((folder / f"x{scale}").glob("*_LR.png")):
        hr_path = lr_path.with_name(lr_path.name.replace("_LR", "_HR"))
        with Image.open(lr_path) as lr, Image.open(hr_path) as hr:
            pairs.append((np.asarray(lr.convert("RGB")), np.asarray(hr.convert("RGB"))))
    return pairs


class PatchSampler:
    """Aligned LR/HR patch pairs with the 8 dihedral transforms, all images in memory.

    The patch side may change between calls (the schedule grows it); images too small for
    the current side are left out of that draw only. With a ``degradation`` (the photo
    models) each LR patch is made from its HR patch on the fly, after the transform.

    Images are drawn with equal chances, or ``by_area`` in proportion to their pixels: the
    training photographs (:data:`~fmen_gui.training.photos.TRAINING_PHOTOS`) are 14 pictures with
    about as many pixels as the 281 classic images, and drawn per image they would make 5 % of
    the patches.
    """

    def __init__(
        self,
        paths: list[Path],
        scale: int,
        rng: np.random.Generator,
        degradation: Degradation | None = None,
        by_area: bool = False,
    ) -> None:
        self.scale, self.rng, self.degradation, self.by_area = scale, rng, degradation, by_area
        self.pairs = [make_pair(p, scale) for p in paths]
        self._eligible: dict[int, np.ndarray] = {}
        self._area_cdf: dict[int, np.ndarray] = {}

    def draw(self, patch: int, rng: np.random.Generator) -> int:
        """The index of the image the next patch of side ``patch`` is cut from."""
        pool = self.eligible(patch)
        if not self.by_area:
            return int(pool[rng.integers(len(pool))])
        if patch not in self._area_cdf:
            # Where a patch can start, so that every pixel position is equally likely.
            sizes = [
                (self.pairs[i][0].shape[0] - patch + 1) * (self.pairs[i][0].shape[1] - patch + 1)
                for i in pool
            ]
            self._area_cdf[patch] = np.cumsum(np.asarray(sizes, dtype=np.float64))
        cdf = self._area_cdf[patch]
        return int(pool[min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(pool) - 1)])

    def eligible(self, patch: int) -> np.ndarray:
        if patch not in self._eligible:
            self._eligible[patch] = np.array(
                [i for i, (lr, _) in enumerate(self.pairs) if min(lr.shape[:2]) >= patch], dtype=np.int64
            )
        return self._eligible[patch]

    def batch(
        self, n: int, patch: int, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (LR, HR) patch pairs of side ``patch`` (LR pixels), drawn with ``rng`` (default:
        the sampler's own generator)."""
        rng = rng or self.rng
        p, s = patch, self.scale
        if len(self.eligible(patch)) == 0:
            raise SystemExit(f"no training image is at least {p * s} px on each side")
        lrs = np.empty((n, p, p, 3), np.uint8)
        hrs = np.empty((n, p * s, p * s, 3), np.uint8)
        for i in range(n):
            lr, hr = self.pairs[self.draw(patch, rng)]
            y = rng.integers(lr.shape[0] - p + 1)
            x = rng.integers(lr.shape[1] - p + 1)
            a = lr[y : y + p, x : x + p]
            b = hr[y * s : (y + p) * s, x * s : (x + p) * s]
            k = int(rng.integers(4))
            a, b = np.rot90(a, k), np.rot90(b, k)
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            if self.degradation is not None:
                a = degrade(np.ascontiguousarray(b), s, rng, self.degradation)
            lrs[i], hrs[i] = a, b
        return lrs, hrs


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of a run's batch at ``step``: a function of the two alone, so a resumed run
    draws what an uninterrupted one would, and batches can be made ahead, in any order, by
    other processes (:class:`BatchStream`)."""
    return np.random.default_rng((seed, step))


_SAMPLER: PatchSampler | None = None  # a worker's copy of the sampler (inherited by fork)


def _worker_batch(n: int, patch: int, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    assert _SAMPLER is not None
    return _SAMPLER.batch(n, patch, step_rng(seed, step))


class BatchStream:
    """The batches of steps ``start``, ``start + 1``, … made ahead by ``workers`` processes.

    On a GPU the step is faster than one core makes a batch (the photo runs' JPEG round trips:
    about 75 ms for 64 patches of 48 px here), so forked workers (which share the sampler's
    images copy-on-write) keep ``depth`` batches in flight. Each batch is that of
    :func:`step_rng`, so the run sees exactly what it would without workers.
    """

    def __init__(
        self,
        sampler: PatchSampler,
        n: int,
        patch_at: Callable[[int], int],
        seed: int,
        start: int,
        workers: int,
        depth: int = 0,
    ) -> None:
        global _SAMPLER
        _SAMPLER = sampler
        try:
            self._pool = multiprocessing.get_context("fork").Pool(workers)
        finally:
            _SAMPLER = None
        self._jobs = (n, patch_at, seed)
        self._next = start
        self._ahead: deque[AsyncResult[tuple[np.ndarray, np.ndarray]]] = deque()
        for _ in range(depth or 2 * workers):
            self._submit()

    def _submit(self) -> None:
        n, patch_at, seed = self._jobs
        self._ahead.append(self._pool.apply_async(_worker_batch, (n, patch_at(self._next), seed, self._next)))
        self._next += 1

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        batch = self._ahead.popleft().get()
        self._submit()
        return batch

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
