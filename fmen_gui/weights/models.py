"""Any super-resolution model file, FMEN or not, loaded through one path: spandrel.

spandrel (the loader behind chaiNNer) recognises some forty architectures from a state dict
and describes each loaded network (scale, channels, tiling advice, half-precision support,
purpose). FMEN is not among them, so this module registers it — an :class:`ArchSupport` whose
detection and hyper-parameter inference are this project's own (:mod:`fmen_gui.arch.detect`) —
in a copy of spandrel's main registry. Every model then goes through
:meth:`spandrel.ModelLoader.load_from_state_dict`.

The file itself is read by :func:`fmen_gui.weights.loading.read_state_dict`, not by
``ModelLoader.load_from_file``: spandrel's reader unpickles with its own allow-list and tries
``torch.jit.load`` on ``.pt`` files (TorchScript carries code), while ours opens pickles with
``weights_only=True``, bounds sizes and archives first, and turns every failure into one line.

**torchvision.** spandrel's metadata requires torchvision, and two of its architectures import
``torchvision.transforms.functional`` when the package is imported: LaMa (inpainting) and
RestoreFormer (face restoration). The local CPU build of torch has no matching torchvision, and
PyPI's either fails to import beside it or pulls a second torch of several GB (see the README,
"Models from other projects"). Both architectures are of a purpose this app refuses, so when
torchvision is absent a stand-in with just those names is put in ``sys.modules`` for the
duration of ``import spandrel`` and removed again; a real torchvision is always preferred.
"""

from __future__ import annotations

import enum
import importlib.util
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from fmen_gui.arch.detect import ModelDescriptor, canonicalize_keys, load_model
from fmen_gui.errors import WeightsError
from fmen_gui.weights.loading import MAX_WEIGHTS_BYTES, read_state_dict

if TYPE_CHECKING:
    import spandrel

FMEN_ARCH_ID = "FMEN"
# Keys every FMEN-family state dict has (after canonicalize_keys), whatever its size or form.
_FMEN_KEYS = ("head.weight", "tail.0.weight", "warmup.1.squeeze.weight")
# spandrel purposes the engine can run: whole images in, whole images out.
RUNNABLE_PURPOSES = {"SR": "super-resolution", "Restoration": "restoration (1×)"}
_REFUSED_PURPOSES = {
    "FaceSR": "a face-restoration model",
    "Inpainting": "an inpainting model (it needs a mask)",
}
# Architectures whose purpose the app refuses, known before anything is built: a face-restoration
# or inpainting network is hundreds of MB of weights to allocate only to say no afterwards.
_REFUSED_ARCHITECTURES = {"GFPGAN": "FaceSR", "RestoreFormer": "FaceSR", "LaMa": "Inpainting"}
MAX_SCALE = 8
RGB = 3


# --------------------------------------------------------------------------- spandrel import


class _InterpolationMode(enum.Enum):
    """The names LaMa reads at import time; its forward pass is never run here."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _needs_torchvision(*_args: object, **_kwargs: object) -> Any:
    raise WeightsError("this architecture needs torchvision, which is not installed")


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = _InterpolationMode  # type: ignore[attr-defined]
    functional.rotate = _needs_torchvision  # type: ignore[attr-defined]
    functional.normalize = _needs_torchvision  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    return {m.__name__: m for m in (root, transforms, functional)}


@cache
def import_spandrel() -> types.ModuleType:
    """``import spandrel``, with the torchvision stand-in only while it imports (see above)."""
    if "spandrel" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        import spandrel

        return spandrel
    stand_in = _torchvision_stand_in()
    sys.modules.update(stand_in)
    try:
        import spandrel
    finally:
        for name in stand_in:
            if sys.modules.get(name) is stand_in[name]:
                del sys.modules[name]
    return spandrel


# --------------------------------------------------------------------------- FMEN in spandrel


def is_fmen_state(state: Mapping[str, Any]) -> bool:
    """spandrel's ``detect``: the keys every FMEN-family checkpoint has, in either form."""
    keys = canonicalize_keys({k: v for k, v in state.items() if isinstance(k, str)})
    return all(k in keys for k in _FMEN_KEYS)


