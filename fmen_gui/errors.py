"""The project's own exception types.

Every error a user can cause (a bad file, a missing weight, a full disk) is one of these, with
a one-line message fit for a status bar or ``error: PATH: reason``. Anything else escaping the
engine is a bug. This module imports nothing heavy so the GUI can catch these cheaply.
"""

from __future__ import annotations


class FmenError(Exception):
    """Base class: an expected failure with a message meant for the user."""


class WeightsError(FmenError):
    """A weights file that cannot be used (not FMEN, corrupt, unsafe, wrong scale...)."""


class MissingWeightsError(WeightsError):
    """No weights are installed for the requested model and scale."""


class ImageError(FmenError):
    """An input image that cannot be read, or an output that cannot be written."""


class OutputExistsError(ImageError):
    """The output name is taken (possibly by a file that appeared while the job ran); kept as is."""


class EngineError(FmenError):
    """The network could not run (device unavailable, out of memory at the smallest tile...)."""


class DownloadError(FmenError):
    """A download failed or did not match its checksum; nothing was stored."""


class Cancelled(FmenError):  # noqa: N818 - reads better at call sites than CancelledError
    """The job was cancelled by the user; nothing was written."""
