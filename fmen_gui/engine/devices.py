"""Device and precision choice: CUDA → MPS → CPU, fp16 only where the hardware runs it natively."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from fmen_gui.errors import EngineError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class DeviceInfo:
    key: str  # "cpu", "cuda:0", "mps" — what --device and the settings store
    label: str  # what a person reads, e.g. "CUDA 0: NVIDIA GeForce RTX 4070"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


# CPU flags (as /proc/cpuinfo names them) that mean bf16 arithmetic in hardware.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` (x86 "flags", Arm "Features")."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_bf16_native() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX-512 BF16 or AMX).

    Why not oneDNN's ``_is_mkldnn_bf16_supported()``: it is true on any AVX-512 CPU, where
    oneDNN then *emulates* bf16 and a convolution runs 2.4× slower than in fp32 (4.5× end to
    end, measured). Only the CPU flags say whether bf16 is native. Without readable flags (not
    Linux) the answer is no: fp32 is never the slow choice.
    """
    return bool(cpu_flags() & BF16_CPU_FLAGS)


def list_devices() -> list[DeviceInfo]:
    devices: list[DeviceInfo] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            devices.append(DeviceInfo(f"cuda:{i}", f"CUDA {i}: {torch.cuda.get_device_name(i)}"))
    if _mps_available():
        devices.append(DeviceInfo("mps", "Apple GPU (MPS)"))
    devices.append(DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)"))
    return devices


def resolve_device(name: str) -> torch.device:
    """Turn a user's choice into a device, or explain in one line why it cannot be used."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EngineError("CUDA is not available here (no NVIDIA GPU/driver, or a CPU-only PyTorch)")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise EngineError(f"not a device name: {name!r}") from None
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise EngineError(f"there is no CUDA device {index} (found {torch.cuda.device_count()})")
        return torch.device("cuda", index)
    if name == "mps":
        if not _mps_available():
            raise EngineError("MPS (Apple GPU) is not available on this machine")
        return torch.device("mps")
    raise EngineError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")


def precision_choices(device_key: str) -> list[str]:
    """Precisions worth offering on a device: only those it computes natively."""
    kind = device_key.split(":")[0]
    if kind == "cpu":
        return ["auto", "fp32", "bf16"] if cpu_bf16_native() else ["auto", "fp32"]
    if kind == "cuda":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ["auto", "fp16", "fp32", "bf16"] if bf16 else ["auto", "fp16", "fp32"]
    return ["auto", "fp16", "fp32"]


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` is fp16 on GPUs and exact fp32 on the CPU."""
    precision = (precision or "auto").strip().lower()
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    if device.type == "cpu":
        if precision == "fp16":
            raise EngineError("fp16 is not supported on the CPU: use fp32 (exact) or bf16")
        if precision == "bf16" and not cpu_bf16_native():
            raise EngineError("this CPU has no native bf16 arithmetic: use fp32")
    return _DTYPES[precision]


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index or 0
        return f"CUDA {index}: {torch.cuda.get_device_name(index)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def precision_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in _DTYPES.items()}[dtype]
