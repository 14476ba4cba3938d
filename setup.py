"""Builds the optional Winograd convolution kernel (``fmen_gui/engine/backends/winograd.c``).

Everything else about the package is declared in pyproject.toml. The kernel is a plain C
library loaded with ctypes (no Python C API), built only for x86-64 with GCC; when it cannot
be built the install still succeeds and the app uses oneDNN alone.
"""

import platform
import sys

from setuptools import Extension, setup

extensions = []
if platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32":
    extensions.append(
        Extension(
            "fmen_gui.engine.backends._winograd",
            sources=["fmen_gui/engine/backends/winograd.c"],
            # No -m flags: each build inside chooses its instruction set with a target pragma,
            # so the library loads on any x86-64 CPU and the caller picks what this one runs.
            extra_compile_args=[
                "-O3",
                "-funroll-loops",
                "-ffp-contract=off",  # one rounding per written operation: same bits everywhere
                "-fopenmp",
            ],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