def _fmen_architecture() -> spandrel.Architecture:
    sp = import_spandrel()

    class FMENArch(sp.Architecture):  # type: ignore[misc,name-defined]
        """FMEN / FMEN-S: detection and hyper-parameters from :mod:`fmen_gui.arch.detect`."""

        def __init__(self) -> None:
            super().__init__(id=FMEN_ARCH_ID, name="FMEN", detect=is_fmen_state)

        def load(self, state_dict: Mapping[str, Tensor]) -> spandrel.ImageModelDescriptor:
            model, desc = load_model(state_dict)
            return sp.ImageModelDescriptor(
                model,
                model.state_dict(),
                architecture=self,
                purpose="SR",
                tags=[desc.name],
                supports_half=desc.supports_fp16,
                supports_bfloat16=True,
                scale=desc.scale,
                input_channels=desc.config.in_channels,
                output_channels=desc.config.in_channels,
                tiling=sp.ModelTiling.SUPPORTED,
            )

    return FMENArch()


def _error_detail(exc: BaseException) -> str:
    """The first line of a load error, with the next one when it only announces it (``…:``)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]
    return text[:200]


def _checked(arch: spandrel.Architecture) -> spandrel.Architecture:
    """``arch`` behind this app's rules, applied where spandrel has detected it.

    A face-restoration or inpainting architecture is refused before its network is built
    (hundreds of MB allocated only to say no); any other's failed load becomes one line that
    names it. Detection itself stays spandrel's, so ``ModelLoader`` runs it once.
    """
    sp = import_spandrel()

    class Checked(sp.Architecture):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__(id=arch.id, name=arch.name, detect=arch.detect)

        def load(self, state_dict: Mapping[str, Tensor]) -> Any:
            refused = _REFUSED_ARCHITECTURES.get(str(arch.id))
            if refused is not None:
                raise WeightsError(
                    f"refused: {arch.name} is {_REFUSED_PURPOSES[refused]}; this app upscales whole images"
                )
            try:
                return arch.load(state_dict)
            except WeightsError:
                raise
            except (RuntimeError, ValueError, KeyError, AssertionError, IndexError, TypeError) as exc:
                # The architecture matched the keys but its inference or strict load failed.
                raise WeightsError(
                    f"the tensors do not fit the detected architecture ({arch.name}): {_error_detail(exc)}"
                ) from None

    return Checked()


@cache
def registry() -> spandrel.ArchRegistry:
    """spandrel's architectures behind this app's rules (:func:`_checked`), plus FMEN, first."""
    sp = import_spandrel()
    reg = sp.ArchRegistry()
    supports = sp.MAIN_REGISTRY.architectures("insertion")
    reg.add(*(sp.ArchSupport(_checked(a.architecture), a.detect, a.before) for a in supports))
    first = (sp.MAIN_REGISTRY.architectures("detection")[0].architecture.id,) if supports else ()
    reg.add(sp.ArchSupport(_checked(_fmen_architecture()), is_fmen_state, before=first))
    return reg


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for the engine, with what the engine and the menus need to know.

    ``fmen`` is set for the FMEN family (its exact tiles and fast paths apply); ``spandrel`` is
    spandrel's descriptor for every model (tiling advice, size requirements, dtypes).
    """

    module: nn.Module
    arch: str  # spandrel's architecture name: "FMEN", "ESRGAN", "SPAN", "SwinIR"…
    purpose: str  # "SR" or "Restoration"
    scale: int
    input_channels: int
    output_channels: int
    params: int
    spandrel: Any  # spandrel.ImageModelDescriptor
    fmen: ModelDescriptor | None = None

    @property
    def is_fmen(self) -> bool:
        return self.fmen is not None

    @property
    def name(self) -> str:
        """``FMEN-S`` for the presets, else the architecture (``ESRGAN``)."""
        return self.fmen.name if self.fmen is not None else self.arch

    @property
    def tiling(self) -> str:
        """``"supported"``, ``"discouraged"`` or ``"internal"`` (spandrel's ``ModelTiling``)."""
        return str(self.spandrel.tiling.name).lower()

    @property
    def size_requirements(self) -> tuple[int, int, bool]:
        """``(minimum, multiple_of, square)`` of the input, in pixels."""
        req = self.spandrel.size_requirements
        return int(req.minimum), int(req.multiple_of), bool(req.square)

    @property
    def supports_half(self) -> bool:
        return bool(self.spandrel.supports_half)

    @property
    def supports_bfloat16(self) -> bool:
        return bool(self.spandrel.supports_bfloat16)


