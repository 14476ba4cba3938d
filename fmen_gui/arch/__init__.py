"""The FMEN network family: modules, presets, re-parameterisation and state-dict detection.

The network as the paper describes it, in stock PyTorch layers; how it runs fast is the
engine's (:mod:`fmen_gui.engine.backends`). This package never imports Qt or the engine
(checked by import-linter).
"""

from fmen_gui.arch.detect import ModelDescriptor, load_model
from fmen_gui.arch.fmen import FMEN, PRESETS, FMENConfig, Preset, preset_config
from fmen_gui.arch.reparam import reparameterize

__all__ = [
    "FMEN",
    "PRESETS",
    "FMENConfig",
    "ModelDescriptor",
    "Preset",
    "load_model",
    "preset_config",
    "reparameterize",
]
