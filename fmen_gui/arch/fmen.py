"""The FMEN / FMEN-S network (Du et al., CVPR Workshops 2022), in train and deploy forms.

Written from the paper's description. The *train form* carries the over-parameterised
blocks (RRRB expand/reduce convolutions, BatchNorm in the HFABs) that make optimisation
easier; the *deploy form* is what runs in the app: every block collapses into plain 3×3
convolutions, which is why FMEN is fast and light at inference. Both forms share the
module names of the authors' release so deploy-form state dicts load without renaming.

Pixels travel in the 0–255 range with no mean shift, as in the released weights.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fmen_gui.arch import winograd

NEGATIVE_SLOPE = 0.1


@dataclass(frozen=True)
class FMENConfig:
    """Every hyper-parameter that changes the shape of the network.

    Kept apart from the module so a configuration can be derived from a state dict, compared
    with the presets and reported to the engine without building anything.
    """

    channels: int = 50
    mid_channels: int = 16
    down_blocks: int = 4
    up_blocks: tuple[int, ...] = (2, 1, 1, 1, 1)
    scale: int = 4
    expand_ratio: int = 2
    in_channels: int = 3

    def __post_init__(self) -> None:
        if len(self.up_blocks) != self.down_blocks + 1:
            raise ValueError(
                f"up_blocks needs down_blocks + 1 = {self.down_blocks + 1} entries, got {len(self.up_blocks)}"
            )
        if self.mid_channels <= 4:
            raise ValueError("mid_channels must exceed 4 (the warm-up HFAB uses mid - 4)")
        if self.scale < 1 or self.channels < 1 or self.expand_ratio < 1:
            raise ValueError("scale, channels and expand_ratio must be positive")

    @property
    def warmup_mid_channels(self) -> int:
        return self.mid_channels - 4

    @property
    def receptive_radius(self) -> int:
        """Low-resolution pixels an output pixel can see in each direction.

        Every 3×3 convolution on the longest path widens the view by one pixel; the 1×1
        convolutions, the sigmoid gate and PixelShuffle add nothing. Tiling uses this as the
        overlap, which is what makes tiled output identical to whole-image output.
        """
        head_and_warm = 2  # head, warmup.0
        warm_hfab = 2 + 2 * self.up_blocks[0]  # squeeze, excitate, two per ERB
        body = sum(2 + 2 + 2 * n for n in self.up_blocks[1:])  # ERB + HFAB per down block
        return head_and_warm + warm_hfab + body + 2  # lr_conv, tail

    def with_scale(self, scale: int) -> FMENConfig:
        return FMENConfig(
            channels=self.channels,
            mid_channels=self.mid_channels,
            down_blocks=self.down_blocks,
            up_blocks=self.up_blocks,
            scale=scale,
            expand_ratio=self.expand_ratio,
            in_channels=self.in_channels,
        )


@dataclass(frozen=True)
class Preset:
    key: str  # command-line name
    name: str  # display name
    config: FMENConfig = field(default_factory=FMENConfig)


PRESETS: dict[str, Preset] = {
    "fmen-s": Preset("fmen-s", "FMEN-S", FMENConfig(50, 16, 4, (2, 1, 1, 1, 1))),
    "fmen": Preset("fmen", "FMEN", FMENConfig(64, 16, 6, (2, 1, 1, 1, 1, 1, 1))),
}


def preset_config(key: str, scale: int) -> FMENConfig:
    return PRESETS[key].config.with_scale(scale)


_MKLDNN = torch.backends.mkldnn.is_available()
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # ln 2 split so that n * _LN2_HI is exact (Cody-Waite)
_LN2_LO = 1.42860682030941723212e-6
_EXP_TAYLOR = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040)


_POINTWISE = _MKLDNN and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
# oneDNN post-op names and arguments for the activations FMEN applies right after a convolution.
_POST_OPS: dict[str, tuple[str, list[float]]] = {
    "none": ("none", []),
    "leaky_relu": ("leaky_relu", [NEGATIVE_SLOPE]),
    "sigmoid": ("sigmoid", []),
}


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


class DeployConv2d(nn.Conv2d):
    """A 3×3 convolution that gives the same bits for a pixel whatever the image size.

    On the CPU PyTorch picks oneDNN or its own im2col path depending on the tensor size, and
    the two round differently; tiles and whole images would then disagree in the last bit.
    Calling oneDNN directly makes every size take the same kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        if _MKLDNN and x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16):
            return torch.ops.aten.mkldnn_convolution(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
            )
        return super().forward(x)

    _wino_cache: tuple | None = None  # (key, transformed weights, padded bias)

    def _winograd(self, x: Tensor, act: str, other: Tensor | None = None, other_op: int = 0) -> Tensor | None:
        """The layer by :mod:`fmen_gui.arch.winograd` where that kernel takes it, else None."""
        if not winograd.supports(self, x):
            return None
        if other is not None and (
            other.shape != (1, self.out_channels, *x.shape[2:]) or other.dtype != x.dtype
        ):
            return None
        key = (
            self.weight.data_ptr(),
            self.weight._version,
            self.bias.data_ptr() if self.bias is not None else 0,
            winograd.lanes(),
        )
        if self._wino_cache is None or self._wino_cache[0] != key:
            self._wino_cache = (key, winograd.pack(self.weight, self.bias, winograd.lanes()))
        return winograd.conv3x3(
            x, self._wino_cache[1], self.out_channels, act, NEGATIVE_SLOPE, other, other_op
        )

    def forward_act(self, x: Tensor, act: str) -> Tensor:
        """This convolution followed by ``act`` (``"leaky_relu"``, ``"sigmoid"`` or ``"none"``).

        On the CPU the activation is applied to the results before they are stored — by the
        Winograd kernel (wide layers, see :mod:`fmen_gui.arch.winograd`) or as a oneDNN post-op
        — which saves a full read and write of the feature map per layer; that memory traffic
        was a fifth of the run time. Both apply the same code to every vector lane whatever
        the image size, so the result of a pixel stays independent of the tile it is in.
        """
        if _fusable(x):
            y = self._winograd(x, act)
            if y is not None:
                return y
            attr, scalars = _POST_OPS[act]
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
                attr, scalars, None,
            )  # fmt: skip
        return _activate(self(x), act)

    def forward_add(self, x: Tensor, other: Tensor) -> Tensor:
        """``self(x) + other``; on the CPU the sum is added before the result is stored."""
        if _fusable(x) and other.dtype == x.dtype:
            y = self._winograd(x, "none", other, winograd.ADD)
            if y is not None:
                return y
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, other, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
                "add", None, None, [], None,
            )  # fmt: skip
        return self(x).add_(other)

    def forward_gate(self, x: Tensor, gated: Tensor) -> Tensor:
        """``sigmoid(self(x)) * gated``: FMEN's attention gate, in one pass where possible."""
        if _fusable(x):
            y = self._winograd(x, "sigmoid", gated, winograd.MUL)
            if y is not None:
                return y
        return self.forward_act(x, "sigmoid").mul_(gated)


