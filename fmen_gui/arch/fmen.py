"""The FMEN / FMEN-S network (Du et al., CVPR Workshops 2022), in train and deploy forms.

Written from the paper's description. FMEN is a residual network built from two blocks:

- the **ERB** (enhanced residual block) carries the features: two re-parameterisable
  convolutions (**RRRB**) with a LeakyReLU between them;
- the **HFAB** (high-frequency attention block) follows each ERB and decides where those
  features matter: a cheap branch on few channels ends in a sigmoid that gates the block's
  input, which is how the network spends its capacity on edges and texture.

The *train form* carries the over-parameterised parts that make optimisation easier (the
RRRB's 1×1 expand / 3×3 / 1×1 reduce with two identities, BatchNorm in the HFABs); the
*deploy form* is what ships: every block collapses into plain 3×3 convolutions
(:mod:`fmen_gui.arch.reparam`), which is why FMEN is fast and light at inference. Both forms
share the module names of the authors' release so state dicts load without renaming.

Both forms here are stock PyTorch layers that autograd can train. How the deploy form runs
fast (fused kernels on the CPU, in-place passes on GPUs) is the engine's business
(:mod:`fmen_gui.engine.backends`), over these same modules and weights.

Pixels travel in the 0–255 range with no mean shift, as in the released weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NEGATIVE_SLOPE = 0.1  # of every LeakyReLU in the network


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


def _conv3(cin: int, cout: int, padding: int = 1) -> nn.Conv2d:
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
    """Re-parameterisable residual-in-residual block: a wide 3×3 conv to train, one 3×3 to run.

    Training sees ``reduce(fea(expand(x)) + expand(x)) + x``: the 1×1 expand gives the 3×3
    convolution ``expand_ratio`` times more channels to learn with, and the two identities
    keep gradients flowing. All of it is linear, so it folds into a single 3×3 convolution
    (:meth:`fused`), the deploy form's ``rep_conv``.
    """

    def __init__(self, channels: int, expand_ratio: int = 2, *, deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        if deploy:
            self.rep_conv = _conv3(channels, channels)
        else:
            mid = channels * expand_ratio
            self.expand_conv = nn.Conv2d(channels, mid, 1)
            self.fea_conv = nn.Conv2d(mid, mid, 3, padding=0)
            self.reduce_conv = nn.Conv2d(mid, channels, 1)
        self.merged = False  # the train form run as one convolution (see :func:`merge_for_training`)

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            return self.rep_conv(x)
        if self.merged:
            # The kernel in fp32 even under autocast (its products are weight-sized, and a
            # bf16 kernel would round the learned part against the folded identities); the
            # outer identity stays outside the convolution for the same reason.
            with torch.autocast(x.device.type, enabled=False):
                weight, bias = self.kernel(outer_identity=False)
            return F.conv2d(x, weight, bias, padding=1) + x
        out = self.expand_conv(x)
        identity = out
        out = self.fea_conv(pad_with(out, self.expand_conv.bias)) + identity
        return self.reduce_conv(out) + x

    @torch.no_grad()
    def fused(self) -> tuple[Tensor, Tensor]:
        """Weight and bias of the single 3×3 conv equal to this train-form block."""
        return self.kernel()

    def kernel(self, *, outer_identity: bool = True) -> tuple[Tensor, Tensor]:
        """Weight and bias of the 3×3 conv equal to this block, differentiable in its weights
        (without the outer ``+ x`` where ``outer_identity`` is false)."""
        we = self.expand_conv.weight[:, :, 0, 0]  # (m, c)
        be = self.expand_conv.bias
        wf, bf = self.fea_conv.weight, self.fea_conv.bias  # (m, m, 3, 3)
        wr = self.reduce_conv.weight[:, :, 0, 0]  # (c, m)
        br = self.reduce_conv.bias
        k1 = torch.einsum("pmhw,mi->pihw", wf, we) + _centre_tap(we)  # + the inner identity
        b1 = bf + torch.einsum("pmhw,m->p", wf, be) + be
        k2 = torch.einsum("op,pihw->oihw", wr, k1)
        b2 = wr @ b1 + br
        if outer_identity:
            k2 = k2 + _centre_tap(torch.eye(k2.shape[0], dtype=k2.dtype, device=k2.device))
        return k2, b2


def _centre_tap(matrix: Tensor) -> Tensor:
    """A ``(out, in)`` matrix as the 3×3 kernel that applies it at the centre tap only: how a
    1×1 path (an identity, an expand) joins a 3×3 convolution's kernel."""
    return F.pad(matrix[:, :, None, None], (1, 1, 1, 1))


