"""The CPU backend: the lean pass with oneDNN and Winograd kernels, exact at any tile size.

Two things matter on the CPU, and both are this module's business, not the network's:

- **Exactness.** The app promises that a tiled result is bit-identical to a whole-image one.
  Stock PyTorch breaks that twice: it picks oneDNN or its own im2col convolution depending on
  the tensor size, and the two round differently; and ``torch.sigmoid`` uses a vectorised
  ``exp`` for most elements and a scalar one for the leftovers of each thread's chunk. Here
  every convolution calls oneDNN directly (:class:`FusedConv`) or the Winograd kernel
  (:mod:`fmen_gui.engine.backends.winograd`, whose 2×2 blocks the engine aligns by starting
  tile boxes at even coordinates), and the gate's sigmoid, where it is not fused, is built
  from correctly rounded operations only (:func:`gate_sigmoid_`).
- **Speed.** The activation, the global residual and the HFAB's sigmoid gate are applied to
  the results before they are stored (oneDNN post-ops, or the Winograd kernel's epilogue),
  which saves a full read and write of the feature map per layer — a fifth of the run time;
  ``head`` and ``warmup[0]`` run as one 5×5 convolution of the 3-channel input
  (:meth:`CpuFused._stem`); the head's output (the global residual) is recomputed at the end
  instead of being kept through the whole network.

The fused kernels have no backward and are used for CPU inference in float32 and bfloat16
only; anything else takes the same walk with separate operations (still exact).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fmen_gui.arch.fmen import FMEN, NEGATIVE_SLOPE
from fmen_gui.engine.backends import winograd
from fmen_gui.engine.backends.lean import LeanPass, activate_

_MKLDNN = torch.backends.mkldnn.is_available()
_POINTWISE = _MKLDNN and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
# oneDNN post-op names and arguments for the activations FMEN applies right after a convolution.
_POST_OPS: dict[str, tuple[str, list[float]]] = {
    "none": ("none", []),
    "leaky_relu": ("leaky_relu", [NEGATIVE_SLOPE]),
    "sigmoid": ("sigmoid", []),
}

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # ln 2 split so that n * _LN2_HI is exact (Cody-Waite)
_LN2_LO = 1.42860682030941723212e-6
_EXP_TAYLOR = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040)
_GATE_CHUNK = 1 << 18  # elements per slice: the temporaries stay in the L2 cache


def _fusable(x: Tensor) -> bool:
    """Whether oneDNN can run a convolution with its activation fused (CPU inference only).

    The fused kernels have no backward, so anything that may need gradients takes the
    separate-op path.
    """
    return (
        _POINTWISE
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and not torch.is_grad_enabled()
    )


def _exact_sigmoid_(x: Tensor) -> None:
    """In-place sigmoid of a float32 CPU slice from correctly rounded operations only."""
    t = x.clamp_(-80.0, 80.0).neg_()  # t = -x; exp(t) stays finite and normal
    n = torch.mul(t, _LOG2E).round_()
    f = t.sub_(n * _LN2_HI).sub_(n * _LN2_LO)  # |f| <= ln2 / 2 (Cody-Waite reduction)
    p = torch.full_like(f, _EXP_TAYLOR[-1])
    for c in reversed(_EXP_TAYLOR[:-1]):
        p.mul_(f).add_(c)
    two_n = n.to(torch.int32).add_(127).bitwise_left_shift_(23).view(torch.float32)
    torch.mul(p, two_n, out=x)  # exp(-x), written over x (f is no longer needed)
    x.add_(1.0).reciprocal_()


def gate_sigmoid_(x: Tensor) -> Tensor:
    """Sigmoid, in place, whose result per element does not depend on the tensor's size.

    ``torch.sigmoid`` uses a vectorised exp for most elements and a scalar exp for the
    leftovers of each thread's chunk, so on the CPU the same value can round differently in a
    tile and in the whole image. In float32 on the CPU this version uses only correctly
    rounded operations (+ − × ÷, round, bit shifts), so every element gets identical bits on
    every path, with the accuracy of ``torch.sigmoid`` (about 1e-7). It works through the
    tensor in row slices, which keeps its temporaries small and cache-resident. Other devices
    and dtypes use ``torch.sigmoid_``.
    """
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return x.sigmoid_()
    if x.dim() != 4:
        _exact_sigmoid_(x)
        return x
    per_row = max(1, x.shape[0] * x.shape[1] * x.shape[3])
    rows = max(1, _GATE_CHUNK // per_row)
    for r in range(0, x.shape[2], rows):
        _exact_sigmoid_(x[:, :, r : r + rows])
    return x


def gate_sigmoid(x: Tensor) -> Tensor:
    """Out-of-place :func:`gate_sigmoid_`."""
    return gate_sigmoid_(x.clone())


def _activate(y: Tensor, act: str) -> Tensor:
    """``act`` applied in place to a fresh tensor, with the size-independent sigmoid."""
    return gate_sigmoid_(y) if act == "sigmoid" else activate_(y, act)


class FusedConv:
    """One of the network's 3×3 convolutions as the CPU runs it: same bits for a pixel whatever
    the image size, and the layer's activation, residual or gate applied before the store.

    On the CPU PyTorch picks oneDNN or its own im2col path depending on the tensor size, and
    the two round differently; tiles and whole images would then disagree in the last bit.
    Calling oneDNN directly makes every size take the same kernel.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv
        self._wino_cache: tuple | None = None  # (key, transformed weights and padded bias)

    def __call__(self, x: Tensor) -> Tensor:
        c = self.conv
        if _MKLDNN and x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16):
            return torch.ops.aten.mkldnn_convolution(
                x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups
            )
        return c(x)

    def _winograd(self, x: Tensor, act: str, other: Tensor | None = None, other_op: int = 0) -> Tensor | None:
        """The layer by :mod:`~fmen_gui.engine.backends.winograd` where that kernel takes it, else None.

        The transformed weights are kept, keyed on the weights' storage and version, so they
        are rebuilt when the network is moved or its weights change.
        """
        c = self.conv
        if not winograd.supports(c, x):
            return None
        if other is not None and (other.shape != (1, c.out_channels, *x.shape[2:]) or other.dtype != x.dtype):
            return None
        key = (
            c.weight.data_ptr(),
            c.weight._version,
            c.bias.data_ptr() if c.bias is not None else 0,
            winograd.lanes(),
        )
        if self._wino_cache is None or self._wino_cache[0] != key:
            self._wino_cache = (key, winograd.pack(c.weight, c.bias, winograd.lanes()))
        return winograd.conv3x3(x, self._wino_cache[1], c.out_channels, act, NEGATIVE_SLOPE, other, other_op)

    def forward_act(self, x: Tensor, act: str) -> Tensor:
        """This convolution followed by ``act`` (``"leaky_relu"``, ``"sigmoid"`` or ``"none"``).

        On the CPU the activation is applied to the results before they are stored — by the
        Winograd kernel (wide layers) or as a oneDNN post-op. Both apply the same code to every
        vector lane whatever the image size, so the result of a pixel stays independent of the
        tile it is in.
        """
        if _fusable(x):
            y = self._winograd(x, act)
            if y is not None:
                return y
            c = self.conv
            attr, scalars = _POST_OPS[act]
            return torch.ops.mkldnn._convolution_pointwise(
                x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, attr, scalars, None
            )
        return _activate(self(x), act)

    def forward_add(self, x: Tensor, other: Tensor) -> Tensor:
        """``conv(x) + other``; on the CPU the sum is added before the result is stored."""
        if _fusable(x) and other.dtype == x.dtype:
            y = self._winograd(x, "none", other, winograd.ADD)
            if y is not None:
                return y
            c = self.conv
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, other, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups,
                "add", None, None, [], None,
            )  # fmt: skip
        return self(x).add_(other)

    def forward_gate(self, x: Tensor, gated: Tensor) -> Tensor:
        """``sigmoid(conv(x)) * gated``: FMEN's attention gate, in one pass where possible."""
        if _fusable(x):
            y = self._winograd(x, "sigmoid", gated, winograd.MUL)
            if y is not None:
                return y
        return self.forward_act(x, "sigmoid").mul_(gated)


