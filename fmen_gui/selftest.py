"""``fmen-upscaler --self-test``: prove a build works without a screen.

Upscales the bundled sample picture (``resources/sample.png``) with the bundled FMEN-S weights
on the CPU, checks the result, reads 16-bit files back, loads and runs a small model of another
architecture through spandrel, prints one line and returns the exit status (0 passed, 1
failed). Nothing outside a temporary folder is read or written: the per-user data folder is
pointed at that folder for the duration, so only the weights shipped with the app (or the
folder named by ``FMEN_WEIGHTS_DIR``) can be picked, never ones the user fetched or imported.

Outside ``fmen_gui.gui`` on purpose: it imports the engine (and with it torch), which widget
modules must not; ``fmen_gui.gui.app`` imports this module only when the option is given.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import fmen_gui
from fmen_gui.errors import FmenError, MissingWeightsError
from fmen_gui.weights import registry

MODEL = "fmen-s"
SCALE_PREFERENCE = (4, 2, 3)
SAMPLE_NAME = "sample.png"
# The result, shrunk back by averaging scale×scale blocks, must stay this close to the input
# (mean absolute difference, 0-255). Real weights land around 1-5; a broken file or weights
# from another task produce noise or colour casts far above it.
MAX_MEAN_DIFFERENCE = 16.0
MIN_STD = 4.0  # a blank or flat result has (almost) no spread


class SelfTestError(Exception):
    """A check failed; the message is the reason."""


def resources_dir() -> Path:
    """``resources/`` beside the package, or its copy inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(fmen_gui.__file__).resolve().parents[1] / "resources"


def sample_path() -> Path:
    return resources_dir() / SAMPLE_NAME


def pick_scale() -> int:
    """The first scale in ``SCALE_PREFERENCE`` that has FMEN-S weights installed."""
    for scale in SCALE_PREFERENCE:
        try:
            registry.find_weights(MODEL, scale)
        except MissingWeightsError:
            continue
        return scale
    raise SelfTestError(
        f"no FMEN-S weights are bundled (looked for ×4, ×2, ×3 in {registry.project_weights_dir()})"
    )


@contextmanager
def _isolated_user_data(folder: Path) -> Iterator[None]:
    """Point the per-user data folder at ``folder`` so only bundled weights are visible."""
    old = os.environ.get(registry.ENV_DATA_DIR)
    os.environ[registry.ENV_DATA_DIR] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(registry.ENV_DATA_DIR, None)
        else:
            os.environ[registry.ENV_DATA_DIR] = old


def check_result(src: np.ndarray, out: np.ndarray, scale: int) -> float:
    """Raise :class:`SelfTestError` unless ``out`` is a plausible ``scale``× of ``src``.

    Both are H×W×C uint8 arrays. Returns the mean absolute difference between the input and
    the result shrunk back by block averaging.
    """
    h, w = src.shape[:2]
    if out.shape[:2] != (h * scale, w * scale):
        raise SelfTestError(
            f"output is {out.shape[1]}×{out.shape[0]}, expected {w * scale}×{h * scale} (×{scale})"
        )
    if out.shape[2:] != src.shape[2:]:
        raise SelfTestError(f"output has {out.shape[2:]} channels, the input {src.shape[2:]}")
    spread = float(out.std())
    if spread < MIN_STD:
        raise SelfTestError(f"output is blank (pixel standard deviation {spread:.2f})")
    shrunk = out.astype(np.float64).reshape(h, scale, w, scale, -1).mean(axis=(1, 3))
    diff = float(np.abs(shrunk - src.reshape(h, w, -1).astype(np.float64)).mean())
    if not diff <= MAX_MEAN_DIFFERENCE:
        raise SelfTestError(
            f"output does not resemble the input (mean difference {diff:.1f} > {MAX_MEAN_DIFFERENCE:g})"
        )
    return diff