def merge_for_training(model: nn.Module, merged: bool = True) -> None:
    """Run every train-form RRRB of ``model`` as one 3×3 convolution whose kernel is computed,
    at each forward, from the block's expand, 3×3 and reduce weights (online
    re-parameterisation, Hu et al., "Online Convolutional Re-parameterization", CVPR 2022).

    Why: the block is linear in its input, so the merged convolution computes the same
    function of the same parameters, and autograd gives the same gradients (the chain rule
    runs through the kernel's few weight-sized products instead of through full-resolution
    activations). Training is then the train form's, at about the deploy form's cost: its
    ``2c → 2c`` 3×3 convolution on every pixel was four times the work of the ``c → c`` one.
    The parameters and the state dict are unchanged; only rounding differs.
    """
    for module in model.modules():
        if isinstance(module, RRRB) and not module.deploy:
            module.merged = merged


class ERB(nn.Module):
    """Enhanced residual block: RRRB → LeakyReLU → RRRB, the network's feature extractor.

    The residual connections live inside the RRRBs, so at inference the block is two plain
    3×3 convolutions with nothing to keep alongside them.
    """

    def __init__(self, channels: int, expand_ratio: int = 2, *, deploy: bool = False) -> None:
        super().__init__()
        self.conv1 = RRRB(channels, expand_ratio, deploy=deploy)
        self.conv2 = RRRB(channels, expand_ratio, deploy=deploy)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.leaky_relu(self.conv1(x), NEGATIVE_SLOPE))


class HFAB(nn.Module):
    """High-frequency attention block: a cheap branch that gates the features.

    3×3 squeeze to ``mid`` channels → LeakyReLU → ERBs → LeakyReLU → 3×3 excitate back to
    full width → sigmoid, multiplied into the block's input. The branch runs on ``mid``
    channels only, which is where FMEN saves memory traffic compared with full-width
    attention. The train form adds a BatchNorm before each convolution and after the
    excitation; its convolutions pad with the BatchNorm's shift (see :func:`pad_with`), so
    the BatchNorms fold into the deploy form's zero-padded convolutions (:meth:`fused`).
    """

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
        self.squeeze = _conv3(channels, mid, padding=pad)
        self.convs = nn.Sequential(*[ERB(mid, expand_ratio, deploy=deploy) for _ in range(n_blocks)])
        self.excitate = _conv3(mid, channels, padding=pad)

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            out = F.leaky_relu(self.squeeze(x), NEGATIVE_SLOPE)
            out = F.leaky_relu(self.convs(out), NEGATIVE_SLOPE)
            return torch.sigmoid(self.excitate(out)) * x
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
    """The whole network; ``deploy`` picks the form of every block.

    ``head`` (3×3 into feature space) → ``warmup`` (a 3×3 and an HFAB) → ``down_blocks``
    pairs of ERB and HFAB → ``lr_conv`` (3×3), plus the head's output (the global residual)
    → ``tail`` (3×3 to ``3·s²`` channels and PixelShuffle to the ``s``-times larger image).
    """

    def __init__(self, config: FMENConfig, *, deploy: bool = True) -> None:
        super().__init__()
        self.config = config
        self.deploy = deploy
        c, r = config.channels, config.expand_ratio
        self.head = _conv3(config.in_channels, c)
        self.warmup = nn.Sequential(
            _conv3(c, c),
            HFAB(c, config.up_blocks[0], config.warmup_mid_channels, r, deploy=deploy),
        )
        self.ERBs = nn.ModuleList([ERB(c, r, deploy=deploy) for _ in range(config.down_blocks)])
        self.HFABs = nn.ModuleList(
            [
                HFAB(c, config.up_blocks[i + 1], config.mid_channels, r, deploy=deploy)
                for i in range(config.down_blocks)
            ]
        )
        self.lr_conv = _conv3(c, c)
        self.tail = nn.Sequential(
            _conv3(c, config.in_channels * config.scale**2), nn.PixelShuffle(config.scale)
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """Everything but the final PixelShuffle: ``3·s²`` channels at low resolution.

        The engine rearranges these straight into its 8-bit output array, which saves a
        full-size float copy of the result.
        """
        x = self.head(x)
        h = self.warmup(x)
        for erb, hfab in zip(self.ERBs, self.HFABs, strict=True):
            h = hfab(erb(h))
        return self.tail[0](self.lr_conv(h) + x)

    def forward(self, x: Tensor) -> Tensor:
        return self.tail[1](self.forward_features(x))


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
