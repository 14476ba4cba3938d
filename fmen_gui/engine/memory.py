"""Process-level memory settings and measurements for the CPU path.

glibc hands every allocation above its mmap threshold (128 KiB, growing adaptively to at most
32 MiB) straight back to the kernel when it is freed, so each layer of a forward pass maps
fresh pages and takes tens of thousands of page faults per image. Raising the threshold to its
maximum and disabling heap trimming keeps those buffers in the process instead; the engine
sizes tiles so that a layer's activations stay under the threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit systems
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Apply the glibc settings once per process; False where there is no glibc."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        ok_mmap = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
        ok_trim = mallopt(M_TRIM_THRESHOLD, 2**30) == 1
        _tuned = ok_mmap and ok_trim
    return _tuned


def _status_kib(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes() -> int:
    """Current resident set size (Linux; 0 elsewhere)."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since start or the last :func:`reset_peak_rss`."""
    return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter, so a later peak measures one job alone."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
