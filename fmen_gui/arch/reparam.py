"""Collapse a train-form FMEN into its deploy form (structural re-parameterisation)."""

from __future__ import annotations

import torch

from fmen_gui.arch.fmen import ERB, FMEN, HFAB, RRRB


def _copy(conv: torch.nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> None:
    conv.weight.copy_(weight)
    assert conv.bias is not None
    conv.bias.copy_(bias)


def _fuse_erb(src: ERB, dst: ERB) -> None:
    for a, b in ((src.conv1, dst.conv1), (src.conv2, dst.conv2)):
        assert isinstance(a, RRRB) and isinstance(b, RRRB)
        _copy(b.rep_conv, *a.fused())


def _fuse_hfab(src: HFAB, dst: HFAB) -> None:
    fused = src.fused()
    _copy(dst.squeeze, *fused["squeeze"])
    _copy(dst.excitate, *fused["excitate"])
    for a, b in zip(src.convs, dst.convs, strict=True):
        assert isinstance(a, ERB) and isinstance(b, ERB)
        _fuse_erb(a, b)


@torch.no_grad()
def reparameterize(train_model: FMEN) -> FMEN:
    """Return a new deploy-form FMEN computing the same function as ``train_model`` in eval mode.

    The arithmetic runs in float64 so the folded weights lose nothing beyond the final
    rounding to float32; BatchNorm uses its running statistics, as at inference.
    """
    if train_model.deploy:
        raise ValueError("the model is already in deploy form")
    src = _as_double_copy(train_model)
    dst = FMEN(train_model.config, deploy=True).double()
    for name in ("head", "lr_conv"):
        a, b = getattr(src, name), getattr(dst, name)
        _copy(b, a.weight, a.bias)
    _copy(dst.warmup[0], src.warmup[0].weight, src.warmup[0].bias)
    _copy(dst.tail[0], src.tail[0].weight, src.tail[0].bias)
    _fuse_hfab(src.warmup[1], dst.warmup[1])
    for a, b in zip(src.ERBs, dst.ERBs, strict=True):
        _fuse_erb(a, b)
    for a, b in zip(src.HFABs, dst.HFABs, strict=True):
        _fuse_hfab(a, b)
    return dst.float().eval()


def _as_double_copy(model: FMEN) -> FMEN:
    copy = FMEN(model.config, deploy=False)
    copy.load_state_dict(model.state_dict())
    return copy.double().eval()
