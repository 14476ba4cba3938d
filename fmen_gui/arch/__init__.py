"""The FMEN network family: modules, presets, re-parameterisation and state-dict detection.

This package never imports Qt (checked by import-linter).
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
