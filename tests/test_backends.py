"""The engine's backends: each runs the network of :mod:`fmen_gui.arch` unchanged, and the engine
picks one per device. (The CPU backend's exactness is tested in test_fast_engine.py and
test_winograd.py.)"""

from __future__ import annotations

import pytest
import torch

from fmen_gui.arch.fmen import FMEN, FMENConfig, preset_config
from fmen_gui.engine.backends import CpuFused, LeanPass, Reference, select_backend


def _model(config: FMENConfig, seed: int = 0) -> FMEN:
    torch.manual_seed(seed)
    model = FMEN(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.7)
    return model


@pytest.mark.parametrize(
    "config",
    [preset_config("fmen-s", 3), FMENConfig(12, 8, 2, (0, 2, 1), scale=2)],
    ids=["fmen-s", "no-ERB-in-the-warm-up-HFAB"],
)
def test_the_lean_pass_computes_the_network(config: FMENConfig) -> None:
    """The GPU pass (in-place activations, buffers dropped early), run here on the CPU."""
    model = _model(config)
    x = torch.rand(1, 3, 29, 37, generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        want = model(x)
        got = LeanPass(model)(x)
    assert got.shape == want.shape == (1, 3, 29 * config.scale, 37 * config.scale)
    assert want.abs().max() > 10.0, "a vacuous comparison"
    assert (got - want).abs().max().item() < 2e-3


def test_the_engine_picks_a_backend_per_device_and_form() -> None:
    model = _model(preset_config("fmen-s", 2))
    cpu = select_backend(model, torch.device("cpu"), torch.float32)
    assert isinstance(cpu, CpuFused) and "oneDNN" in cpu.label
    gpu = select_backend(model, torch.device("cuda"), torch.float16)  # selection only: nothing runs
    assert type(gpu) is LeanPass and gpu.label == "CUDA"
    train = FMEN(preset_config("fmen-s", 2), deploy=False).eval()
    assert isinstance(select_backend(train, torch.device("cpu"), torch.float32), Reference)
    with pytest.raises(ValueError, match="deploy form"):
        LeanPass(train)
