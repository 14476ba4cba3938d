"""The one job pipeline's rules (engine/jobs.py), through the functions and the CLI.

The window's side of the same rules is in tests/gui/test_gui_job_rules.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmen_gui import cli
from fmen_gui.engine import jobs
from tests.conftest import ROOT

WEIGHTS = ROOT / "weights" / "fmen_s_x2.safetensors"


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)
    return path


def _cli(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("template", "result", "plain"),
    [
        (jobs.DEFAULT_TEMPLATE, "trip_fmen-s_x4 (2)", "trip_x4"),
        ("{stem}-big", "trip-big", "trip-bigger"),
        ("{model}_{stem}", "fmen_trip", "fmenx_trip"),
        ("{stem}_x{scale:02d}", "trip_x04", "trip"),
    ],
)
def test_the_own_output_rule_follows_the_template(template: str, result: str, plain: str) -> None:
    assert jobs.looks_like_own_output(Path(f"{result}.png"), template)
    assert not jobs.looks_like_own_output(Path(f"{plain}.png"), template)


def test_a_template_that_cannot_tell_results_from_pictures_skips_nothing() -> None:
    assert jobs.own_output_pattern("{stem}") is None
    assert not jobs.looks_like_own_output(Path("photo (2).png"), "{stem}")


def test_the_folder_scan_skips_hidden_folders_and_own_results(tmp_path: Path) -> None:
    _png(tmp_path / "b.png")
    _png(tmp_path / "sub" / "a.jpg")
    _png(tmp_path / ".thumbnails" / "t.png")
    _png(tmp_path / "b-big.png")
    (tmp_path / "notes.txt").write_text("x")
    found = list(jobs.walk_inputs([tmp_path], "{stem}-big"))
    assert [(p.relative_to(tmp_path).as_posix(), own) for p, _root, own in found] == [
        ("b-big.png", True),
        ("b.png", False),
        ("sub/a.jpg", False),
    ]
    assert list(jobs.walk_inputs([tmp_path], cap=1)) == [(tmp_path / "b-big.png", tmp_path, False)]


def test_cli_rescans_skip_the_results_of_a_custom_name_and_hidden_folders(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    _png(folder / "a.png")
    _png(folder / ".cache" / "c.png")
    args = ("--weights", WEIGHTS, "--name", "{stem}-big", "--quiet")
    assert _cli(folder, *args)[0] == 0
    assert sorted(p.name for p in folder.iterdir()) == [".cache", "a-big.png", "a.png"]
    assert sorted(p.name for p in (folder / ".cache").iterdir()) == ["c.png"]
    code, _out, err = _cli(folder, *args)  # the second run finds a-big.png taken, and only that
    assert code == 1 and err.count("\n") == 1 and "a-big.png (use --overwrite" in err
    assert sorted(p.name for p in folder.iterdir()) == [".cache", "a-big.png", "a.png"]


def test_the_policies_for_a_taken_name(tmp_path: Path) -> None:
    src = _png(tmp_path / "a.png")
    taken = _png(tmp_path / "a_fmen-s_x2.png", seed=1)
    runner = type("R", (), {"model_key": "fmen-s", "scale": 2, "label": "R"})()
    job = jobs.Job(src)
    with pytest.raises(jobs.ImageError, match="output already exists"):
        jobs.destination(job, runner, jobs.OnExisting.FAIL)
    assert jobs.destination(job, runner, jobs.OnExisting.OVERWRITE) == taken
    assert jobs.destination(job, runner, jobs.OnExisting.NUMBER).name == "a_fmen-s_x2 (2).png"
    # Onto an input: refused under FAIL and OVERWRITE; NUMBER never lands on one.
    onto = jobs.Job(src, template="{stem}")
    for policy in (jobs.OnExisting.FAIL, jobs.OnExisting.OVERWRITE):
        with pytest.raises(jobs.ImageError, match="onto an input file"):
            jobs.destination(onto, runner, policy)
    assert jobs.destination(onto, runner, jobs.OnExisting.NUMBER).name == "a (2).png"
    # Two jobs of one batch never claim one name, unless the second is numbered.
    batch = jobs.Batch.of([src])
    batch.written[jobs._key(tmp_path / "b.png")] = src
    other = jobs.Job(_png(tmp_path / "b.jpg"), template="{stem}", fmt="png")
    with pytest.raises(jobs.ImageError, match="also the output of"):
        jobs.destination(other, runner, jobs.OnExisting.OVERWRITE, batch)
    assert jobs.destination(other, runner, jobs.OnExisting.NUMBER, batch).name == "b.png"
