"""Recognise an FMEN-family state dict and derive its configuration from keys and shapes.

No side file is needed: the number of blocks comes from the key indices, widths and the
scale from tensor shapes. Checkpoints in either form load; a train-form one is collapsed into
the deploy form on the way in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from fmen_gui.arch.fmen import FMEN, PRESETS, FMENConfig, count_parameters, scale_from_tail_channels
from fmen_gui.arch.reparam import reparameterize
from fmen_gui.errors import WeightsError

# The NTIRE 2022 model zoo stores the same network under other module names.
_RENAMES = (("basic_blocks.", "ERBs."), ("hfabs.", "HFABs."))
_TRAIN_MARKERS = (".expand_conv.", ".bn1.", ".fea_conv.")

# Bounds on what a state dict may claim, checked before anything is built from it. A file of a
# few kilobytes can name ``channels = 10**6`` or ``ERBs.99999`` and the network built from those
# numbers would take terabytes (or, for block counts, hours of Python just to construct). The
# shipped presets use 50-64 channels, mid 16, 4-6 blocks; the bounds leave room for much larger
# family members (the biggest they allow is about 50 M parameters, 200 MB in fp32).
MAX_TENSORS = 10_000
MAX_CHANNELS = 256
MAX_MID_CHANNELS = 256
MAX_DOWN_BLOCKS = 32
MAX_UP_BLOCKS = 16
MAX_EXPAND_RATIO = 8
SCALES = range(1, 9)  # any integer factor 1..8; the GUI and CLI offer 2-4 for their own weights
IN_CHANNELS = 3  # the engine feeds RGB


@dataclass(frozen=True)
class ModelDescriptor:
    """What the engine needs to know about a loaded network."""

    name: str  # "FMEN-S", "FMEN" or "FMEN-family (C=…)"
    key: str  # "fmen-s", "fmen" or "custom"
    config: FMENConfig
    params: int
    supports_fp16: bool = True

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def receptive_radius(self) -> int:
        return self.config.receptive_radius

    @property
    def label(self) -> str:
        return f"{self.name} ×{self.scale}"


def canonicalize_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Strip ``module.`` prefixes (DataParallel) and map NTIRE names to the authors' names."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        for old, new in _RENAMES:
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out


def _indices(keys: list[str], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    if found != set(range(len(found))):
        shown = sorted(found)
        listed = ", ".join(map(str, shown[:8])) + (", …" if len(shown) > 8 else "")
        raise WeightsError(f"block indices are not contiguous for {pattern!r}: [{listed}]")
    return len(found)


def _check_bounds(config: FMENConfig) -> None:
    """Refuse hyper-parameters no FMEN-family checkpoint has, before a network is built from them."""
    limits = (
        ("channels", config.channels, 1, MAX_CHANNELS),
        ("mid channels", config.mid_channels, 5, MAX_MID_CHANNELS),
        ("blocks", config.down_blocks, 0, MAX_DOWN_BLOCKS),
        ("ERBs per HFAB", max(config.up_blocks), 0, MAX_UP_BLOCKS),
        ("expand ratio", config.expand_ratio, 1, MAX_EXPAND_RATIO),
        ("scale", config.scale, SCALES.start, SCALES.stop - 1),
        ("input channels", config.in_channels, IN_CHANNELS, IN_CHANNELS),
    )
    for name, value, low, high in limits:
        if not low <= value <= high:
            allowed = f"{low}" if low == high else f"{low}-{high}"
            raise WeightsError(f"not a usable FMEN-family checkpoint: {name} = {value} (allowed: {allowed})")


def detect_config(state: Mapping[str, Tensor]) -> tuple[FMENConfig, bool]:
    """Return the configuration and whether the dict is in train form."""
    keys = list(state.keys())
    if len(keys) > MAX_TENSORS:
        raise WeightsError(f"not an FMEN-family checkpoint: {len(keys)} tensors (at most {MAX_TENSORS})")
    for required in ("head.weight", "tail.0.weight", "warmup.1.squeeze.weight"):
        if required not in state:
            sample = ", ".join(keys[:3]) or "no tensors at all"
            raise WeightsError(f"not an FMEN-family checkpoint: no {required!r} (it has {sample})")
    head, tail = state["head.weight"], state["tail.0.weight"]
    if head.ndim != 4 or tail.ndim != 4:
        raise WeightsError("not an FMEN-family checkpoint: head/tail are not convolutions")
    channels, in_channels = int(head.shape[0]), int(head.shape[1])
    train = any(marker in k for k in keys for marker in _TRAIN_MARKERS)
    down = _indices(keys, r"ERBs\.(\d+)\.")
    up = [_indices(keys, r"warmup\.1\.convs\.(\d+)\.")]
    up += [_indices(keys, rf"HFABs\.{i}\.convs\.(\d+)\.") for i in range(down)]
    if down and "HFABs.0.squeeze.weight" in state:
        mid = int(state["HFABs.0.squeeze.weight"].shape[0])
    else:
        mid = int(state["warmup.1.squeeze.weight"].shape[0]) + 4
    expand = 2
    if train:
        probe = "ERBs.0.conv1.expand_conv.weight" if down else "warmup.1.convs.0.conv1.expand_conv.weight"
        if probe in state:
            expand = max(1, int(state[probe].shape[0]) // (channels if down else mid - 4))
    try:
        scale = scale_from_tail_channels(int(tail.shape[0]), in_channels)
        config = FMENConfig(channels, mid, down, tuple(up), scale, expand, in_channels)
    except ValueError as exc:
        raise WeightsError(f"not a usable FMEN-family checkpoint: {exc}") from None
    _check_bounds(config)
    return config, train


def _check_shapes(state: Mapping[str, Tensor], config: FMENConfig, train: bool) -> None:
    """Compare the file's tensors with the network ``config`` describes, without allocating it.

    The network is built on PyTorch's ``meta`` device (shapes only, no storage), so a file whose
    shapes disagree with its own keys is refused before the real network, whose size follows
    from the claimed shapes, takes any memory.
    """
    with torch.device("meta"):
        expected = FMEN(config, deploy=not train).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(
            f"missing {missing[0]!r}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    if unexpected:
        problems.append(
            f"unexpected {unexpected[0]!r}"
            + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else "")
        )
    if wrong:
        key = wrong[0]
        problems.append(
            f"{key!r} is {tuple(state[key].shape)}, expected {tuple(expected[key].shape)}"
            + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "")
        )
    if problems:
        raise WeightsError(f"FMEN-family keys but the tensors do not fit: {'; '.join(problems)}")


def describe(config: FMENConfig, model: torch.nn.Module) -> ModelDescriptor:
    for preset in PRESETS.values():
        if preset.config.with_scale(config.scale) == config:
            return ModelDescriptor(preset.name, preset.key, config, count_parameters(model))
    name = f"FMEN-family (C={config.channels}, blocks={config.down_blocks})"
    return ModelDescriptor(name, "custom", config, count_parameters(model))


def load_model(state: Mapping[str, Tensor]) -> tuple[FMEN, ModelDescriptor]:
    """Build the deploy-form network for ``state`` and load it strictly.

    Strict means every tensor in the file is used and none is missing, so a file of another
    architecture can never half-load and produce garbage.
    """
    state = canonicalize_keys(state)
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise WeightsError(f"not a state dict of tensors (entry {bad[0]!r})")
    config, train = detect_config(state)
    _check_shapes(state, config, train)
    model = FMEN(config, deploy=not train)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3])[:300]
        raise WeightsError(f"FMEN-family keys but the tensors do not fit: {detail}") from None
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WeightsError(f"the weights contain NaN or infinite values ({name})")
    if train:
        model = reparameterize(model.eval())
    model.eval().requires_grad_(False)
    return model, describe(config, model)
