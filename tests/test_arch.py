"""The network: presets, re-parameterisation and configuration detection."""

from __future__ import annotations

import pytest
import torch

from fmen_gui.arch.detect import canonicalize_keys, detect_config, load_model
from fmen_gui.arch.fmen import (
    FMEN,
    PRESETS,
    FMENConfig,
    count_parameters,
    merge_for_training,
    multiply_adds_per_pixel,
    preset_config,
)
from fmen_gui.arch.reparam import lift, reparameterize
from fmen_gui.engine.backends.cpu_fused import gate_sigmoid
from fmen_gui.errors import WeightsError

# (channels, mid, down_blocks, up_blocks): both presets plus small, odd and degenerate members.
CONFIGS = [
    (50, 16, 4, (2, 1, 1, 1, 1)),
    (64, 16, 6, (2, 1, 1, 1, 1, 1, 1)),
    (8, 6, 1, (1, 1)),
    (12, 8, 2, (0, 2, 1)),
    (16, 10, 3, (1, 0, 2, 1)),
    (10, 5, 0, (2,)),
    (24, 12, 2, (3, 1, 1)),
]
SCALES = (2, 3, 4)


def _randomise(model: FMEN, seed: int) -> FMEN:
    """Random weights and, crucially, random BatchNorm statistics: folding must use them all."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if name.endswith("bias") else 0.3 / max(1, p[0].numel()) ** 0.5
            p.copy_(torch.randn(p.shape, generator=g) * scale)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.3)
    return model.eval()


def _config(spec: tuple[int, int, int, tuple[int, ...]], scale: int) -> FMENConfig:
    c, mid, down, up = spec
    return FMENConfig(c, mid, down, up, scale)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("spec", CONFIGS, ids=lambda s: f"C{s[0]}-m{s[1]}-d{s[2]}")
def test_reparameterize_is_exact(spec: tuple[int, int, int, tuple[int, ...]], scale: int) -> None:
    config = _config(spec, scale)
    train = _randomise(FMEN(config, deploy=False), seed=hash((spec, scale)) % 2**31)
    deploy = reparameterize(train)
    x = torch.rand(1, 3, 19, 23, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        a, b = train(x), deploy(x)
    assert a.shape == (1, 3, 19 * scale, 23 * scale)
    assert a.abs().max() > 1.0, "the check would be vacuous on an all-zero output"
    assert (a - b).abs().max().item() <= 1e-3
    assert set(deploy.state_dict()) == set(FMEN(config, deploy=True).state_dict())


@pytest.mark.parametrize("spec", CONFIGS[:4], ids=lambda s: f"C{s[0]}-m{s[1]}-d{s[2]}")
def test_merged_training_is_the_train_form_in_value_and_gradient(
    spec: tuple[int, int, int, tuple[int, ...]],
) -> None:
    """The merged RRRBs (one convolution, kernel computed from the block's weights) train the
    same function: the same outputs and, through autograd, the same gradients for every
    parameter, with BatchNorm in training mode as in a training step. In float64, so that
    what is compared is the mathematics, not the rounding."""
    config = _config(spec, 3)
    plain = _randomise(FMEN(config, deploy=False), seed=7).double().train()
    merged = _randomise(FMEN(config, deploy=False), seed=7).double().train()
    merge_for_training(merged)
    assert set(plain.state_dict()) == set(merged.state_dict())
    x = torch.rand(2, 3, 17, 21, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 255
    a, b = plain(x), merged(x)
    assert a.abs().max() > 1.0, "the check would be vacuous on an all-zero output"
    assert (a - b).abs().max().item() <= 1e-9
    a.square().mean().backward()
    b.square().mean().backward()
    grads = [(p.grad, q.grad) for p, q in zip(plain.parameters(), merged.parameters(), strict=True)]
    largest = max(g.abs().max().item() for g, _ in grads)
    assert largest > 0.0
    for (name, _), (g, h) in zip(plain.named_parameters(), grads, strict=True):
        assert (g - h).abs().max().item() <= 1e-9 * largest, name
    merge_for_training(merged, merged=False)  # and back: the plain train form again
    plain.eval(), merged.eval()  # (in training mode each forward moves the BatchNorm statistics)
    with torch.no_grad():
        assert (merged(x) - plain(x)).abs().max().item() <= 1e-9


def test_merged_training_under_bf16_autocast_keeps_its_kernel_in_fp32() -> None:
    """Under autocast the convolution runs in bf16, but the kernel is computed in fp32 and the
    outer identity is added outside it: the merged block then stays as close to fp32 as the
    plain train form's bf16 convolutions are."""
    config = _config(CONFIGS[2], 2)
    model = _randomise(FMEN(config, deploy=False), seed=3)  # eval: the BatchNorms hold still
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 255
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain = model(x).float()
            merge_for_training(model)
            merged = model(x).float()
    err_plain = (plain - reference).abs().mean().item()
    err_merged = (merged - reference).abs().mean().item()
    assert err_merged <= 1.5 * err_plain + 1e-3


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("spec", CONFIGS, ids=lambda s: f"C{s[0]}-m{s[1]}-d{s[2]}")
def test_lift_is_the_inverse_of_reparameterize(
    spec: tuple[int, int, int, tuple[int, ...]], scale: int
) -> None:
    config = _config(spec, scale)
    deploy = reparameterize(_randomise(FMEN(config, deploy=False), seed=hash((spec, scale, 1)) % 2**31))
    x = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(2)) * 255
    train = lift(deploy, calibration=x)
    assert not train.deploy and not train.training
    with torch.no_grad():
        a, b = deploy(x), train(x)
        assert a.abs().max() > 1.0, "the check would be vacuous on an all-zero output"
        assert (a - b).abs().max().item() <= 1e-3
        for name, w in reparameterize(train).state_dict().items():
            assert torch.allclose(w, deploy.state_dict()[name], atol=1e-4), name
        # Every expanded channel is live (zero-filled ones would never get a gradient).
        for m in train.modules():
            if hasattr(m, "expand_conv"):
                assert m.expand_conv.weight.abs().sum(dim=(1, 2, 3)).min() > 0
        # In train mode the BatchNorms use the batch's statistics; on the calibration batch
        # those are the ones the lift undid, so the network is still the deploy one.
        train.train()
        for bn in (m for m in train.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.momentum = 0.0
        assert (deploy(x) - train(x)).abs().max().item() <= 1e-2


def test_lift_refuses_a_train_form_model() -> None:
    with pytest.raises(ValueError, match="already in train form"):
        lift(FMEN(_config(CONFIGS[2], 2), deploy=False))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("spec", CONFIGS, ids=lambda s: f"C{s[0]}-m{s[1]}-d{s[2]}")
def test_config_detected_from_state_dict(spec: tuple[int, int, int, tuple[int, ...]], scale: int) -> None:
    config = _config(spec, scale)
    for deploy in (True, False):
        state = FMEN(config, deploy=deploy).state_dict()
        found, is_train = detect_config(state)
        assert found == config
        assert is_train is not deploy


def test_train_form_checkpoint_loads_as_deploy() -> None:
    config = _config(CONFIGS[3], 3)
    train = _randomise(FMEN(config, deploy=False), seed=5)
    model, desc = load_model(train.state_dict())
    assert model.deploy and desc.scale == 3
    x = torch.rand(1, 3, 9, 11) * 255
    with torch.no_grad():
        assert (model(x) - train(x)).abs().max() <= 1e-3


def test_ntire_names_and_module_prefix_are_canonicalized() -> None:
    state = FMEN(preset_config("fmen-s", 4)).state_dict()
    renamed = {
        "module." + k.replace("ERBs.", "basic_blocks.").replace("HFABs.", "hfabs."): v
        for k, v in state.items()
    }
    assert set(canonicalize_keys(renamed)) == set(state)
    _model, desc = load_model(renamed)
    assert desc.name == "FMEN-S"


def test_presets_match_the_release() -> None:
    fmen_s = FMEN(preset_config("fmen-s", 4))
    assert count_parameters(fmen_s) == 341_066
    assert fmen_s.config.receptive_radius == 34
    assert multiply_adds_per_pixel(fmen_s.config) * 256 * 256 == pytest.approx(22.28e9, rel=0.01)
    assert PRESETS["fmen"].config.channels == 64
    fmen = FMEN(preset_config("fmen", 4))
    assert count_parameters(fmen) > count_parameters(fmen_s)


@pytest.mark.parametrize("path_fixture", ["njujet", "ntire"])
def test_official_releases_load_strictly(path_fixture: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(path_fixture)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model, desc = load_model(state)
    assert (desc.name, desc.scale, desc.params, desc.receptive_radius) == ("FMEN-S", 4, 341_066, 34)
    assert set(canonicalize_keys(state)) == set(model.state_dict())


def test_foreign_and_broken_state_dicts_are_refused() -> None:
    with pytest.raises(WeightsError, match="not an FMEN-family checkpoint"):
        load_model(torch.nn.Linear(3, 4).state_dict())
    state = FMEN(preset_config("fmen-s", 2)).state_dict()
    missing = dict(state)
    missing.pop("lr_conv.bias")
    with pytest.raises(WeightsError, match="do not fit"):
        load_model(missing)
    wrong = dict(state)
    wrong["lr_conv.weight"] = torch.zeros(50, 50, 1, 1)
    with pytest.raises(WeightsError):
        load_model(wrong)
    bad_tail = dict(state)
    bad_tail["tail.0.weight"] = torch.zeros(7, 50, 3, 3)
    bad_tail["tail.0.bias"] = torch.zeros(7)
    with pytest.raises(WeightsError, match="tail"):
        load_model(bad_tail)
    nan = dict(state)
    nan["head.bias"] = torch.full((50,), float("nan"))
    with pytest.raises(WeightsError, match="NaN"):
        load_model(nan)


def test_gate_sigmoid_matches_torch_and_is_size_independent() -> None:
    x = torch.randn(1, 16, 37, 41) * 12
    x[0, 0, 0, :4] = torch.tensor([-1e4, 1e4, 0.0, -88.0])
    ref = torch.sigmoid(x.double())
    got = gate_sigmoid(x)
    assert (got.double() - ref).abs().max() < 2e-7
    crop = x[:, :, 3:30, 5:37].contiguous()
    assert torch.equal(gate_sigmoid(crop), got[:, :, 3:30, 5:37])
