"""Small random-weight models of other architectures, built with spandrel's own classes.

Tests of "Import model…", ``--weights`` and the engine's blended tiles use these instead of
downloads: each builder returns a module whose state dict spandrel detects as the named
architecture. Sizes are tiny (a few thousand to a few hundred thousand parameters) so that
saving, loading and running them takes milliseconds. Weights are seeded, so files are stable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from fmen_gui.weights.models import import_spandrel

import_spandrel()  # spandrel's architectures import only after the torchvision stand-in

from spandrel.architectures.Compact.__arch.SRVGG import SRVGGNetCompact  # noqa: E402
from spandrel.architectures.DnCNN.__arch.network_dncnn import DnCNN  # noqa: E402
from spandrel.architectures.ESRGAN.__arch.RRDB import RRDBNet  # noqa: E402
from spandrel.architectures.OmniSR.__arch.OmniSR import OmniSR  # noqa: E402
from spandrel.architectures.SAFMN.__arch.safmn import SAFMN  # noqa: E402
from spandrel.architectures.SPAN.__arch.span import SPAN  # noqa: E402
from spandrel.architectures.SwinIR.__arch.SwinIR import SwinIR  # noqa: E402


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build().eval()


# name -> (builder, architecture spandrel reports, scale)
BUILDERS: dict[str, tuple[Callable[[], nn.Module], str, int]] = {
    "span_x4": (lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=4), "SPAN", 4),
    "esrgan_x4": (lambda: RRDBNet(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=4), "ESRGAN", 4),
    "compact_x2": (
        lambda: SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2),
        "RealESRGAN Compact",
        2,
    ),
    "safmn_x2": (lambda: SAFMN(dim=16, n_blocks=2, upscaling_factor=2), "SAFMN", 2),
    "omnisr_x3": (
        lambda: OmniSR(num_in_ch=3, num_out_ch=3, num_feat=16, window_size=8, res_num=1, up_scale=3),
        "OmniSR",
        3,
    ),
    "swinir_x2": (
        lambda: SwinIR(
            img_size=16,
            embed_dim=12,
            depths=[1],
            num_heads=[2],
            window_size=4,
            mlp_ratio=1.0,
            upscale=2,
            upsampler="pixelshuffledirect",
        ),
        "SwinIR",
        2,
    ),
    # A one-channel 1× restoration model (denoiser): run per colour plane or refused clearly.
    "dncnn_gray_x1": (lambda: DnCNN(in_nc=1, out_nc=1, nc=8, nb=8, act_mode="R"), "DnCNN", 1),
}


def build(name: str, seed: int = 0, gain: float = 1.0) -> nn.Module:
    """The named model with seeded random weights, all multiplied by ``gain``.

    A ``gain`` under 1 calms the network the way training does (default initialisations make
    deep random networks amplify every input difference to saturation); the engine's
    tiled-vs-untiled tests use 0.7, as the FMEN ones do.
    """
    builder, _arch, _scale = BUILDERS[name]
    model = _seeded(builder, seed)
    if gain != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(gain)
    return model


def save(name: str, folder: Path, suffix: str = ".safetensors", seed: int = 0, gain: float = 1.0) -> Path:
    """Write the named model as ``folder/<name><suffix>`` (``.safetensors`` or ``.pth``)."""
    import safetensors.torch

    state = {k: v.contiguous().clone() for k, v in build(name, seed, gain).state_dict().items()}
    path = Path(folder) / f"{name}{suffix}"
    if suffix == ".safetensors":
        safetensors.torch.save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
