"""The deploy network's inference pass, lean: what GPUs run, and the walk the CPU backend reuses.

The network in :mod:`fmen_gui.arch.fmen` is written as anyone would write it: every layer
returns a fresh tensor and the head's output is kept until the global residual is added.
For inference that is wasteful, and inference memory and traffic are what FMEN is about.
This pass walks the same modules with the same weights, but

- applies every activation and the HFAB's sigmoid gate in place, so each layer writes one
  buffer once;
- drops a block's input as soon as its first convolution has read it, so at most three
  full-width feature maps are alive at once (plus the global residual).

It is inference only (in-place operations; run it under ``torch.inference_mode``). The four
layer primitives (:meth:`LeanPass.conv` and friends) are stock PyTorch here; the CPU backend
(:mod:`fmen_gui.engine.backends.cpu_fused`) overrides them with fused kernels.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fmen_gui.arch.fmen import ERB, FMEN, HFAB, NEGATIVE_SLOPE
from fmen_gui.engine.backends.base import Backend


def activate_(y: Tensor, act: str) -> Tensor:
    """``act`` (``"leaky_relu"``, ``"sigmoid"`` or ``"none"``) applied in place to a fresh tensor."""
    if act == "leaky_relu":
        return F.leaky_relu(y, NEGATIVE_SLOPE, inplace=True)
    if act == "sigmoid":
        return y.sigmoid_()
    return y


class LeanPass(Backend):
    """The lean inference pass over a deploy-form FMEN (see the module docstring)."""

    def __init__(self, model: FMEN, label: str = "PyTorch") -> None:
        if not model.deploy:
            raise ValueError("the lean pass runs the deploy form; reparameterize the network first")
        super().__init__(model)
        self.label = label

    # -- the layer primitives: ``layer`` is one of the model's 3×3 convolutions ----------------
    def conv(self, layer: nn.Conv2d, x: Tensor) -> Tensor:
        return layer(x)

    def conv_act(self, layer: nn.Conv2d, x: Tensor, act: str) -> Tensor:
        """The convolution followed by ``act`` (see :func:`activate_`)."""
        return activate_(layer(x), act)

    def conv_add(self, layer: nn.Conv2d, x: Tensor, other: Tensor) -> Tensor:
        """``layer(x) + other``."""
        return layer(x).add_(other)

    def conv_gate(self, layer: nn.Conv2d, x: Tensor, gated: Tensor) -> Tensor:
        """``sigmoid(layer(x)) * gated``: the HFAB's attention gate."""
        return self.conv_act(layer, x, "sigmoid").mul_(gated)

    # -- the walk ------------------------------------------------------------------------------
    def forward_features(self, x: Tensor) -> Tensor:
        m = self.model
        x = self.conv(m.head, x)
        h = self.body(self.hfab(m.warmup[1], self.conv(m.warmup[0], x)))
        h = self.conv_add(m.lr_conv, h, x)
        del x
        return self.conv(m.tail[0], h)

    def body(self, h: Tensor) -> Tensor:
        """The ERB + HFAB pairs, each block's input dropped as soon as its first conv has read it.

        The caller must hand over its only reference to ``h``.
        """
        for erb, hfab in zip(self.model.ERBs, self.model.HFABs, strict=True):
            assert isinstance(erb, ERB) and isinstance(hfab, HFAB)
            a = self.conv_act(erb.conv1.rep_conv, h, "leaky_relu")
            del h
            h = self.conv_act(erb.conv2.rep_conv, a, "none")
            del a
            h = self.hfab(hfab, h)
        return h

    def hfab(self, block: nn.Module, x: Tensor) -> Tensor:
        """One HFAB: activations applied in place, the gate multiplied into the output buffer."""
        assert isinstance(block, HFAB)
        out = self.conv_act(block.squeeze, x, "leaky_relu")
        last = len(block.convs) - 1
        for i, erb in enumerate(block.convs):
            # The HFAB's second LeakyReLU follows its last ERB: applied with that ERB's conv.
            # One expression, so the ERB's middle buffer is freed as soon as conv2 has read it.
            act = "leaky_relu" if i == last else "none"
            out = self.conv_act(erb.conv2.rep_conv, self.conv_act(erb.conv1.rep_conv, out, "leaky_relu"), act)
        if last < 0:  # no ERBs: the second LeakyReLU follows the first
            out = F.leaky_relu(out, NEGATIVE_SLOPE, inplace=True)
        return self.conv_gate(block.excitate, out, x)
