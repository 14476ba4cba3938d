"""The Winograd F(2×2, 3×3) kernel: it computes the convolution, with its epilogues, and gives
every pixel the same bits whatever the image size (when blocks are aligned). Both builds
(AVX-512 and AVX2) are tested where this CPU runs them."""

from __future__ import annotations

import platform
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from fmen_gui.arch.fmen import NEGATIVE_SLOPE
from fmen_gui.engine.backends import winograd
from fmen_gui.engine.backends.cpu_fused import FusedConv

X86 = platform.machine().lower() in ("x86_64", "amd64")
CAPABILITY = torch.backends.cpu.get_cpu_capability()
AVX512 = X86 and CAPABILITY.startswith("AVX512")
AVX2 = X86 and CAPABILITY.startswith(("AVX2", "AVX512"))
needs_kernel = pytest.mark.skipif(
    not winograd.available(), reason="the Winograd kernel is not built here or this CPU lacks AVX2"
)


def _cl(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


@pytest.fixture(params=["avx512", "avx2"])
def build(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each build of the kernel this machine can run, selected for the test."""
    if request.param == "avx2":
        monkeypatch.setenv("FMEN_WINOGRAD_ISA", "avx2")
    winograd.reset()
    if winograd.isa() != request.param:
        monkeypatch.delenv("FMEN_WINOGRAD_ISA", raising=False)
        winograd.reset()
        pytest.skip(f"the {request.param} build is not available here")
    yield request.param
    monkeypatch.delenv("FMEN_WINOGRAD_ISA", raising=False)
    winograd.reset()


@pytest.mark.skipif(not AVX2, reason="the kernel is only built and used on x86-64 CPUs with AVX2 or AVX-512")
def test_the_kernel_is_built_and_used_on_this_machine() -> None:
    # A silently failed build would quietly slow every upscale down: make it loud where it matters.
    assert winograd.library_path() is not None, (
        "fmen_gui/engine/backends/_winograd*.so missing: pip install -e . builds it"
    )
    assert winograd.available()
    assert winograd.isa() == ("avx512" if AVX512 else "avx2")


@pytest.mark.parametrize(
    ("cin", "cout", "height", "width"),
    [
        (50, 50, 37, 41),
        (16, 50, 20, 33),
        (12, 50, 9, 8),
        (64, 64, 15, 17),
        (50, 48, 11, 12),
        (50, 34, 1, 1),
        (3, 40, 2, 7),
    ],
)
def test_matches_the_direct_convolution(build: str, cin: int, cout: int, height: int, width: int) -> None:
    g = torch.Generator().manual_seed(cin * 100 + cout)
    x = _cl(torch.randn(1, cin, height, width, generator=g) * 30)
    w = torch.randn(cout, cin, 3, 3, generator=g) * 0.1
    b = torch.randn(cout, generator=g)
    other = _cl(torch.randn(1, cout, height, width, generator=g) * 5)
    packed = winograd.pack(w, b, winograd.lanes())
    with torch.inference_mode():
        ref = F.conv2d(x.double(), w.double(), b.double(), padding=1)
        scale = ref.abs().max().item()
        cases = {
            ("none", 0): ref,
            ("leaky_relu", 0): F.leaky_relu(ref, NEGATIVE_SLOPE),
            ("none", winograd.ADD): ref + other.double(),
            ("sigmoid", winograd.MUL): torch.sigmoid(ref) * other.double(),
        }
        for (act, op), want in cases.items():
            got = winograd.conv3x3(x, packed, cout, act, NEGATIVE_SLOPE, other if op else None, op)
            assert got.is_contiguous(memory_format=torch.channels_last) and got.shape == want.shape
            err = (got.double() - want).abs().max().item()
            assert err <= 2e-6 * max(scale, 1.0) + 1e-6, (act, op, err)


def test_every_pixel_gets_the_same_bits_in_any_aligned_crop(build: str) -> None:
    g = torch.Generator().manual_seed(7)
    x = _cl(torch.randn(1, 50, 61, 75, generator=g) * 20)
    w, b = torch.randn(50, 50, 3, 3, generator=g) * 0.1, torch.randn(50, generator=g)
    gate = _cl(torch.rand(1, 50, 61, 75, generator=g))
    packed = winograd.pack(w, b, winograd.lanes())
    with torch.inference_mode():
        whole = winograd.conv3x3(x, packed, 50, "sigmoid", 0.0, gate, winograd.MUL)
        for y0, y1, x0, x1 in [
            (0, 61, 0, 75),
            (0, 30, 0, 31),
            (10, 61, 22, 75),
            (2, 59, 4, 70),
            (0, 5, 70, 75),
        ]:
            crop = winograd.conv3x3(
                _cl(x[:, :, y0:y1, x0:x1]),
                packed,
                50,
                "sigmoid",
                0.0,
                _cl(gate[:, :, y0:y1, x0:x1]),
                winograd.MUL,
            )
            # Inside the crop (away from its cut edges) and along the image's real edges.
            top = 0 if y0 == 0 else 1
            left = 0 if x0 == 0 else 1
            bottom = crop.shape[2] if y1 == 61 else crop.shape[2] - 1
            right = crop.shape[3] if x1 == 75 else crop.shape[3] - 1
            assert torch.equal(
                crop[:, :, top:bottom, left:right],
                whole[:, :, y0 + top : y0 + bottom, x0 + left : x0 + right],
            )


@needs_kernel
def test_the_network_runs_its_wide_layers_through_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, str]] = []
    real = winograd.conv3x3

    def spy(x, packed, cout, act="none", slope=0.0, other=None, other_op=0):  # type: ignore[no-untyped-def]
        calls.append((x.shape[1], cout, act))
        return real(x, packed, cout, act, slope, other, other_op)

    monkeypatch.setattr(winograd, "conv3x3", spy)
    conv = FusedConv(torch.nn.Conv2d(50, 50, 3, padding=1).to(memory_format=torch.channels_last))
    narrow = FusedConv(torch.nn.Conv2d(50, 16, 3, padding=1).to(memory_format=torch.channels_last))
    x = _cl(torch.randn(1, 50, 10, 12))
    with torch.inference_mode():
        conv.forward_act(x, "leaky_relu")
        narrow.forward_act(x, "leaky_relu")  # narrow layers stay with oneDNN, which is faster there
    conv.forward_act(x, "none")  # gradients enabled: never the kernel
    assert calls == [(50, 50, "leaky_relu")]


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMEN_NO_WINOGRAD", "1")
    winograd.reset()
    try:
        assert not winograd.available()
        conv = torch.nn.Conv2d(50, 50, 3, padding=1)
        with torch.inference_mode():
            assert not winograd.supports(conv, torch.randn(1, 50, 8, 8))
    finally:
        monkeypatch.delenv("FMEN_NO_WINOGRAD")
        winograd.reset()
