"""FMEN Upscaler: image super-resolution with FMEN / FMEN-S on the desktop.

Importing this package is cheap on purpose (no torch, no Qt) so the window can appear before
the network's dependencies load.
"""

__version__ = "0.1.0"
