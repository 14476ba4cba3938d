"""Image-quality figures with the standard super-resolution protocol.

PSNR on the luma channel (ITU-R BT.601, 16–235) of 8-bit rounded images, with ``crop`` border
pixels removed, as the papers and the NTIRE challenge report it. Shared by the tests, the
trainer and the benchmarks so every number in the project means the same thing.
"""

from __future__ import annotations

import numpy as np


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in 16–235 from 0–255 RGB, in float64."""
    x = rgb.astype(np.float64)
    return 16.0 + (65.738 * x[..., 0] + 129.057 * x[..., 1] + 25.064 * x[..., 2]) / 256.0


def psnr_y(output: np.ndarray, reference: np.ndarray, crop: int) -> float:
    """PSNR in dB between two 8-bit RGB images on the Y channel, ``crop`` pixels trimmed."""
    if output.shape != reference.shape:
        raise ValueError(f"shapes differ: {output.shape} vs {reference.shape}")
    a, b = y_channel(output), y_channel(reference)
    if crop > 0:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
