"""Read weights files safely and turn them into a ready-to-run FMEN network.

Weights come from strangers on the internet, so reading one must never run code and must
never crash the app: pickles are opened with ``weights_only=True`` (which refuses any Python
object that is not a plain tensor container), and every failure a bad file can cause is turned
into one :class:`~fmen_gui.errors.WeightsError` with a single line meant for the user. The
messages do not repeat the file name; callers add it (``error: PATH: reason``).
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor, nn

from fmen_gui.arch.detect import ModelDescriptor
from fmen_gui.arch.fmen import FMEN
from fmen_gui.atomicfiles import atomic_file
from fmen_gui.errors import WeightsError

MAX_WEIGHTS_BYTES = 2 * 1024**3
"""Largest file read by default. FMEN checkpoints are a few MB and the largest super-resolution
models people share (HAT-L, SwinIR-L) a few hundred; anything near this is not one,
and refusing it before reading keeps a mistaken drop of a multi-GB file from exhausting memory."""

TORCH_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".bin"})
SAFETENSORS_SUFFIXES = frozenset({".safetensors"})
SUPPORTED_SUFFIXES = TORCH_SUFFIXES | SAFETENSORS_SUFFIXES

# Keys under which training frameworks nest the actual state dict, in order of preference:
# BasicSR keeps the EMA weights (better quality) beside the raw ones, so take those first.
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "model_state_dict")
MAX_CONTAINER_DEPTH = 2

UNSAFE_MESSAGE = (
    "refused: the file contains Python code or objects that are not plain tensors (unsafe pickle)"
)
# The weights-only unpickler reports a refused import with the word GLOBAL/global; other
# unpickling errors (bad opcodes) mean the bytes are simply not a checkpoint.
_GLOBAL_RX = re.compile(r"\bglobal\b", re.IGNORECASE)

# torch warns on stderr about any pickle protocol other than 2 before failing or succeeding on
# its own; the outcome is reported properly, so the warning would only be noise for the user.
warnings.filterwarnings("ignore", message=r"Detected pickle protocol", category=UserWarning)

_ZIP_MAGIC = b"PK\x03\x04"
MAX_ZIP_MEMBERS = 10_000
"""A checkpoint archive holds a few files plus one per tensor storage (a few hundred at most)."""
MAX_COMPRESSION_RATIO = 1000
"""torch.save stores members uncompressed; a member packed tighter than this is a zip bomb."""
_PICKLE_PROTO = 0x80


def _size_text(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    return f"{n / 1024**2:.1f} MB"


def _check_file(path: Path, max_bytes: int) -> int:
    """Reject what is not a readable regular file of a sane size, before opening it."""
    if path.is_dir():
        raise WeightsError("is a folder, not a weights file")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise WeightsError("file not found") from None
    except OSError as exc:
        raise WeightsError(f"cannot read the file: {exc.strerror or exc}") from None
    if not path.is_file():
        raise WeightsError("not a regular file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise WeightsError(f"unsupported file type {suffix or '(none)'!r}: expected one of {allowed}")
    if size == 0:
        raise WeightsError("the file is empty")
    if size > max_bytes:
        raise WeightsError(
            f"file too large ({_size_text(size)}; the limit is {_size_text(max_bytes)}): "
            "super-resolution models are at most a few hundred MB"
        )
    return size


def _sniff(path: Path) -> str:
    """Guess the container from the first bytes: ``"zip"`` (torch's archive format), ``"torch"``
    (a legacy pickle), ``"safetensors"`` or ``"unknown"``.

    The extension is only a hint (a renamed ``.safetensors`` saved as ``.pt`` is common), and
    sniffing lets an unrecognised file get a clear message instead of an unpickler error.
    """
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head and head[0] == _PICKLE_PROTO:
        return "torch"
    if len(head) > 8 and head[8:9] == b"{":
        return "safetensors"
    return "unknown"


def _check_zip(path: Path, max_bytes: int) -> int:
    """Bound a ``.pt`` archive by what it unpacks to, before torch reads any of it.

    The size check on the file itself says nothing about a zip: a few kilobytes of deflated
    zeros can claim gigabytes. The central directory's uncompressed sizes are what torch's
    reader allocates (it extracts into buffers of exactly that size), so bounding their sum
    bounds the memory it can take. Returns that sum.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise WeightsError("truncated or corrupt archive: the checkpoint cannot be unpacked") from None
    except OSError as exc:
        raise WeightsError(f"cannot read the file: {exc.strerror or _first_line(exc)}") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise WeightsError(f"refused: the archive holds {len(members)} files (at most {MAX_ZIP_MEMBERS})")
    total = sum(member.file_size for member in members)
    if total > max_bytes:
        raise WeightsError(
            f"refused: the archive unpacks to {_size_text(total)} (the limit is {_size_text(max_bytes)})"
        )
    for member in members:
        if member.file_size > (1 << 16) and member.file_size > MAX_COMPRESSION_RATIO * member.compress_size:
            raise WeightsError(
                f"refused: {member.filename!r} is compressed more than {MAX_COMPRESSION_RATIO}:1 "
                f"({_size_text(member.compress_size)} → {_size_text(member.file_size)})"
            )
    return total


def _check_tensor_bytes(state: Mapping[str, Tensor], file_size: int) -> None:
    """Refuse tensors that claim more data than the file holds (unpacked, for an archive).

    Each real tensor's values are stored in the file; views sharing one storage could claim
    more, and the network built from their shapes would allocate every claimed element.
    """
    claimed = sum(t.nelement() * t.element_size() for t in state.values())
    if claimed > file_size:
        raise WeightsError(
            f"refused: the tensors claim {_size_text(claimed)} but the file holds only {_size_text(file_size)}"
        )


def _load_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _GLOBAL_RX.search(str(exc)):
            raise WeightsError(UNSAFE_MESSAGE) from None
        raise WeightsError("corrupt file: not a readable PyTorch checkpoint") from None
    except (EOFError, zipfile.BadZipFile):
        raise WeightsError("truncated or corrupt file: the checkpoint ends unexpectedly") from None
    except RuntimeError as exc:
        text = str(exc).lower()
        if "zip" in text or "corrupt" in text or "stream" in text:
            raise WeightsError("truncated or corrupt archive: the checkpoint cannot be unpacked") from None
        raise WeightsError(f"cannot read the checkpoint: {_first_line(exc)}") from None
    except MemoryError:
        raise WeightsError("not enough memory to read the file") from None
    except OSError as exc:
        raise WeightsError(f"cannot read the file: {exc.strerror or _first_line(exc)}") from None
    except Exception as exc:  # any other unpickler failure is still just a bad file
        raise WeightsError(f"corrupt file: {type(exc).__name__}: {_first_line(exc)}") from None


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        return safetensors.torch.load_file(path, device="cpu")
    except safetensors.SafetensorError as exc:
        raise WeightsError(f"corrupt safetensors file: {_first_line(exc)}") from None
    except MemoryError:
        raise WeightsError("not enough memory to read the file") from None
    except OSError as exc:
        raise WeightsError(f"cannot read the file: {exc.strerror or _first_line(exc)}") from None
    except Exception as exc:  # malformed headers surface as assorted exception types
        raise WeightsError(f"corrupt safetensors file: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def unwrap_state_dict(obj: object, *, depth: int = 0) -> dict[str, Tensor]:
    """Find the tensor dict inside a training checkpoint (``{"params_ema": {...}, "epoch": 7}``).

    Only the well-known container keys are followed, and at most two levels deep, so an
    arbitrary nested dict is never searched for "something that looks like weights".
    """
    if not isinstance(obj, Mapping):
        raise WeightsError(f"not a state dict: the file holds a {type(obj).__name__}, not named tensors")
    if depth < MAX_CONTAINER_DEPTH:
        for key in CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                return unwrap_state_dict(inner, depth=depth + 1)
    if not obj:
        raise WeightsError("not a state dict: it holds no tensors")
    for key, value in obj.items():
        if not isinstance(key, str):
            raise WeightsError(f"not a state dict: key {key!r} is not a name")
        if not isinstance(value, Tensor):
            raise WeightsError(f"not a state dict: entry {key!r} is a {type(value).__name__}, not a tensor")
    return dict(obj)


def read_state_dict(path: Path, *, max_bytes: int = MAX_WEIGHTS_BYTES) -> dict[str, Tensor]:
    """Read a ``.pt``/``.pth``/``.ckpt``/``.bin``/``.safetensors`` file into a CPU state dict.

    Raises :class:`WeightsError` (one line, no traceback for the user) for anything that is not
    a safe, readable dict of tensors. ``module.`` prefixes are left for the architecture code.
    """
    path = Path(path)
    size = _check_file(path, max_bytes)
    try:
        kind = _sniff(path)
    except OSError as exc:
        raise WeightsError(f"cannot read the file: {exc.strerror or _first_line(exc)}") from None
    if kind == "unknown":
        raise WeightsError("unrecognised contents: not a PyTorch checkpoint or safetensors file")
    if kind == "zip":
        size = _check_zip(path, max_bytes)
    obj = _load_safetensors(path) if kind == "safetensors" else _load_torch(path)
    state = unwrap_state_dict(obj)
    _check_tensor_bytes(state, size)
    return state


def load_weights(path: Path, *, max_bytes: int = MAX_WEIGHTS_BYTES) -> tuple[FMEN, ModelDescriptor]:
    """Read ``path`` and build the deploy-form FMEN network it describes, loaded strictly.

    The FMEN-only view of :func:`fmen_gui.weights.models.load_file` (the one loader path, through
    spandrel), for training, export and benchmarks; a model of another architecture is refused.
    """
    from fmen_gui.weights.models import load_file  # models imports this module

    loaded = load_file(path, max_bytes=max_bytes)
    if loaded.fmen is None:
        raise WeightsError(f"not an FMEN-family checkpoint: it is a {loaded.arch} model")
    return loaded.module, loaded.fmen  # type: ignore[return-value]


def save_safetensors(
    model: nn.Module | Mapping[str, Tensor], path: Path, metadata: Mapping[str, str] | None = None
) -> None:
    """Write the model's weights as ``.safetensors``, atomically.

    safetensors is the format we ship because it cannot carry code. The file appears under its
    final name only once complete, so an interrupted export never leaves a broken file behind.
    """
    path = Path(path)
    state = model.state_dict() if isinstance(model, nn.Module) else model
    meta = dict(metadata or {})
    bad = [k for k, v in meta.items() if not (isinstance(k, str) and isinstance(v, str))]
    if bad:
        raise WeightsError(f"safetensors metadata must map text to text (entry {bad[0]!r})")
    # Clone so tensors sharing storage (tied weights, views) are written independently.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # safetensors opens the file by name; atomic_file's fsync covers what it wrote there.
        with atomic_file(path, overwrite=True) as out:
            safetensors.torch.save_file(tensors, str(out.temp), metadata=meta)
    except (OSError, safetensors.SafetensorError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        raise WeightsError(f"cannot write {path}: {detail}") from None
