"""The upscaling engine: a loaded network plus tiling, progress, cancel and out-of-memory recovery.

Used by the command line and by the GUI's worker thread. FMEN's tiles overlap by the network's
receptive radius, so every output pixel sees exactly the context it would see in a whole-image
pass; on the CPU in fp32 the tiled result is bit-identical to the untiled one. Models of other
architectures run on :mod:`fmen_gui.engine.blend` (overlapping tiles, blended) behind the same
interface (:class:`TiledUpscaler`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from fmen_gui.arch.detect import ModelDescriptor
from fmen_gui.arch.fmen import FMEN
from fmen_gui.engine import devices, jobs, memory
from fmen_gui.engine.backends import select_backend
from fmen_gui.engine.images import ImageData, check_output_size, resize_alpha
from fmen_gui.engine.jobs import Batch, EngineSettings, Job, JobResult, OnExisting, ProgressFn, TileFn
from fmen_gui.engine.memory import MMAP_THRESHOLD_MAX, tune_allocator
from fmen_gui.engine.tiling import Tile, plan_tiles
from fmen_gui.errors import Cancelled, EngineError, ImageError

MIN_TILE = 32
TILE_HEADROOM = 0.5
CPU_WHOLE_BUDGET = 192 * 2**20  # bytes of activations for a single whole-image pass
CPU_TILE_BUDGET = 160 * 2**20  # bytes of activations per tile when the CPU picks the tile itself
# Convolution library scratch, kernel caches and the interpreter's own growth during a job: the
# part of a job's peak the per-pixel estimates below do not see.
JOB_OVERHEAD = 96 * 2**20
# resize_alpha per output pixel: Pillow's resized plane and the array copy for 8-bit alpha; for
# 16-bit alpha the float32 plane, its rounded and clipped copies and the uint16 result.
ALPHA_BYTES = {8: 2, 16: 14}


@dataclass(frozen=True)
class JobPlan:
    """How a job will run so that it fits the memory there is, decided before it starts.

    ``tile`` is what to pass to the network (0 = whole image); ``optimize`` is JPEG's
    two-pass Huffman optimisation, dropped when only that does not fit. ``needed`` and
    ``available`` are the estimate and the measurement in bytes (``available`` is None where
    the system does not say, and then nothing is refused).
    """

    tile: int
    optimize: bool
    needed: int
    available: int | None
    notes: tuple[str, ...] = ()


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


# The eight dihedral transforms as (quarter turns, then a left-right flip).
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((turns, flip) for flip in (False, True) for turns in range(4))


def _dihedral(a: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, turns)
    return a[:, ::-1] if flip else a


def _dihedral_inverse(a: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    return np.rot90(a[:, ::-1] if flip else a, -turns)


def next_tile(size: int, height: int, width: int) -> int | None:
    """The out-of-memory policy: the tile to try after ``size`` ran out of memory.

    Half of it (the whole image counts as its longer side), never under :data:`MIN_TILE`;
    None once :data:`MIN_TILE` itself failed. Tiles lie on a grid aligned at the origin
    (:func:`plan_tiles`), so halving splits every finished tile into whole smaller ones and
    the work already done is kept. :meth:`Engine.plan` walks the same sequence ahead of time.
    """
    current = size if size > 0 else max(height, width)
    if current <= MIN_TILE:
        return None
    return max(MIN_TILE, current // 2)


class TiledUpscaler:
    """What every network on a device shares: tile choice, out-of-memory recovery, ensemble.

    Subclasses say how one grid of tiles runs (:meth:`_run_grid`) and what it costs
    (:meth:`bytes_per_pixel`, :meth:`host_bytes`): :class:`Upscaler` for FMEN (exact tiles),
    :class:`fmen_gui.engine.blend.BlendUpscaler` for any other image-to-image model
    (overlapping tiles blended). :meth:`upscale_rgb` is the one entry point for both.
    """

    scale: int
    device: torch.device
    dtype: torch.dtype
    overlap: int  # low-resolution context cut around every tile
    kernels_label: str  # how the network runs, for Engine.kernels ("oneDNN fused", …)
    # (whole image, per tile) bytes of activations a CPU pass may take when the tile is "auto".
    cpu_budgets: tuple[int, int] = (CPU_WHOLE_BUDGET, CPU_TILE_BUDGET)
    # One-line remarks about the last upscale_rgb (e.g. tiles forced on a model that avoids them).
    notes: tuple[str, ...] = ()

    # -- sizing (per subclass) -----------------------------------------------------------------
    def bytes_per_pixel(self) -> int:
        """Peak activation bytes per low-resolution pixel of one forward pass."""
        raise NotImplementedError

    def mmap_cap(self) -> int | None:
        """Most pixels per CPU pass that keep every feature map under glibc's mmap threshold."""
        return None

    def host_bytes(self, height: int, width: int, tile: int) -> int:
        """Main-memory bytes one pass of a ``tile`` grid takes (``tile <= 0``: the whole image)."""
        raise NotImplementedError

    def auto_tile(self, height: int, width: int) -> int:
        """Largest tile that fits the memory budget (0 = the whole image fits).

        On the CPU a tile may also be kept small enough that every feature map stays under
        glibc's mmap threshold (:meth:`mmap_cap`), so the allocator reuses buffers instead of
        faulting in fresh pages for each layer (see :mod:`fmen_gui.engine.memory`).
        """
        whole_budget, tile_budget = self.cpu_budgets
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            pixels = int(free * 0.6) // self.bytes_per_pixel()
        else:
            cap = self.mmap_cap()
            limit = cap if cap is not None else 1 << 62
            # One pass over the whole image may use a little more than a tile of a long job:
            # nothing else is alive and the heap does not fragment.
            if height * width <= min(whole_budget // self.bytes_per_pixel(), limit):
                return 0
            pixels = min(tile_budget // self.bytes_per_pixel(), limit)
        if height * width <= pixels:
            return 0
        # Several tiles in a row fragment the heap, most of all while the convolution library
        # builds its kernels during the first tile; measured, half the one-pass budget per
        # tile keeps the whole job within it.
        side = math.isqrt(int(pixels * TILE_HEADROOM)) - 2 * self.overlap
        return max(MIN_TILE, side // 16 * 16)

    def resolve_tile(self, tile: int | str, height: int, width: int) -> int:
        """The tile a request means for this image: ``"auto"`` sized, at least :data:`MIN_TILE`."""
        size = self.auto_tile(height, width) if tile == "auto" else int(tile)
        if size < 0:
            raise EngineError("tile size must be 0 (whole image), a positive number or auto")
        if 0 < size < MIN_TILE:
            size = MIN_TILE
        return size

    def next_tile(self, size: int, height: int, width: int) -> int | None:
        """The tile to try after ``size`` ran out of memory (None: give up); see :func:`next_tile`."""
        return next_tile(size, height, width)

    def tile_notes(self, size: int) -> tuple[str, ...]:
        """Remarks a job run with ``size`` tiles deserves (none for a model that tiles exactly)."""
        return ()

    def out_of_memory(self) -> EngineError:
        """The one-line error once no smaller tile is left to try."""
        return EngineError(
            f"out of memory on {devices.device_label(self.device)} even with {MIN_TILE}-pixel tiles"
        )

    # -- running --------------------------------------------------------------------------------
    def upscale_rgb(
        self,
        rgb: np.ndarray,
        *,
        tile: int | str = "auto",
        grayscale: bool = False,
        ensemble: bool = False,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        on_tile: TileFn | None = None,
    ) -> np.ndarray:
        """Upscale an H×W×3 uint8/uint16 array into a new (sH)×(sW)×3 array of the same dtype.

        ``ensemble``: the geometric self-ensemble (see :meth:`_ensemble`), eight passes.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
            raise ImageError(f"expected H×W×3 uint8/uint16 pixels, got {rgb.shape} {rgb.dtype}")
        self.notes = ()
        h, w = rgb.shape[:2]
        s = self.scale
        size = self.resolve_tile(tile, h, w)
        try:
            out = np.empty((h * s, w * s, 3), dtype=rgb.dtype)
        except MemoryError:  # a result larger than RAM + swap: no tile size can help
            raise EngineError(f"not enough memory for the {w * s}×{h * s} result") from None
        if ensemble:
            return self._ensemble(rgb, out, size, grayscale, progress, cancel, on_tile)
        self._run_tiles(rgb, out, size, grayscale, progress, cancel, on_tile)
        return out

    def _run_tiles(
        self,
        rgb: np.ndarray,
        out: np.ndarray,
        size: int,
        grayscale: bool,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_tile: TileFn | None,
    ) -> None:
        """Fill ``out`` tile by tile, shrinking the tile on out-of-memory; finished tiles stay."""
        h, w = rgb.shape[:2]
        finished: list[Tile] = []
        while True:
            try:
                self._run_grid(rgb, out, size, finished, grayscale, progress, cancel, on_tile)
                return
            except Cancelled:
                raise
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                smaller = self.next_tile(size, h, w)
                if smaller is None:
                    raise self.out_of_memory() from None
                size = smaller

    def _ensemble(
        self,
        rgb: np.ndarray,
        out: np.ndarray,
        size: int,
        grayscale: bool,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_tile: TileFn | None,
    ) -> np.ndarray:
        """Geometric self-ensemble: the mean of the eight flipped/rotated passes, then rounded.

        Each pass runs the whole transformed image through the ordinary tiled path (its own
        tile plan, so the Winograd blocks stay aligned), keeps the unrounded 0–255 output in
        float32 and is turned back before it is added; the passes are added in a fixed order.
        A pass is therefore bit-identical tiled or untiled, and so is the mean.
        """
        try:
            total = np.zeros(out.shape, np.float32)
        except MemoryError:
            raise EngineError(
                f"not enough memory for the self-ensemble of a {out.shape[1]}×{out.shape[0]} result"
            ) from None
        passes = len(DIHEDRAL)

        def pass_progress(k: int) -> ProgressFn | None:
            if progress is None:
                return None
            return lambda done, count: progress(k * count + done, passes * count)

        for k, (turns, flip) in enumerate(DIHEDRAL):
            src = np.ascontiguousarray(_dihedral(rgb, turns, flip))
            part = np.empty((src.shape[0] * self.scale, src.shape[1] * self.scale, 3), np.float32)
            self._run_tiles(src, part, size, False, pass_progress(k), cancel, None)
            total += _dihedral_inverse(part, turns, flip)
            del part
        total *= 1.0 / passes
        mean = torch.from_numpy(total).permute(2, 0, 1)
        if out.dtype == np.uint16:
            mean = mean * 257.0
        if grayscale:
            mean = mean.mean(dim=0, keepdim=True).expand(3, -1, -1)
        top = 65535.0 if out.dtype == np.uint16 else 255.0
        out[...] = mean.clamp(0.0, top).round().permute(1, 2, 0).numpy().astype(out.dtype)
        if on_tile:
            on_tile(out, (0, out.shape[0], 0, out.shape[1]))
        return out

    def _run_grid(
        self,
        rgb: np.ndarray,
        out: np.ndarray,
        size: int,
        finished: list[Tile],
        grayscale: bool,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_tile: TileFn | None,
    ) -> None:
        """Run the tiles of a ``size`` grid not within ``finished`` into ``out``, adding each to it.

        ``out`` is uint8/uint16 (rounded results) or float32 (one ensemble pass: unrounded,
        in the 0–255 range). The loop (cancel between tiles, progress, the finished list the
        out-of-memory recovery keeps) is shared; a subclass says what one tile does
        (:meth:`_run_tile`).
        """
        h, w = rgb.shape[:2]
        tiles = plan_tiles(h, w, size)
        todo = [t for t in tiles if not any(t.within(f) for f in finished)]
        done = len(tiles) - len(todo)
        self._begin_grid(size, tiles)
        if progress:
            progress(done, len(tiles))
        with torch.inference_mode():
            for t in todo:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
                region = self._run_tile(rgb, out, t, size, grayscale, preview=on_tile is not None)
                finished.append(t)
                done += 1
                if on_tile and region is not None:
                    on_tile(out, region)
                if progress:
                    progress(done, len(tiles))

    def _begin_grid(self, size: int, tiles: list[Tile]) -> None:
        """Called before a grid runs (a subclass may note how it is tiled)."""

    def _run_tile(
        self, rgb: np.ndarray, out: np.ndarray, t: Tile, size: int, grayscale: bool, *, preview: bool
    ) -> tuple[int, int, int, int] | None:
        """Compute tile ``t`` into ``out``; return the output region to show (``preview``), or None."""
        raise NotImplementedError


class Upscaler(TiledUpscaler):
    """A deploy-form network on a device, with the tiled forward pass.

    Separate from :class:`Engine` (which finds weights and reads files) so tests and
    benchmarks can drive a model they built themselves.
    """

    def __init__(
        self, model: FMEN, descriptor: ModelDescriptor, device: torch.device, dtype: torch.dtype
    ) -> None:
        self.descriptor = descriptor
        self.device = device
        self.dtype = dtype
        self.scale = descriptor.scale
        self.overlap = descriptor.receptive_radius
        # channels_last is what oneDNN computes natively on the CPU; it saves a layout
        # conversion around every convolution.
        self.channels_last = device.type == "cpu"
        if device.type == "cpu":
            tune_allocator()
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.to(device=device, dtype=dtype, memory_format=fmt).eval()
        # The network is stock layers; the backend runs it fast (and, on the CPU, exactly).
        self.backend = select_backend(self.model, device, dtype)
        self.kernels_label = self.backend.label

    # -- sizing -------------------------------------------------------------------------------
    def bytes_per_pixel(self) -> int:
        """Peak activation bytes per low-resolution pixel of the lean forward pass.

        Four feature maps are alive at the widest point (the global residual, a block's input,
        its output and the gate), plus the tail's ``3·s²`` channels.
        """
        cfg = self.descriptor.config
        item = torch.finfo(self.dtype).bits // 8
        return (4 * cfg.channels + 2 * cfg.in_channels * cfg.scale**2) * item

    def mmap_cap(self) -> int:
        """Pixels per pass that keep the widest feature map under glibc's mmap threshold."""
        cfg = self.descriptor.config
        item = torch.finfo(self.dtype).bits // 8
        widest = max(cfg.channels, cfg.in_channels * cfg.scale**2) * item
        return MMAP_THRESHOLD_MAX // widest

    def host_bytes(self, height: int, width: int, tile: int) -> int:
        """Main-memory bytes one pass of a ``tile`` grid takes (``tile <= 0``: the whole image).

        The activations (:meth:`bytes_per_pixel` over a tile's box, context included, on the
        CPU; in the GPU's own memory otherwise), the tile's float input and the copies
        :meth:`_store` makes of its ``3·s²`` output channels on the way into the result.
        """
        if tile <= 0 or (tile >= height and tile >= width):
            box = core = height * width
        else:
            side = tile + 2 * self.overlap + 1  # +1: boxes start at even coordinates
            box = min(side, height) * min(side, width)
            core = min(tile, height) * min(tile, width)
        inputs = box * 3 * 4 * 2
        store = core * 3 * self.scale**2 * 4 * 3
        network = box * self.bytes_per_pixel() if self.device.type == "cpu" else 0
        return network + inputs + store

    # -- running ------------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """One network pass up to (not including) PixelShuffle; a seam for fault-injection tests."""
        return self.backend.forward_features(x)

    def _store(self, feat: torch.Tensor, t: Tile, box: Tile, out: np.ndarray, grayscale: bool) -> None:
        """Round a tile's ``3·s²``-channel features into ``out``, doing PixelShuffle on the way.

        Channel ``c·s² + i·s + j`` holds colour ``c`` of sub-pixel ``(i, j)``; rearranging the
        rounded 8-bit values instead of the float features keeps the copy four times smaller.
        """
        s = self.scale
        th, tw = t.y1 - t.y0, t.x1 - t.x0
        top, left = t.y0 - box.y0, t.x0 - box.x0
        y = feat[:, top : top + th, left : left + tw].unflatten(0, (3, s, s))
        if y.dtype != torch.float32:
            y = y.float()
        if out.dtype == np.float32:  # one pass of the self-ensemble: unrounded, averaged later
            region = out[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s]
            target = torch.from_numpy(region).unflatten(0, (th, s)).unflatten(2, (tw, s))
            target.permute(4, 1, 3, 0, 2).copy_(y)
            return
        if out.dtype == np.uint8 and not grayscale and self.device.type == "cpu":
            # The common case in one pass: clamp and round in place, then let the float → uint8
            # copy write straight through a view of ``out`` arranged as (colour, i, j, row, col).
            y = y.clamp_(0.0, 255.0).round_()
            region = out[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s]
            target = torch.from_numpy(region).unflatten(0, (th, s)).unflatten(2, (tw, s))
            target.permute(4, 1, 3, 0, 2).copy_(y)
            return
        if out.dtype == np.uint16:
            y = y * 257.0  # the network works in 0–255
        if grayscale:
            y = y.mean(dim=0, keepdim=True)
        y = y.clamp_(0.0, 65535.0 if out.dtype == np.uint16 else 255.0).round_()
        pixels = y.to(torch.int32 if out.dtype == np.uint16 else torch.uint8).cpu()
        del y
        pixels = pixels.permute(3, 1, 4, 2, 0).reshape(th * s, tw * s, -1).expand(-1, -1, 3).numpy()
        out[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = pixels.astype(out.dtype, copy=False)

    def _tile_tensor(self, rgb: np.ndarray, box: Tile) -> torch.Tensor:
        crop = rgb[box.y0 : box.y1, box.x0 : box.x1]
        # torch wants writable memory; decoded images are often read-only views.
        crop = np.array(crop) if not (crop.flags.c_contiguous and crop.flags.writeable) else crop
        t = torch.from_numpy(crop).to(self.device)
        t = t.to(torch.float32)
        if rgb.dtype == np.uint16:
            t = t / 257.0  # the network works in 0–255
        t = t.permute(2, 0, 1).unsqueeze(0).to(self.dtype)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _run_tile(
        self, rgb: np.ndarray, out: np.ndarray, t: Tile, size: int, grayscale: bool, *, preview: bool
    ) -> tuple[int, int, int, int] | None:
        h, w = rgb.shape[:2]
        s = self.scale
        box = t.box(self.overlap, size, h, w)
        feat = self._forward(self._tile_tensor(rgb, box))[0]
        self._store(feat, t, box, out, grayscale)
        del feat
        return (t.y0 * s, t.y1 * s, t.x0 * s, t.x1 * s)


class Engine:
    """Weights found, network loaded and placed: the unit the CLI and the GUI worker keep alive."""

    def __init__(self, settings: EngineSettings, *, display_name: str | None = None) -> None:
        """Find and load the network ``settings`` name, through the one loader path.

        FMEN-family files run on :class:`Upscaler` (exact tiles, fast kernels); any other
        image-to-image model spandrel recognises runs on
        :class:`~fmen_gui.engine.blend.BlendUpscaler` (overlapping tiles, blended).
        ``display_name`` names a non-FMEN model in labels (e.g. the file it was imported from);
        without it, the registry entry's name, else the architecture, is used.
        """
        from fmen_gui.weights.models import load_file
        from fmen_gui.weights.registry import find_weights

        self.settings = settings
        entry = None
        if settings.weights is not None:
            path = Path(settings.weights)
        else:
            entry = find_weights(settings.model, settings.scale, settings.kind)
            path = Path(entry.path)
        loaded = load_file(path)
        device = devices.resolve_device(settings.device)
        dtype = devices.resolve_dtype(settings.precision, device)
        self.loaded = loaded
        self.notes: tuple[str, ...] = ()  # remarks about how the network runs, added to every result
        up: TiledUpscaler
        try:
            if loaded.fmen is not None:
                up = Upscaler(loaded.module, loaded.fmen, device, dtype)  # type: ignore[arg-type]
            else:
                from fmen_gui.engine.blend import BlendUpscaler, model_key_for, supported_dtype

                dtype, note = supported_dtype(loaded, dtype, settings.precision)
                self.notes = (note,) if note else ()
                up = BlendUpscaler(loaded, device, dtype)
        except RuntimeError as exc:
            raise EngineError(f"cannot place the network on {device}: {str(exc).splitlines()[0]}") from None
        self.upscaler = up
        self.weights_path = path
        self.scale = loaded.scale
        self.device_label = devices.device_label(device)
        self.precision = devices.precision_name(dtype)
        self.kernels = up.kernels_label
        if loaded.fmen is not None:
            descriptor = loaded.fmen
            self.descriptor: ModelDescriptor | None = descriptor
            self.kind = "clean" if settings.weights is not None else settings.kind
            # "FMEN-S ×4 photo": results of the two networks are told apart in the compare view.
            self.label = descriptor.label + ("" if self.kind == "clean" else f" {self.kind}")
            self.model_key = descriptor.key if descriptor.key != "custom" else settings.model
        else:
            self.descriptor = None
            self.kind = "clean"
            name = display_name or (entry.name if entry is not None else "") or loaded.name
            self.label = f"{name} ×{loaded.scale}"
            # An imported model's own key names its outputs; a file given directly, its stem.
            self.model_key = settings.model if entry is not None else model_key_for(path)

    def plan(
        self,
        data: ImageData,
        *,
        pillow_format: str | None = None,
        tile: int | str | None = None,
        available: int | None = None,
        ensemble: bool | None = None,
    ) -> JobPlan:
        """Check that a job can succeed and fit it into the memory there is, before it starts.

        The output format's size limits are checked first (``pillow_format``; None skips them
        and the encoder's share, for callers that encode elsewhere). Then the job's peak is
        estimated as the sum of everything it allocates beyond the decoded input: the result
        array, the upscaled alpha, the network's working set for one tile and what the encoder
        takes (:func:`memory.encode_bytes`, measured). The sum is a little pessimistic, since
        not all of it is alive at once, but a job that does not fit is killed outright under a
        cgroup limit or overcommit, with no chance to recover. What does not fit is adapted in
        the order that costs least: smaller tiles (the policy of the out-of-memory recovery:
        the result is identical), then JPEG without optimize (a few percent larger file); if
        the smallest tile still does not fit, the job fails here with one line.
        ``available`` overrides the measurement (:func:`memory.available_bytes`).
        """
        up = self.upscaler
        s = self.scale
        h, w = data.height, data.width
        out_w, out_h = w * s, h * s
        alpha = data.alpha is not None
        if pillow_format is not None:
            check_output_size(out_w, out_h, pillow_format, data.bit_depth, alpha)
        requested = self.settings.tile if tile is None else tile
        size = up.resolve_tile(requested, h, w)
        sizes = [size]
        # the sequence upscale_rgb's out-of-memory recovery would try
        while (smaller := up.next_tile(sizes[-1], h, w)) is not None:
            sizes.append(smaller)
        pixels = out_w * out_h
        fixed = pixels * 3 * data.rgb.itemsize + JOB_OVERHEAD
        if (
            self.settings.ensemble if ensemble is None else ensemble
        ):  # Upscaler._ensemble's float32 sum and pass
            fixed += 2 * pixels * 3 * 4
        if alpha:
            fixed += pixels * ALPHA_BYTES[data.bit_depth]
        free = memory.available_bytes() if available is None else available
        jpeg = pillow_format == "JPEG"

        def need(t: int, optimize: bool) -> int:
            encode = 0
            if pillow_format is not None:
                encode = memory.encode_bytes(
                    pillow_format,
                    pixels,
                    bit_depth=data.bit_depth,
                    alpha=alpha,
                    grayscale=data.grayscale,
                    optimize=optimize,
                )
            return fixed + up.host_bytes(h, w, t) + encode

        if free is None:
            return JobPlan(size, True, need(size, True), None, up.tile_notes(size))
        for optimize in (True, False) if jpeg else (True,):
            for t in sizes:
                needed = need(t, optimize)
                if needed > free:
                    continue
                notes: list[str] = []
                if t != size:
                    was = "the whole image" if size == 0 else f"{size}-pixel tiles"
                    notes.append(
                        f"{was} would not fit in the {memory.gib(free)} available: using {t}-pixel tiles"
                    )
                if jpeg and not optimize:
                    notes.append(
                        f"JPEG written without optimize: it needs more than the {memory.gib(free)} available"
                    )
                return JobPlan(t, optimize, needed, free, tuple(notes) + up.tile_notes(t))
        needed = need(sizes[-1], False)
        raise EngineError(
            f"not enough memory for the {out_w}×{out_h} result: it needs about {memory.gib(needed)}, "
            f"{memory.gib(free)} available"
        )

    def upscale_data(
        self,
        data: ImageData,
        *,
        tile: int | str | None = None,
        ensemble: bool | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        on_tile: TileFn | None = None,
        plan: JobPlan | None = None,
    ) -> ImageData:
        """Upscale colour with the network and alpha with a smooth filter (see README).

        Without a ``plan`` the job is planned here for the upscaling alone (see :meth:`plan`);
        the plan's notes are added to the result's.
        """
        if plan is None:
            plan = self.plan(data, tile=tile, ensemble=ensemble)
        rgb = self.upscaler.upscale_rgb(
            data.rgb,
            tile=plan.tile,
            grayscale=data.grayscale,
            ensemble=self.settings.ensemble if ensemble is None else ensemble,
            progress=progress,
            cancel=cancel,
            on_tile=on_tile,
        )
        try:
            alpha = None if data.alpha is None else resize_alpha(data.alpha, self.scale)
        except MemoryError:
            raise EngineError("not enough memory to upscale the alpha channel") from None
        notes = data.notes + self.notes + plan.notes
        notes += tuple(n for n in self.upscaler.notes if n not in notes)
        return replace(data, rgb=rgb, alpha=alpha, notes=notes)

    def run(
        self,
        job: Job,
        *,
        on_existing: OnExisting = OnExisting.FAIL,
        batch: Batch | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        on_tile: TileFn | None = None,
        keep_image: bool = False,
    ) -> JobResult:
        """One job, the same way for the CLI and the window (see :func:`fmen_gui.engine.jobs.run`)."""
        return jobs.run(
            self,
            job,
            on_existing=on_existing,
            batch=batch,
            progress=progress,
            cancel=cancel,
            on_tile=on_tile,
            keep_image=keep_image,
        )

    def upscale_file(
        self,
        src: Path,
        dst: Path,
        *,
        fmt: str | None = None,
        quality: int = 95,
        overwrite: bool = False,
        tile: int | str | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        on_tile: TileFn | None = None,
    ) -> JobResult:
        """:meth:`run` for one input and one output file (the self-test's and scripts' call)."""
        job = Job(Path(src), dst=Path(dst), fmt=fmt, quality=quality, tile=tile)
        policy = OnExisting.OVERWRITE if overwrite else OnExisting.FAIL
        return self.run(job, on_existing=policy, progress=progress, cancel=cancel, on_tile=on_tile)
