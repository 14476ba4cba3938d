"""A long job through the real worker in the window (slow: ``make test-slow``).

The crash this guards against: two 6000×4000 ×4 upscales in the window died with
``Fatal Python error: none_dealloc`` (a PySide6 build that leaks references to ``None``), the
queue was lost and a temporary file was left beside the input. A 4000×3000 ×4 job makes tens of
thousands of Qt calls (progress, tiles, previews): it must finish, save the whole result, leave no
temporary file and leave ``None``'s reference count where it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, slow_enabled

Image.MAX_IMAGE_PIXELS = None  # the 16000×12000 result is ours
SIZE = (4000, 3000)


@pytest.mark.slow
def test_a_4000x3000_x4_job_completes_in_the_window(  # type: ignore[no-untyped-def]
    request, qtbot, make_window, wait_loaded, tmp_path: Path
) -> None:
    if not slow_enabled(request.config):
        pytest.skip("a 4000×3000 ×4 job takes minutes: run `make test-slow` (or FMEN_RUN_SLOW=1 / -m slow)")
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (75, 100, 3), dtype=np.uint8)
    folder = tmp_path / "photos"
    folder.mkdir()
    source = folder / "big.png"
    Image.fromarray(small).resize(SIZE, Image.Resampling.BICUBIC).save(source)
    window = make_window(weights=ROOT / "weights" / "fmen_s_x4.safetensors")  # the shipped FMEN-S ×4
    window.add_paths([source])
    wait_loaded(window, 1)
    before = sys.getrefcount(None)
    with qtbot.waitSignal(window.idle, timeout=1_800_000):
        window.upscale_action.trigger()
    item = window.model.items()[0]
    assert item.status == "done", item.message
    result = item.latest_result()
    with Image.open(result.path) as saved:
        assert saved.size == (SIZE[0] * 4, SIZE[1] * 4)
        saved.load()  # the whole file decodes: nothing truncated
    assert sorted(p.name for p in folder.iterdir()) == ["big.png", result.path.name]
    if sys.version_info < (3, 12):
        assert sys.getrefcount(None) > before - 1000, "the Qt binding is losing references to None"
