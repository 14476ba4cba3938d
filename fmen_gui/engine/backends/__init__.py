"""How the engine runs a network: one backend per device, chosen by :func:`select_backend`.

The network (:mod:`fmen_gui.arch`) is stock PyTorch layers; the backends run its forward
pass over the same modules and weights, faster and, on the CPU, bit-exact at any tile size:

- :class:`~fmen_gui.engine.backends.cpu_fused.CpuFused` on the CPU: oneDNN called directly
  with fused activations, residual and gate, the Winograd kernel for wide layers, the
  composed stem; tiled output identical to untiled.
- :class:`~fmen_gui.engine.backends.lean.LeanPass` on GPUs (CUDA, MPS): in-place activations,
  block inputs released early.
- :class:`~fmen_gui.engine.backends.reference.Reference`: the network's own forward, for a
  train-form network (which the other two do not walk) and as the benchmarks' yardstick.
"""

from __future__ import annotations

import torch

from fmen_gui.arch.fmen import FMEN
from fmen_gui.engine.backends.base import Backend
from fmen_gui.engine.backends.cpu_fused import CpuFused
from fmen_gui.engine.backends.lean import LeanPass
from fmen_gui.engine.backends.reference import Reference


def select_backend(model: FMEN, device: torch.device, dtype: torch.dtype) -> Backend:
    """The backend for ``model`` once it is placed on ``device`` in ``dtype``."""
    if not model.deploy:
        return Reference(model)
    if device.type == "cpu":
        return CpuFused(model, dtype)
    return LeanPass(model, device.type.upper())


__all__ = ["Backend", "CpuFused", "LeanPass", "Reference", "select_backend"]
