"""Any image-to-image model spandrel loads, run in overlapping tiles that are blended.

FMEN's tiles are exact (:class:`~fmen_gui.engine.pipeline.Upscaler` cuts them with the
network's whole receptive field), which needs to know the network. Other architectures have
receptive fields that are large or unbounded (attention windows, pooled statistics, global
residuals), so their tiles overlap by a fixed low-resolution margin and each output pixel is
the weighted mean of the tiles that computed it: the weight falls from 1 inside a tile to 0
at its cut edges (a raised-cosine ramp over twice the margin), so the pixels computed with
the least context count least and neighbouring tiles cross-fade instead of meeting at a seam.
Weights and weighted sums are accumulated in float32 over the whole output, divided, and
rounded once.

The image is first padded once, as spandrel pads a whole image to the model's
``size_requirements``, and every box starts on a grid of :data:`ALIGN` pixels (a multiple of
``multiple_of``) in that padded image. A ``multiple_of`` comes from downsampling, pooling or
attention windows, so aligned boxes see the very windows and pooling bins the whole image
does: a tile's output then differs from the whole image's only through what lies beyond its
margin, not through a shifted window grid.

spandrel's advice is followed: ``SUPPORTED`` models tile as the memory needs;
``DISCOURAGED`` ones run on the whole image unless the memory forces tiles (with a note);
``INTERNAL`` ones never tile (out of memory is then a one-line error).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import torch

from fmen_gui.engine import devices
from fmen_gui.engine.jobs import ProgressFn, TileFn
from fmen_gui.engine.memory import tune_allocator
from fmen_gui.engine.pipeline import TiledUpscaler
from fmen_gui.engine.tiling import Tile
from fmen_gui.errors import EngineError
from fmen_gui.weights.models import LoadedModel

# Low-resolution context on each side of a tile, before rounding up to the model's multiple_of.
# Convolutional SR networks see 10–40 pixels; what they see beyond the margin only reaches
# the outer half of the cross-fade, where the tile's weight is small.
MARGIN = 32
# Activations a CPU pass may take when the tile is "auto", whole image or per tile. Larger than
# FMEN's budgets: these networks are 10–100× wider, so FMEN's would mean tiny tiles whose
# overlap costs more compute than the tiles themselves; plan() still shrinks them to fit.
CPU_BUDGET = 1024 * 2**20
# Boxes start on this grid (rounded up to a multiple of multiple_of): attention windows of
# 4, 8 or 16 pixels and pooling by 2ⁿ line up with the whole image's.
ALIGN = 16
# The side of the probe input that measures a model's activations (see BlendUpscaler.bytes_per_pixel).
PROBE_SIDE = 16
# Feature maps of the probe's widest layer assumed alive at once (input, output, a residual, a
# concatenation): the probe sees module outputs, not the temporaries inside a module.
ALIVE = 4


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_image(rgb: np.ndarray, requirements: object) -> np.ndarray:
    """``rgb`` padded at the bottom and right as spandrel pads a whole input (reflect, then
    replicate), by its own function, so a whole-image pass and the tiles see the same pixels."""
    from spandrel.__helpers.size_req import pad_tensor  # not re-exported by spandrel

    pad_w, pad_h = requirements.get_padding(rgb.shape[1], rgb.shape[0])  # type: ignore[attr-defined]
    if not pad_w and not pad_h:
        return rgb
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    if t.dtype != torch.uint8:
        t = t.to(torch.int32)  # torch has no reflection padding for uint16
    _padded, t = pad_tensor(t, requirements)
    return t[0].permute(1, 2, 0).numpy().astype(rgb.dtype)


def supported_dtype(
    loaded: LoadedModel, dtype: torch.dtype, precision: str
) -> tuple[torch.dtype, str | None]:
    """``dtype`` if the model runs in it, else fp32 and the note that says so.

    spandrel marks architectures whose half-precision outputs are broken (overflowing
    attention, NaNs) as not supporting fp16 or bf16; :func:`devices.resolve_dtype` picks what
    the device does well, this picks what the model does correctly.
    """
    name = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype)
    ok = {torch.float16: loaded.supports_half, torch.bfloat16: loaded.supports_bfloat16}.get(dtype, True)
    if ok:
        return dtype, None
    asked = "" if precision == "auto" else " as asked"
    return torch.float32, f"{loaded.arch} does not run in {name}{asked}: using fp32"


def model_key_for(path: Path) -> str:
    """The model name in output file names for a model file given directly (its stem, slugged).

    The registry's slug rule (:func:`~fmen_gui.weights.registry.model_slug`), and never one of
    the FMEN presets' keys, so a result is not mistaken for theirs.
    """
    from fmen_gui.weights.registry import RESERVED_KEYS, model_slug

    slug = model_slug(Path(path).stem)
    return f"model-{slug}" if slug in RESERVED_KEYS else slug


def _ramp(lo: int, hi: int, limit: int, scale: int, margin: int) -> np.ndarray:
    """Blend weights along one axis of a box ``[lo, hi)`` of an image ``limit`` pixels long.

    Output pixel centres are measured (in low-resolution pixels) from the box's cut edges; an
    edge on the image border is no cut. The weight rises from 0 at a cut as a raised cosine
    and reaches 1 at ``2·margin``, so where two boxes overlap by ``2·margin`` their weights
    sum to one, and every pixel of a tile's core (at least ``margin`` in) weighs at least 1/2.
    """
    p = (np.arange((hi - lo) * scale, dtype=np.float64) + 0.5) / scale
    d = np.full(p.shape, np.inf)
    if lo > 0:
        d = np.minimum(d, p)
    if hi < limit:
        d = np.minimum(d, (hi - lo) - p)
    t = np.clip(d / (2 * margin), 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


class BlendUpscaler(TiledUpscaler):
    """A spandrel model on a device, run in overlapping, blended tiles (see the module doc).

    The interface is :class:`~fmen_gui.engine.pipeline.TiledUpscaler`'s, so the engine, its
    memory plan and the out-of-memory recovery treat it like FMEN's :class:`Upscaler`.

    The network is called through spandrel's descriptor, which pads an input that misses the
    model's ``size_requirements`` (reflect, then replicate) and crops the output again,
    applies the architecture's own call convention (some add inputs) and clamps to [0, 1]:
    one tested definition of those rules instead of a second one here. The image is padded
    once up front by the same function, and boxes are aligned (see the module doc), so the
    descriptor pads a tile only for a ``minimum`` or ``square`` requirement.
    """

    def __init__(self, loaded: LoadedModel, device: torch.device, dtype: torch.dtype) -> None:
        self.loaded = loaded
        self.device = device
        self.dtype = dtype
        self.scale = loaded.scale
        self.tiling = loaded.tiling
        self.minimum, self.multiple, self.square = loaded.size_requirements
        self.overlap = round_up(MARGIN, self.multiple)
        self.align = round_up(ALIGN, self.multiple)
        self.cpu_budgets = (CPU_BUDGET, CPU_BUDGET)
        # One-channel models (denoisers, grayscale SR) run on each colour plane in turn.
        self.per_plane = loaded.input_channels == 1
        if device.type == "cpu":
            tune_allocator()
        self.model = loaded.spandrel
        self.model.to(device=device, dtype=dtype)
        self.model.eval()
        self.kernels_label = f"PyTorch ({loaded.arch}, blended tiles)"
        self._bytes_per_pixel: int | None = None  # measured on first use (see bytes_per_pixel)

    # -- sizing -------------------------------------------------------------------------------
    def bytes_per_pixel(self) -> int:
        """Peak activation bytes per low-resolution pixel, measured once by a probe.

        The architectures differ too much for a formula, so a small input (``PROBE_SIDE``
        square, meeting the size requirements) is run once with a hook on every module, and
        the largest output any module returns, per input pixel, is taken :data:`ALIVE` times,
        plus the input and output images. Window attention and convolutions cost the same per
        pixel at any size, so the figure scales to tiles; a model whose cost grows faster
        (global attention) is one spandrel marks ``INTERNAL``, which is never tiled anyway.
        """
        if self._bytes_per_pixel is not None:
            return self._bytes_per_pixel
        side = round_up(max(PROBE_SIDE, self.minimum), self.multiple)
        channels = self.loaded.input_channels
        widest = 0

        def hook(_module: torch.nn.Module, _args: object, output: object) -> None:
            nonlocal widest
            for t in output if isinstance(output, tuple | list) else (output,):
                if isinstance(t, torch.Tensor):
                    widest = max(widest, t.numel() * t.element_size())

        handles = [m.register_forward_hook(hook) for m in self.model.model.modules()]
        try:
            x = torch.zeros(1, channels, side, side, device=self.device, dtype=self.dtype)
            self.model(x)
        except Exception as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise EngineError(f"{self.loaded.arch} fails on a {side}×{side} test image: {detail}") from None
        finally:
            for handle in handles:
                handle.remove()
        item = torch.finfo(self.dtype).bits // 8
        images = (channels + self.loaded.output_channels * self.scale**2) * item
        self._bytes_per_pixel = math.ceil(ALIVE * widest / side**2) + images
        return self._bytes_per_pixel

    def host_bytes(self, height: int, width: int, tile: int) -> int:
        """Main-memory bytes one pass of a ``tile`` grid takes (``tile <= 0``: the whole image).

        The activations of one box (:meth:`bytes_per_pixel`; on the GPU they are in its own
        memory), the box's float input, its float output with the weighted copy, and the
        float32 sums of the whole output (three colours and the weight), alive all job long.
        """
        pad_w, pad_h = self.model.size_requirements.get_padding(width, height)
        if tile <= 0 or (tile >= height and tile >= width):
            box = (height + pad_h) * (width + pad_w)
        else:
            side = tile + 2 * self.overlap + 2 * (self.align - 1)  # edges on the alignment grid
            box = min(side, height + pad_h) * min(side, width + pad_w)
        s2 = self.scale**2
        inputs = box * 3 * 4 * 2
        outputs = box * s2 * 3 * 4 * 3
        sums = height * width * s2 * 4 * 4
        network = box * self.bytes_per_pixel() if self.device.type == "cpu" else 0
        return network + inputs + outputs + sums

    # -- spandrel's tiling advice -------------------------------------------------------------
    def resolve_tile(self, tile: int | str, height: int, width: int) -> int:
        """As for FMEN, but models that should see the whole image get it (tile 0)."""
        size = super().resolve_tile(tile, height, width)
        return size if self.tiling == "supported" else 0

    def next_tile(self, size: int, height: int, width: int) -> int | None:
        return None if self.tiling == "internal" else super().next_tile(size, height, width)

    def tile_notes(self, size: int) -> tuple[str, ...]:
        if size > 0 and self.tiling == "discouraged":
            return (
                f"{self.loaded.arch} works best on the whole image, which does not fit in memory: "
                f"it ran in {size}-pixel tiles, so faint seams are possible",
            )
        return ()

    def out_of_memory(self) -> EngineError:
        if self.tiling == "internal":
            return EngineError(
                f"out of memory on {devices.device_label(self.device)}: {self.loaded.arch} needs the "
                "whole image at once and cannot run in tiles"
            )
        return super().out_of_memory()

    # -- running ------------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """One network pass through spandrel's descriptor; a seam for fault-injection tests."""
        return self.model(x)

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
        """The shared tile loop (out-of-memory recovery included) over the padded image, into
        float32 sums, then ``out``.

        The sums outlive a failed grid, so the tiles finished before a smaller tile was
        needed keep their share.
        """
        padded = pad_image(rgb, self.model.size_requirements)
        s = self.scale
        oh, ow = out.shape[:2]
        ph, pw = padded.shape[0] * s, padded.shape[1] * s
        try:
            self._sums = (np.zeros((ph, pw, 3), np.float32), np.zeros((ph, pw), np.float32))
        except MemoryError:
            raise EngineError(f"not enough memory to blend the tiles of a {ow}×{oh} result") from None
        try:
            super()._run_tiles(padded, out, size, grayscale, progress, cancel, on_tile)
            self._resolve(out, 0, oh, 0, ow)
        finally:
            del self._sums
        if on_tile:
            on_tile(out, (0, oh, 0, ow))

    def _resolve(self, out: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> None:
        """Weighted sums → ``out`` (rounded once; float32 ``out``: unrounded 0–255, for the ensemble)."""
        total, weight = self._sums
        y1, x1 = min(y1, out.shape[0]), min(x1, out.shape[1])  # the padding is not part of it
        mean = total[y0:y1, x0:x1] / weight[y0:y1, x0:x1, None]
        if out.dtype == np.float32:
            out[y0:y1, x0:x1] = mean * 255.0
            return
        top = 65535.0 if out.dtype == np.uint16 else 255.0
        mean *= top
        np.rint(mean, out=mean)
        np.clip(mean, 0.0, top, out=mean)
        out[y0:y1, x0:x1] = mean.astype(out.dtype)

    def _box(self, t: Tile, size: int, height: int, width: int) -> Tile:
        """The input box of a tile: the tile plus the margin, its edges on the alignment grid."""
        if size <= 0 or (size >= height and size >= width):
            return Tile(0, height, 0, width)
        a = self.align
        return Tile(
            max(0, (t.y0 - self.overlap) // a * a),
            min(height, round_up(t.y1 + self.overlap, a)),
            max(0, (t.x0 - self.overlap) // a * a),
            min(width, round_up(t.x1 + self.overlap, a)),
        )

    def _tile_output(self, rgb: np.ndarray, box: Tile, grayscale: bool) -> torch.Tensor:
        """The model's [0, 1] float32 output for a box: (colours, rows, columns) on the CPU.

        One-channel models see each colour plane in turn (only one for a grayscale image);
        a colour model's output of a grayscale image is made gray by the mean of its colours,
        as FMEN's is.
        """
        crop = np.ascontiguousarray(rgb[box.y0 : box.y1, box.x0 : box.x1])
        top = 65535.0 if rgb.dtype == np.uint16 else 255.0
        x = torch.from_numpy(crop).to(self.device).permute(2, 0, 1).unsqueeze(0)
        x = x.to(torch.float32) / top
        if self.per_plane:
            planes = (0,) if grayscale else (0, 1, 2)
            y = torch.cat([self._forward(x[:, c : c + 1].to(self.dtype)).float() for c in planes], dim=1)
        else:
            y = self._forward(x.to(self.dtype)).float()
            if grayscale:
                y = y.mean(dim=1, keepdim=True)
        return y[0].cpu()

    def _begin_grid(self, size: int, tiles: list[Tile]) -> None:
        if size > 0 and len(tiles) > 1:
            self.notes += tuple(n for n in self.tile_notes(size) if n not in self.notes)

    def _run_tile(
        self, rgb: np.ndarray, out: np.ndarray, t: Tile, size: int, grayscale: bool, *, preview: bool
    ) -> tuple[int, int, int, int] | None:
        """Add tile ``t``'s weighted output to the sums; with ``preview``, resolve its box into ``out``."""
        h, w = rgb.shape[:2]
        s = self.scale
        total, weight = self._sums
        box = self._box(t, size, h, w)
        y = self._tile_output(rgb, box, grayscale)
        wy = torch.from_numpy(_ramp(box.y0, box.y1, h, s, self.overlap))
        wx = torch.from_numpy(_ramp(box.x0, box.x1, w, s, self.overlap))
        ys, xs = slice(box.y0 * s, box.y1 * s), slice(box.x0 * s, box.x1 * s)
        wt = wy[:, None] * wx[None, :]
        torch.from_numpy(total[ys, xs]).permute(2, 0, 1).addcmul_(y, wt)
        torch.from_numpy(weight[ys, xs]).add_(wt)
        del y
        region = (ys.start, min(ys.stop, out.shape[0]), xs.start, min(xs.stop, out.shape[1]))
        if not preview or out.dtype == np.float32 or region[0] >= region[1] or region[2] >= region[3]:
            return None
        # A preview: the box as blended so far (its edges change with the next tiles).
        self._resolve(out, *region)
        return region
