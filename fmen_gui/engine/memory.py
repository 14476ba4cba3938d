"""Process-level memory settings and measurements for the CPU path.

glibc hands every allocation above its mmap threshold (128 KiB, growing adaptively to at most
32 MiB) straight back to the kernel when it is freed, so each layer of a forward pass maps
fresh pages and takes tens of thousands of page faults per image. Raising the threshold to its
maximum and disabling heap trimming keeps those buffers in the process instead; the engine
sizes tiles so that a layer's activations stay under the threshold.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

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


# --------------------------------------------------------------------------------------------
# Memory really available to this process
#
# Allocations rarely fail on Linux: with overcommit the kernel promises memory it does not have,
# and a cgroup limit (containers, systemd slices, CI runners) kills the process outright when it
# is exceeded. Out-of-memory recovery that waits for a failed allocation therefore never gets
# its chance; the engine plans each job against these numbers instead.

UNLIMITED = 1 << 62  # cgroup v1 reports "no limit" as a huge page-aligned number


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= UNLIMITED else value


def _stat_field(path: Path, names: tuple[str, ...]) -> int:
    """The first of ``names`` found in a cgroup ``memory.stat`` (0 when none is there)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    fields = dict(line.split(None, 1) for line in lines if " " in line)
    for name in names:
        if name in fields:
            try:
                return int(fields[name])
            except ValueError:
                return 0
    return 0


def _meminfo_available(root: Path) -> int | None:
    try:
        with open(root / "proc" / "meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_dirs(root: Path) -> list[tuple[int, Path]]:
    """(cgroup version, folder) of every memory cgroup this process is in, innermost first,
    walking up to the root of each hierarchy (a parent's limit applies to its children too)."""
    try:
        memberships = (root / "proc" / "self" / "cgroup").read_text().splitlines()
        mounts = (root / "proc" / "self" / "mountinfo").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    v2_path = v1_path = None
    for line in memberships:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        elif "memory" in parts[1].split(","):
            v1_path = parts[2]
    found: list[tuple[int, Path]] = []
    for line in mounts:
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        mount_root, mount_point, fstype = fields[3], fields[4], tail[0]
        if fstype == "cgroup2" and v2_path is not None:
            version, path = 2, v2_path
        elif fstype == "cgroup" and "memory" in tail[2].split(",") and v1_path is not None:
            version, path = 1, v1_path
        else:
            continue
        # Inside a cgroup namespace the mount's root is the namespace's own cgroup.
        relative = path[len(mount_root) :] if mount_root != "/" and path.startswith(mount_root) else path
        base = root / mount_point.lstrip("/")
        folder = base / relative.lstrip("/")
        while True:
            if folder.is_dir():
                found.append((version, folder))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return found


def _cgroup_room(version: int, folder: Path) -> int | None:
    """Bytes this cgroup can still grow by before its limit (None: no limit set there).

    Usage counts the page cache, which the kernel reclaims before it kills anyone, so the
    inactive file pages are taken back off (what container runtimes call the working set).
    """
    if version == 2:
        limit = _read_int(folder / "memory.max")
        usage = _read_int(folder / "memory.current")
        cache = _stat_field(folder / "memory.stat", ("inactive_file",))
    else:
        limit = _read_int(folder / "memory.limit_in_bytes")
        usage = _read_int(folder / "memory.usage_in_bytes")
        cache = _stat_field(folder / "memory.stat", ("total_inactive_file", "inactive_file"))
    if limit is None:
        return None
    working = max(0, (usage or 0) - cache)
    return max(0, limit - working)


def available_bytes(root: Path = Path("/")) -> int | None:
    """Bytes this process can still allocate without being killed, or None where unknown.

    The smallest of: the kernel's ``MemAvailable`` (free memory plus reclaimable cache, not
    counting swap) and the room left under every cgroup v2 ``memory.max`` and cgroup v1
    ``memory.limit_in_bytes`` above this process. ``root`` stands in for ``/`` in tests.
    Off Linux, the free physical memory that ``sysconf`` reports where it does; else None.
    """
    candidates: list[int] = []
    meminfo = _meminfo_available(root)
    if meminfo is not None:
        candidates.append(meminfo)
    for version, folder in _cgroup_dirs(root):
        room = _cgroup_room(version, folder)
        if room is not None:
            candidates.append(room)
    if not candidates and root == Path("/") and not sys.platform.startswith("linux"):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return min(candidates) if candidates else None


def gib(n: int) -> str:
    """Bytes as the one-decimal GiB figure used in messages (at least 0.1)."""
    return f"{max(n, 0.1 * 2**30) / 2**30:.1f} GiB"


# --------------------------------------------------------------------------------------------
# What encoding an output takes, beyond the output array itself
#
# Peak resident growth while write_image encoded a 3000×3000 image (9 MP, smooth + noise),
# measured with reset_peak_rss()/peak_rss_bytes() around the call, Pillow 13.0, 2026-12-03,
# in bytes per output pixel:
#
#   JPEG q95 4:4:4, optimize      10.8   (Pillow's own RGBX copy 4 B + libjpeg keeping every
#   JPEG q95 4:4:4, no optimize    4.3    DCT coefficient, 6 B, to build optimal tables)
#   PNG 8-bit (RGB or RGBA)        4.1    TIFF 8-bit (RGB or RGBA)   4.3
#   WebP q95 RGB                  16.9    WebP q95 RGBA             42.3
#   PNG 16-bit RGB / RGBA          9.1 / 18.6  (libpng via imagecodecs: the encoded file in
#                                              memory; RGBA adds the channel stacking)
#   TIFF 16-bit RGB / RGBA         0.03 / 8.0  (tifffile, strip by strip; RGBA: stacking)
#   JPEG from 16-bit data, opt.   24.0   (the 16 → 8-bit conversion goes through uint32: +13)
#
# Rounded up below; gray output adds the uint32 sum of _gray_of (+5).
_ENCODE_BYTES: dict[tuple[str, int, bool], float] = {
    ("JPEG", 8, False): 5,
    ("PNG", 8, False): 5,
    ("PNG", 8, True): 5,
    ("TIFF", 8, False): 5,
    ("TIFF", 8, True): 5,
    ("WEBP", 8, False): 18,
    ("WEBP", 8, True): 43,
    ("PNG", 16, False): 12,
    ("PNG", 16, True): 20,
    ("TIFF", 16, False): 1,
    ("TIFF", 16, True): 9,
}
_JPEG_OPTIMIZE_BYTES = 7  # what optimize adds to JPEG's 5
_TO_8BIT_BYTES = 13  # 16-bit data written to an 8-bit-only format
_GRAY_BYTES = 5


def encode_bytes(
    pillow_format: str, pixels: int, *, bit_depth: int, alpha: bool, grayscale: bool, optimize: bool
) -> int:
    """Memory write_image needs on top of the output array to encode ``pixels`` output pixels."""
    stored_depth = bit_depth if pillow_format in ("PNG", "TIFF") else 8
    keep_alpha = alpha and pillow_format != "JPEG"
    per_pixel = _ENCODE_BYTES.get((pillow_format, stored_depth, keep_alpha), 43)
    if pillow_format == "JPEG" and optimize:
        per_pixel += _JPEG_OPTIMIZE_BYTES
    if bit_depth == 16 and stored_depth == 8:
        per_pixel += _TO_8BIT_BYTES
    if grayscale:
        per_pixel += _GRAY_BYTES
    return int(per_pixel * pixels)
