"""Winograd F(2×2, 3×3) convolutions for the CPU path, with fused epilogues.

FMEN's 3×3 layers dominate its run time, and on the CPU they are compute-bound: oneDNN's
direct convolution already runs near the FMA peak, and for FMEN-S's 50 channels it even pays
for 64 (its vectors hold 16). Winograd's F(2×2, 3×3) needs 2.25× fewer multiply-adds, so the
small C kernel in ``winograd.c`` (built with the package where a C compiler is available, see
``setup.py``) runs the wide layers about 1.6× (AVX-512) or 1.4× (AVX2) faster than oneDNN, and
folds the activation, the residual sum and FMEN's sigmoid gate into the same pass over memory.

Exactness: each 2×2 output block is computed from its 4×4 input window by one fixed sequence
of operations, so results do not depend on the image size as long as blocks are aligned to
even coordinates — the engine's tile boxes always start at even coordinates.

The kernel comes in two builds, AVX-512 (16 lanes) and AVX2 + FMA (8 lanes, for laptops), and
:func:`isa` picks the best the CPU has. Nothing here is required: where the library is missing
(no compiler at install time, a non-x86 machine, a frozen build without it) or the CPU has
neither, :func:`available` is False and the CPU backend uses oneDNN alone. ``FMEN_NO_WINOGRAD=1``
switches it off and ``FMEN_WINOGRAD_ISA=avx2`` forces the AVX2 build, for comparisons.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import platform
import threading
from pathlib import Path

import torch
from torch import Tensor

ACT = {"none": 0, "leaky_relu": 1, "sigmoid": 2}
ADD, MUL = 1, 2  # what the epilogue does with ``other``: residual sum, or gate product
MAX_CHANNELS = 64
# F(2, 3) weight transform: U = G g Gᵀ for each 3×3 kernel g.
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_isa = 0  # 512 (AVX-512), 256 (AVX2) or 0 (neither)
_checked = False


def library_path() -> Path | None:
    """The compiled kernel next to this module (in a source tree, a wheel or a frozen app)."""
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_winograd{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _cpu_isa() -> int:
    """The widest build this CPU runs (as PyTorch detects it), lowered by FMEN_WINOGRAD_ISA."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return 0
    capability = torch.backends.cpu.get_cpu_capability()
    best = 512 if capability.startswith("AVX512") else 256 if capability.startswith("AVX2") else 0
    if os.environ.get("FMEN_WINOGRAD_ISA", "").lower() == "avx2":
        best = min(best, 256)
    return best


def _load() -> ctypes.CDLL | None:
    global _lib, _checked, _isa
    with _lock:
        if _checked:
            return _lib
        _checked = True
        cpu = _cpu_isa()
        if os.environ.get("FMEN_NO_WINOGRAD") or not cpu:
            return None
        path = library_path()
        if path is None:
            return None
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            return None
        lib.fmen_wino_work_floats.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.fmen_wino_work_floats.restype = ctypes.c_long
        lib.fmen_wino_conv3x3.restype = ctypes.c_int
        lib.fmen_wino_conv3x3.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,  # x, H, W, cin
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,  # U, bias, cout, out
            ctypes.c_int, ctypes.c_float,  # act, slope
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,  # other, op, work, threads
            ctypes.c_int,  # isa
        ]  # fmt: skip
        _lib, _isa = lib, cpu
        return lib


def available() -> bool:
    """Whether the Winograd kernel can run here (library built, CPU with AVX2 or AVX-512)."""
    return _load() is not None


def isa() -> str:
    """The build in use: ``"avx512"``, ``"avx2"`` or ``""`` (none)."""
    return {512: "avx512", 256: "avx2"}.get(_isa, "") if _load() is not None else ""


def lanes() -> int:
    """Vector width of the build in use, in floats (the packing of :func:`pack` depends on it)."""
    _load()
    return 16 if _isa == 512 else 8


def reset() -> None:
    """Forget the availability check (tests flip ``FMEN_NO_WINOGRAD``)."""
    global _lib, _checked, _isa
    with _lock:
        _lib, _checked, _isa = None, False, 0


@torch.no_grad()
def pack(weight: Tensor, bias: Tensor | None, width: int = 16) -> tuple[Tensor, Tensor]:
    """Transformed weights ``U = G g Gᵀ`` as ``[16][cin↑][cout↑]``, and the padded bias.

    Computed in float64 and rounded once; ↑ rounds up to whole vectors of ``width`` lanes
    (:func:`lanes` of the build that will use them), with zeros.
    """
    cout, cin = weight.shape[:2]
    cinp, co = -(-cin // width) * width, -(-cout // width) * width
    g = torch.tensor(_G, dtype=torch.float64)
    u = torch.einsum("ik,ockl,jl->ijco", g, weight.detach().double().cpu(), g).reshape(16, cin, cout)
    full = torch.zeros(16, cinp, co, dtype=torch.float64)
    full[:, :cin, :cout] = u
    packed = full.flatten()
    b = torch.zeros(co, dtype=torch.float32)
    if bias is not None:
        b[:cout] = bias.detach().float().cpu()
    return packed.float().contiguous(), b


def conv3x3(
    x: Tensor,
    packed: tuple[Tensor, Tensor],
    cout: int,
    act: str = "none",
    slope: float = 0.0,
    other: Tensor | None = None,
    other_op: int = 0,
) -> Tensor:
    """``act(conv(x) + bias [+ other]) [* other]`` for one channels-last float32 CPU image."""
    lib = _load()
    assert lib is not None, "check available() first"
    _, cin, height, width = x.shape
    x = x.contiguous(memory_format=torch.channels_last)
    out = torch.empty((1, cout, height, width), dtype=torch.float32, memory_format=torch.channels_last)
    if other is not None:
        other = other.contiguous(memory_format=torch.channels_last)
    u, b = packed
    # At least 8 rows of 2×2 blocks per thread: below that, waking a thread costs more than it
    # saves (and a tiny job starts no thread at all).
    threads = max(1, min(torch.get_num_threads(), (height + 1) // 2 // 8))
    work = torch.empty((threads, lib.fmen_wino_work_floats(cin, cout, _isa)), dtype=torch.float32)
    # ctypes releases the GIL for the call; the kernel shares the rows between OpenMP threads.
    status = lib.fmen_wino_conv3x3(
        x.data_ptr(), height, width, cin, u.data_ptr(), b.data_ptr(), cout, out.data_ptr(),
        ACT[act], slope, other.data_ptr() if other is not None else None,
        other_op if other is not None else 0, work.data_ptr(), threads, _isa,
    )  # fmt: skip
    if status:
        raise RuntimeError(f"Winograd kernel refused {cin}→{cout} channels")
    return out


def supports(conv: torch.nn.Conv2d, x: Tensor) -> bool:
    """Whether :func:`conv3x3` computes this layer on this input, and is worth it.

    Measured here, it beats oneDNN when the layer has at least 32 output channels; narrower
    layers stay with oneDNN.
    """
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.shape[0] == 1
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.in_channels <= MAX_CHANNELS
        and 32 <= conv.out_channels <= MAX_CHANNELS
        and not torch.is_grad_enabled()
        and available()
    )


__all__ = [
    "ACT",
    "ADD",
    "MUL",
    "available",
    "conv3x3",
    "isa",
    "lanes",
    "library_path",
    "pack",
    "reset",
    "supports",
]
