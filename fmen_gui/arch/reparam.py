"""Collapse a train-form FMEN into its deploy form (structural re-parameterisation)."""

from __future__ import annotations

import torch

from fmen_gui.arch.fmen import ERB, FMEN, HFAB, RRRB


def _copy(conv: torch.nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> None:
    conv.weight.copy_(weight)
    assert conv.bias is not None
    conv.bias.copy_(bias)


def _copy_plain(src: FMEN, dst: FMEN) -> None:
    """The convolutions that are the same in both forms: head, warm-up conv, lr_conv, tail."""
    for a, b in ((src.head, dst.head), (src.warmup[0], dst.warmup[0]), (src.lr_conv, dst.lr_conv)):
        _copy(b, a.weight, a.bias)
    _copy(dst.tail[0], src.tail[0].weight, src.tail[0].bias)


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
    _copy_plain(src, dst)
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


def _lift_rrrb(src: RRRB, dst: RRRB, gen: torch.Generator) -> None:
    """Train-form weights whose :meth:`RRRB.fused` is ``src.rep_conv``, with every channel live.

    With ``Q`` a random ``m×c`` matrix of orthonormal columns: expand = ``Q``, reduce = ``Qᵀ``,
    3×3 = ``Q (K − 2·I_centre) Qᵀ``. Then reduce∘(3×3 + 1)∘expand + 1 = ``K`` exactly, and
    unlike zero-filled extra channels (whose gradients would stay zero for good) every
    expanded channel carries the signal from the first step.
    """
    k, b = src.rep_conv.weight, src.rep_conv.bias
    assert b is not None
    c, m = k.shape[0], dst.fea_conv.weight.shape[0]
    q, _ = torch.linalg.qr(torch.randn(m, c, generator=gen, dtype=torch.float64))
    inner = k.double().clone()
    inner[torch.arange(c), torch.arange(c), 1, 1] -= 2.0
    _copy(dst.expand_conv, q[:, :, None, None], torch.zeros(m, dtype=torch.float64))
    _copy(dst.fea_conv, torch.einsum("po,oihw,qi->pqhw", q, inner, q), torch.zeros(m, dtype=torch.float64))
    _copy(dst.reduce_conv, q.t()[:, :, None, None], b)


def _identity_bn(bn: torch.nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor) -> None:
    """Running statistics of the data it will see, and the affine map that undoes them.

    In eval mode the layer is then exactly the identity (scale 1, shift 0, so the padding of
    :func:`~fmen_gui.arch.fmen.pad_with` is zero as in the deploy form); in train mode, where
    it normalises by the batch's own statistics, it stays close to the identity for batches
    like the calibration one.
    """
    bn.running_mean.copy_(mean)  # type: ignore[union-attr]
    bn.running_var.copy_(var)  # type: ignore[union-attr]
    bn.weight.copy_(torch.sqrt(var + bn.eps))
    bn.bias.copy_(mean)


def _lift_hfab(
    src: HFAB, dst: HFAB, stats: dict[str, tuple[torch.Tensor, torch.Tensor]], gen: torch.Generator
) -> None:
    _copy(dst.squeeze, src.squeeze.weight, src.squeeze.bias)
    _copy(dst.excitate, src.excitate.weight, src.excitate.bias)
    for bn in ("bn1", "bn2", "bn3"):
        _identity_bn(getattr(dst, bn), *stats[bn])
    for a, b in zip(src.convs, dst.convs, strict=True):
        assert isinstance(a, ERB) and isinstance(b, ERB)
        _lift_erb(a, b, gen)


def _lift_erb(src: ERB, dst: ERB, gen: torch.Generator) -> None:
    for a, b in ((src.conv1, dst.conv1), (src.conv2, dst.conv2)):
        assert isinstance(a, RRRB) and isinstance(b, RRRB)
        _lift_rrrb(a, b, gen)


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)


def _hfab_statistics(
    model: FMEN, batch: torch.Tensor | None
) -> list[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Per HFAB (warm-up first): mean and variance of what each train-form BatchNorm will see.

    bn1 sees the block's input, bn2 the input of ``excitate``, bn3 its output. Without a
    calibration batch: zero mean, unit variance (still exact in eval mode).
    """
    hfabs = [model.warmup[1], *model.HFABs]
    if batch is None:

        def unit(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)

        return [
            {
                "bn1": unit(h.squeeze.in_channels),
                "bn2": unit(h.excitate.in_channels),
                "bn3": unit(h.squeeze.in_channels),
            }
            for h in hfabs
        ]
    seen: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = [{} for _ in hfabs]
    hooks = []
    for i, h in enumerate(hfabs):
        hooks.append(
            h.register_forward_pre_hook(lambda _m, a, i=i: seen[i].__setitem__("bn1", _moments(a[0])))
        )
        hooks.append(
            h.excitate.register_forward_pre_hook(
                lambda _m, a, i=i: seen[i].__setitem__("bn2", _moments(a[0]))
            )
        )
        hooks.append(
            h.excitate.register_forward_hook(lambda _m, _a, y, i=i: seen[i].__setitem__("bn3", _moments(y)))
        )
    try:
        model(batch.to(torch.float64))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@torch.no_grad()
def lift(deploy_model: FMEN, calibration: torch.Tensor | None = None, seed: int = 0) -> FMEN:
    """A train-form FMEN that computes, in eval mode, what ``deploy_model`` computes.

    The inverse of :func:`reparameterize` (``reparameterize(lift(m)) == m`` to float32
    rounding), so that shipped or deploy-trained weights can go on training in the form the
    paper trains: the RRRBs' expanded convolutions and identities and the HFABs'
    BatchNorms, which fit the training images better than the plain deploy convolutions
    do. There is no library for this (it is this architecture's own algebra).

    ``calibration``: a batch of LR inputs (N, 3, H, W, 0–255) whose statistics the
    BatchNorms start from, so that in train mode (batch statistics) the network starts
    close to the deploy one too. ``seed`` draws the orthonormal expansions.
    """
    if not deploy_model.deploy:
        raise ValueError("the model is already in train form")
    src = FMEN(deploy_model.config, deploy=True)
    src.load_state_dict(deploy_model.state_dict())
    src = src.double().eval()
    dst = FMEN(deploy_model.config, deploy=False).double()
    gen = torch.Generator().manual_seed(seed)
    _copy_plain(src, dst)
    stats = _hfab_statistics(src, calibration)
    _lift_hfab(src.warmup[1], dst.warmup[1], stats[0], gen)
    for a, b in zip(src.ERBs, dst.ERBs, strict=True):
        _lift_erb(a, b, gen)
    for a, b, s in zip(src.HFABs, dst.HFABs, stats[1:], strict=True):
        _lift_hfab(a, b, s, gen)
    return dst.float().eval()