_GATE_CHUNK = 1 << 18  # elements per slice: the temporaries stay in the L2 cache


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
    """``act`` applied in place to a fresh tensor (the separate-op path of ``forward_act``)."""
    if act == "leaky_relu":
        return F.leaky_relu(y, NEGATIVE_SLOPE, inplace=True)
    if act == "sigmoid":
        return gate_sigmoid_(y)
    return y


def _conv3(cin: int, cout: int, padding: int = 1, *, deploy: bool = True) -> nn.Conv2d:
    if deploy:
        return DeployConv2d(cin, cout, 3, padding=padding)
    return nn.Conv2d(cin, cout, 3, padding=padding)


def pad_with(x: Tensor, value: Tensor) -> Tensor:
    """Pad one pixel on each side, filling channel c with ``value[c]``.

    Padding with the bias of the preceding 1×1 convolution (or the effective bias of a
    BatchNorm) makes the padded border equal to that layer applied to a zero-padded input,
    so the train form folds exactly into a zero-padded 3×3 deploy convolution.
    """
    v = value.view(1, -1, 1, 1)
    return F.pad(x - v, (1, 1, 1, 1)) + v


def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The affine map an eval-mode BatchNorm applies: ``y = scale * x + shift``."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


class RRRB(nn.Module):
    """Re-parameterised residual-in-residual block: one 3×3 conv at inference."""

    def __init__(self, channels: int, expand_ratio: int = 2, *, deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        if deploy:
            self.rep_conv = _conv3(channels, channels, deploy=True)
        else:
            mid = channels * expand_ratio
            self.expand_conv = nn.Conv2d(channels, mid, 1)
            self.fea_conv = nn.Conv2d(mid, mid, 3, padding=0)
            self.reduce_conv = nn.Conv2d(mid, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            return self.rep_conv(x)
        out = self.expand_conv(x)
        identity = out
        out = self.fea_conv(pad_with(out, self.expand_conv.bias)) + identity
        return self.reduce_conv(out) + x

    def forward_act(self, x: Tensor, act: str) -> Tensor:
        """The block followed by ``act``, fused into the convolution in the deploy form."""
        if self.deploy and isinstance(self.rep_conv, DeployConv2d):
            return self.rep_conv.forward_act(x, act)
        return _activate(self(x), act)  # train form, or a plain_copy

    @torch.no_grad()
    def fused(self) -> tuple[Tensor, Tensor]:
        """Weight and bias of the single 3×3 conv equal to this train-form block."""
        we = self.expand_conv.weight[:, :, 0, 0]  # (m, c)
        be = self.expand_conv.bias
        wf, bf = self.fea_conv.weight, self.fea_conv.bias  # (m, m, 3, 3)
        wr = self.reduce_conv.weight[:, :, 0, 0]  # (c, m)
        br = self.reduce_conv.bias
        k1 = torch.einsum("pmhw,mi->pihw", wf, we)
        k1[:, :, 1, 1] += we
        b1 = bf + torch.einsum("pmhw,m->p", wf, be) + be
        k2 = torch.einsum("op,pihw->oihw", wr, k1)
        b2 = wr @ b1 + br
        c = k2.shape[0]
        k2[torch.arange(c), torch.arange(c), 1, 1] += 1.0
        return k2, b2


class ERB(nn.Module):
    """Enhanced residual block: RRRB, LeakyReLU, RRRB."""

    def __init__(self, channels: int, expand_ratio: int = 2, *, deploy: bool = False) -> None:
        super().__init__()
        self.conv1 = RRRB(channels, expand_ratio, deploy=deploy)
        self.conv2 = RRRB(channels, expand_ratio, deploy=deploy)

    def forward(self, x: Tensor, act: str = "none") -> Tensor:
        """``act`` is applied to the block's output (the HFAB's LeakyReLU after its last ERB)."""
        return self.conv2.forward_act(self.conv1.forward_act(x, "leaky_relu"), act)


class HFAB(nn.Module):
    """High-frequency attention block: a cheap branch that gates the features.

    The squeeze/excitate convolutions run on ``mid`` channels only, which is where FMEN
    saves memory traffic compared with full-width attention.
    """

    plain = False  # True in :func:`plain_copy`: stock ops, as a benchmark reference

    def __init__(
        self, channels: int, n_blocks: int, mid: int, expand_ratio: int = 2, *, deploy: bool = False
    ) -> None:
        super().__init__()
        self.deploy = deploy
        pad = 1 if deploy else 0
        if not deploy:
            self.bn1 = nn.BatchNorm2d(channels)
            self.bn2 = nn.BatchNorm2d(mid)
            self.bn3 = nn.BatchNorm2d(channels)
        self.squeeze = _conv3(channels, mid, padding=pad, deploy=deploy)
        self.convs = nn.Sequential(*[ERB(mid, expand_ratio, deploy=deploy) for _ in range(n_blocks)])
        self.excitate = _conv3(mid, channels, padding=pad, deploy=deploy)

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy and self.plain:
            out = F.leaky_relu(self.squeeze(x), NEGATIVE_SLOPE)
            out = F.leaky_relu(self.convs(out), NEGATIVE_SLOPE)
            return torch.sigmoid(self.excitate(out)) * x
        if self.deploy:
            # Activations fused into the convolutions, the gate applied in place: one buffer
            # per layer, written once (inference memory and traffic are what FMEN is about).
            assert isinstance(self.squeeze, DeployConv2d) and isinstance(self.excitate, DeployConv2d)
            out = self.squeeze.forward_act(x, "leaky_relu")
            last = len(self.convs) - 1
            for i, erb in enumerate(self.convs):
                out = erb(out, "leaky_relu" if i == last else "none")
            if last < 0:  # no ERBs: the second LeakyReLU follows the first
                out = F.leaky_relu(out, NEGATIVE_SLOPE, inplace=True)
            return self.excitate.forward_gate(out, x)
        out = self.bn1(x)
        out = self.squeeze(pad_with(out, bn_scale_shift(self.bn1)[1]))
        out = F.leaky_relu(out, NEGATIVE_SLOPE)
        out = F.leaky_relu(self.convs(out), NEGATIVE_SLOPE)
        out = self.bn2(out)
        out = self.excitate(pad_with(out, bn_scale_shift(self.bn2)[1]))
        return torch.sigmoid(self.bn3(out)) * x

    @torch.no_grad()
    def fused(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Deploy weights of ``squeeze`` and ``excitate`` with the three BatchNorms folded in."""
        s1, t1 = bn_scale_shift(self.bn1)
        ws, bs = self.squeeze.weight, self.squeeze.bias
        sq_w = ws * s1.view(1, -1, 1, 1)
        sq_b = bs + torch.einsum("oihw,i->o", ws, t1)
        s2, t2 = bn_scale_shift(self.bn2)
        s3, t3 = bn_scale_shift(self.bn3)
        we, be = self.excitate.weight, self.excitate.bias
        ex_w = we * s2.view(1, -1, 1, 1)
        ex_b = be + torch.einsum("oihw,i->o", we, t2)
        ex_w = ex_w * s3.view(-1, 1, 1, 1)
        ex_b = ex_b * s3 + t3
        return {"squeeze": (sq_w, sq_b), "excitate": (ex_w, ex_b)}


class FMEN(nn.Module):
    """The whole network; ``deploy`` picks the form of every block."""

    def __init__(self, config: FMENConfig, *, deploy: bool = True) -> None:
        super().__init__()
        self.config = config
        self.deploy = deploy
        c, r = config.channels, config.expand_ratio
        self.head = _conv3(config.in_channels, c, deploy=deploy)
        self.warmup = nn.Sequential(
            _conv3(c, c, deploy=deploy),
            HFAB(c, config.up_blocks[0], config.warmup_mid_channels, r, deploy=deploy),
        )
        self.ERBs = nn.ModuleList([ERB(c, r, deploy=deploy) for _ in range(config.down_blocks)])
        self.HFABs = nn.ModuleList(
            [
                HFAB(c, config.up_blocks[i + 1], config.mid_channels, r, deploy=deploy)
                for i in range(config.down_blocks)
            ]
        )
        self.lr_conv = _conv3(c, c, deploy=deploy)
        self.tail = nn.Sequential(
            _conv3(c, config.in_channels * config.scale**2, deploy=deploy), nn.PixelShuffle(config.scale)
        )
        self._stem_cache: tuple | None = None  # (key, weight, bias) of the fused head + warmup[0]

    def forward_features(self, x: Tensor) -> Tensor:
        """Everything but the final PixelShuffle: ``3·s²`` channels at low resolution.

        The engine rearranges these straight into its 8-bit output array, which saves a
        full-size float copy of the result.
        """
        if self.deploy and _fusable(x) and isinstance(self.head, DeployConv2d):
            return self._forward_fused(x)
        x = self.head(x)
        if self.deploy and not torch.is_grad_enabled():
            h = self._lean_body(self.warmup(x))  # GPU inference: memory is what FMEN is about
        else:
            h = self.warmup(x)
            for erb, hfab in zip(self.ERBs, self.HFABs, strict=True):
                h = hfab(erb(h))
        h = self.lr_conv(h)
        h = h.add_(x) if not h.requires_grad else h + x
        del x
        return self.tail[0](h)

    def _forward_fused(self, inp: Tensor) -> Tensor:
        """The CPU inference pass: activations fused into the convolutions, buffers freed early.

        The head's output (the global residual) is recomputed at the end instead of being kept
        through the whole network, so at most three full-width feature maps are alive at once.
        """
        h = self._lean_body(self.warmup[1](self._stem(inp)))
        assert isinstance(self.lr_conv, DeployConv2d)
        h = self.lr_conv.forward_add(h, self.head(inp))
        tail = self.tail[0]
        assert isinstance(tail, DeployConv2d)
        return tail.forward_act(h, "none")

    def _lean_body(self, h: Tensor) -> Tensor:
        """The ERB + HFAB blocks, each block's input dropped as soon as its first conv has read it.

        The caller must hand over its only reference to ``h``.
        """
        for erb, hfab in zip(self.ERBs, self.HFABs, strict=True):
            assert isinstance(erb, ERB)
            a = erb.conv1.forward_act(h, "leaky_relu")
            del h
            h = erb.conv2.forward_act(a, "none")
            del a
            h = hfab(h)
        return h

    def _stem(self, inp: Tensor) -> Tensor:
        """``warmup[0](head(inp))`` as one 5×5 convolution of the 3-channel input.

        Two 3×3 layers with nothing between them are one 5×5 layer; reading 3 channels
        instead of 50 makes it about five times cheaper than ``warmup[0]`` alone. The two
        differ only where ``warmup[0]`` sees its zero padding — the outermost ring of pixels
        — and that ring is recomputed the two-layer way from thin strips of the input.
        """
        head, warm = self.head, self.warmup[0]
        assert isinstance(warm, DeployConv2d)
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
        out[:, :, :1] = warm(head(inp[:, :, :3]))[:, :, :1]
        out[:, :, -1:] = warm(head(inp[:, :, -3:]))[:, :, -1:]
        out[:, :, :, :1] = warm(head(inp[:, :, :, :3]))[:, :, :, :1]
        out[:, :, :, -1:] = warm(head(inp[:, :, :, -3:]))[:, :, :, -1:]
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.tail[1](self.forward_features(x))


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


def plain_copy(model: FMEN) -> FMEN:
    """A copy that runs stock PyTorch layers (``nn.Conv2d``, ``torch.sigmoid``, out of place).

    The benchmarks time the engine against this: the same network as anyone would write it.
    """
    ref = copy.deepcopy(model)
    for m in ref.modules():
        if isinstance(m, DeployConv2d):
            m.__class__ = nn.Conv2d
        if isinstance(m, HFAB):
            m.plain = True
    return ref


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def multiply_adds_per_pixel(config: FMENConfig) -> int:
    """Deploy-form multiply-adds per low-resolution pixel (for GFLOP/s figures)."""
    c, m, w = config.channels, config.mid_channels, config.warmup_mid_channels
    k = 9
    total = config.in_channels * c * k + c * c * k  # head, warmup.0
    total += c * w * k + 2 * config.up_blocks[0] * w * w * k + w * c * k
    for n in config.up_blocks[1:]:
        total += 2 * c * c * k + c * m * k + 2 * n * m * m * k + m * c * k
    total += c * c * k + c * config.in_channels * config.scale**2 * k
    return total


def scale_from_tail_channels(out_channels: int, in_channels: int) -> int:
    scale = math.isqrt(out_channels // max(in_channels, 1))
    if scale < 1 or scale * scale * in_channels != out_channels:
        raise ValueError(f"tail has {out_channels} channels, not {in_channels}·s² for any scale s")
    return scale
