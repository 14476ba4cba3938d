"""The reference backend: the network's own forward pass, stock PyTorch layers.

What anyone would run, and what the others are measured against: the benchmarks time the
engine against it, and the fused backends are tested to compute the same function. The
engine picks it only for a train-form network, which the faster passes do not walk.
"""

from __future__ import annotations

from torch import Tensor

from fmen_gui.engine.backends.base import Backend


class Reference(Backend):
    label = "PyTorch (reference)"

    def forward_features(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)