def _unsupported(state: Mapping[str, Tensor]) -> WeightsError:
    keys = list(state)
    shown = ", ".join(keys[:3]) + (", …" if len(keys) > 3 else "")
    return WeightsError(f"unsupported model: no known architecture matches its {len(keys)} tensors ({shown})")


def _check_runnable(desc: Any) -> None:
    """Refuse what the engine cannot run, naming what was detected."""
    sp = import_spandrel()
    arch = desc.architecture.name
    purpose = str(desc.purpose)
    if purpose in _REFUSED_PURPOSES or not isinstance(desc, sp.ImageModelDescriptor):
        what = _REFUSED_PURPOSES.get(purpose, f"a {purpose} model")
        raise WeightsError(f"refused: {arch} is {what}; this app upscales whole images")
    if purpose not in RUNNABLE_PURPOSES:
        raise WeightsError(f"refused: {arch} is a {purpose} model; this app upscales whole images")
    if not 1 <= desc.scale <= MAX_SCALE:
        raise WeightsError(f"refused: {arch} scales by {desc.scale} (this app runs 1× to {MAX_SCALE}×)")
    channels = (desc.input_channels, desc.output_channels)
    if channels not in ((RGB, RGB), (1, 1)):
        raise WeightsError(
            f"refused: {arch} takes {channels[0]} and gives {channels[1]} channels "
            "(this app runs RGB models and one-channel models, per colour)"
        )


def load_state(state: Mapping[str, Tensor]) -> LoadedModel:
    """Detect the architecture of ``state`` with spandrel's registry (FMEN included) and load it."""
    sp = import_spandrel()
    loader = sp.ModelLoader(device="cpu", registry=registry())
    try:
        desc = loader.load_from_state_dict(dict(state))
    except sp.UnsupportedModelError:
        raise _unsupported(state) from None
    except MemoryError:
        raise WeightsError("not enough memory to build the network") from None
    _check_runnable(desc)
    module = desc.model
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WeightsError(f"the weights contain NaN or infinite values ({name})")
    module.eval().requires_grad_(False)
    fmen = None
    if desc.architecture.id == FMEN_ARCH_ID:
        # load_model already built the deploy-form FMEN; describe it the project's way.
        from fmen_gui.arch.detect import describe

        fmen = describe(module.config, module)
    return LoadedModel(
        module=module,
        arch=desc.architecture.name,
        purpose=str(desc.purpose),
        scale=int(desc.scale),
        input_channels=int(desc.input_channels),
        output_channels=int(desc.output_channels),
        params=sum(p.numel() for p in module.parameters()),
        spandrel=desc,
        fmen=fmen,
    )


def load_file(path: Path, *, max_bytes: int = MAX_WEIGHTS_BYTES) -> LoadedModel:
    """Read ``path`` safely and load whatever supported model it holds (one-line errors)."""
    return load_state(read_state_dict(Path(path), max_bytes=max_bytes))