class CpuFused(LeanPass):
    """The lean pass with every convolution a :class:`FusedConv`, and the composed stem."""

    def __init__(self, model: FMEN, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(model)
        self._convs = {m: FusedConv(m) for m in model.modules() if isinstance(m, nn.Conv2d)}
        self._stem_cache: tuple | None = None  # (key, weight, bias) of the composed head + warmup[0]
        wide = dtype == torch.float32 and winograd.available()  # the kernel takes the wide layers
        self.label = f"Winograd {winograd.isa().upper()} + oneDNN" if wide else "oneDNN"

    def conv(self, layer: nn.Conv2d, x: Tensor) -> Tensor:
        return self._convs[layer](x)

    def conv_act(self, layer: nn.Conv2d, x: Tensor, act: str) -> Tensor:
        return self._convs[layer].forward_act(x, act)

    def conv_add(self, layer: nn.Conv2d, x: Tensor, other: Tensor) -> Tensor:
        return self._convs[layer].forward_add(x, other)

    def conv_gate(self, layer: nn.Conv2d, x: Tensor, gated: Tensor) -> Tensor:
        return self._convs[layer].forward_gate(x, gated)

    def forward_features(self, x: Tensor) -> Tensor:
        if _fusable(x):
            return self._forward_fused(x)
        return super().forward_features(x)

    def _forward_fused(self, inp: Tensor) -> Tensor:
        """The CPU inference pass: activations fused into the convolutions, buffers freed early.

        The head's output (the global residual) is recomputed at the end instead of being kept
        through the whole network, so at most three full-width feature maps are alive at once.
        """
        m = self.model
        h = self.body(self.hfab(m.warmup[1], self._stem(inp)))
        h = self.conv_add(m.lr_conv, h, self.conv(m.head, inp))
        return self.conv_act(m.tail[0], h, "none")

    def _stem(self, inp: Tensor) -> Tensor:
        """``warmup[0](head(inp))`` as one 5×5 convolution of the 3-channel input.

        Two 3×3 layers with nothing between them are one 5×5 layer; reading 3 channels
        instead of 50 makes it about five times cheaper than ``warmup[0]`` alone. The two
        differ only where ``warmup[0]`` sees its zero padding — the outermost ring of pixels
        — and that ring is recomputed the two-layer way from thin strips of the input.
        """
        head, warm = self.model.head, self.model.warmup[0]
        key = (
            inp.dtype,
            inp.device,
            *((p.data_ptr(), p._version) for p in (*head.parameters(), *warm.parameters())),
        )
        if self._stem_cache is None or self._stem_cache[0] != key:
            self._stem_cache = (key, *compose_conv3x3(warm, head, inp.dtype))
        _, weight, bias = self._stem_cache
        out = torch.ops.mkldnn._convolution_pointwise(
            inp, weight, bias, [2, 2], [1, 1], [1, 1], 1, "none", [], None
        )

        def two_layers(strip: Tensor) -> Tensor:
            return self.conv(warm, self.conv(head, strip))

        out[:, :, :1] = two_layers(inp[:, :, :3])[:, :, :1]
        out[:, :, -1:] = two_layers(inp[:, :, -3:])[:, :, -1:]
        out[:, :, :, :1] = two_layers(inp[:, :, :, :3])[:, :, :, :1]
        out[:, :, :, -1:] = two_layers(inp[:, :, :, -3:])[:, :, :, -1:]
        return out


@torch.no_grad()
def compose_conv3x3(outer: nn.Conv2d, inner: nn.Conv2d, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Weight and bias of the 5×5 convolution equal to ``outer(inner(x))`` (both 3×3, padding 1).

    Composed in float64 and rounded once, so the fused layer is as accurate as the pair.
    """
    wo, wi = outer.weight.double(), inner.weight.double()
    bo = outer.bias.double() if outer.bias is not None else wo.new_zeros(wo.shape[0])
    bi = inner.bias.double() if inner.bias is not None else wi.new_zeros(wi.shape[0])
    weight = wo.new_zeros(wo.shape[0], wi.shape[1], 5, 5)
    for ky in range(3):
        for kx in range(3):
            # Tap (ky, kx) of the outer conv reads the inner conv's output there, whose own
            # taps reach the input at offsets (ky + ly, kx + lx) of the 5×5 window.
            weight[:, :, ky : ky + 3, kx : kx + 3] += torch.einsum("om,mihw->oihw", wo[:, :, ky, kx], wi)
    bias = bo + torch.einsum("omhw,m->o", wo, bi)
    fmt = torch.channels_last if outer.weight.is_contiguous(memory_format=torch.channels_last) else None
    weight = weight.to(dtype)
    if fmt is not None:
        weight = weight.contiguous(memory_format=fmt)
    return weight, bias.to(dtype)