def check_16bit_codecs(work: Path, rgb8: np.ndarray) -> None:
    """Write ``rgb8`` as 16-bit RGBA PNG and TIFF and read both back bit-exactly.

    These go through imagecodecs' native modules, which are loaded on first use and so can be
    missing from a bundle although everything else works (see IMAGECODECS_USED in build.spec).
    """
    from fmen_gui.engine.images import ImageData, read_image, write_image

    rgb = rgb8.astype(np.uint16) * 257 + 7  # values an 8-bit path would not keep
    alpha = np.full(rgb.shape[:2], 40000, dtype=np.uint16)
    for suffix in (".png", ".tiff"):
        path = write_image(work / f"sample16{suffix}", ImageData(rgb=rgb, alpha=alpha))
        back = read_image(path)
        if back.bit_depth != 16 or not np.array_equal(back.rgb, rgb) or not np.array_equal(back.alpha, alpha):
            raise SelfTestError(f"16-bit {suffix[1:].upper()} does not read back as written")


def check_spandrel() -> str:
    """Detect, load and run a small Real-ESRGAN Compact network built in memory; return its name.

    Models from other projects go through spandrel, whose forty architectures are imported by
    its registry (see build.spec): a bundle missing one of their modules, or einops, fails here
    rather than when a user imports a model. Seeded random weights: only shapes are checked.
    """
    import torch

    from fmen_gui.weights.models import import_spandrel, load_state

    import_spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    network = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    loaded = load_state(network.state_dict())
    if (loaded.arch, loaded.scale) != ("RealESRGAN Compact", 2):
        raise SelfTestError(f"spandrel detected a Compact ×2 network as {loaded.arch} ×{loaded.scale}")
    with torch.inference_mode():
        out = loaded.spandrel(torch.rand(1, 3, 8, 8))
    if tuple(out.shape) != (1, 3, 16, 16) or not torch.isfinite(out).all():
        raise SelfTestError(f"the {loaded.arch} network gave {tuple(out.shape)} for 1×3×8×8")
    return loaded.arch


def _run(work: Path) -> str:
    from PIL import Image

    sample = sample_path()
    if not sample.is_file():
        raise SelfTestError(f"the sample image is missing: {sample}")
    scale = pick_scale()

    start = time.perf_counter()
    from fmen_gui.engine.pipeline import Engine, EngineSettings  # torch: seconds, so timed

    imported = time.perf_counter()
    engine = Engine(EngineSettings(model=MODEL, scale=scale, device="cpu"))
    loaded = time.perf_counter()
    if engine.scale != scale:
        raise SelfTestError(
            f"the ×{scale} weights file {engine.weights_path.name} is a ×{engine.scale} model"
        )
    dst = work / f"sample_{MODEL}_x{scale}.png"
    result = engine.upscale_file(sample, dst, fmt="png")
    upscaled = time.perf_counter()

    with Image.open(sample) as im:
        src = np.asarray(im.convert("RGB"))
    with Image.open(dst) as im:
        out = np.asarray(im.convert("RGB"))
    diff = check_result(src, out, scale)
    check_16bit_codecs(work, out)
    other = check_spandrel()
    return (
        f"self-test passed: {engine.label} ({engine.weights_path.name}) "
        f"{src.shape[1]}×{src.shape[0]} -> {out.shape[1]}×{out.shape[0]} on {engine.device_label} "
        f"{engine.precision} ({engine.kernels}); import {imported - start:.2f} s, load {loaded - imported:.2f} s, "
        f"upscale {result.seconds:.2f} s (total {upscaled - start:.2f} s); mean difference {diff:.2f}; "
        f"16-bit PNG and TIFF read back; spandrel loaded and ran a {other} model"
    )


def run_self_test() -> int:
    """Run the self-test, print one line (stdout on success, stderr on failure), return 0 or 1."""
    try:
        with tempfile.TemporaryDirectory(prefix="fmen-selftest-") as tmp:
            work = Path(tmp)
            (work / "userdata").mkdir()
            with _isolated_user_data(work / "userdata"):
                line = _run(work)
    except (SelfTestError, FmenError, OSError) as exc:
        print(f"self-test FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # a bug or a broken build (a module left out): status 1 and the trace
        print(f"self-test FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    print(line, flush=True)
    return 0
