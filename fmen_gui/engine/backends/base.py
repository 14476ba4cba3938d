"""What every backend is: a way to run one placed network's forward pass."""

from __future__ import annotations

from torch import Tensor

from fmen_gui.arch.fmen import FMEN


class Backend:
    """Runs ``model`` (already on its device, in its dtype and memory format) for the engine.

    A backend never changes the network or its weights, and the same weights serve every
    backend: what one derives from them (packed kernels) it rebuilds when they change.
    """

    label = "PyTorch"  # what computes the convolutions, for diagnostics (self-test, bug reports)

    def __init__(self, model: FMEN) -> None:
        self.model = model

    def forward_features(self, x: Tensor) -> Tensor:
        """The network up to (not including) the final PixelShuffle: ``3·s²`` channels."""
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        """The whole network: the upscaled image."""
        return self.model.tail[1](self.forward_features(x))
