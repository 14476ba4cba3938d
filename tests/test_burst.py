"""GPU bursts: the pack carries the pixels exactly and within budget, a burst trains and brings
its weights back, and an import exports and re-seeds only what is better.

Run on the CPU with the small synthetic training folder of conftest (no GPU is needed to test
the path; the device only makes it fast).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui.arch.fmen import FMEN, preset_config
from fmen_gui.training import burst as b
from fmen_gui.training import photos
from fmen_gui.training.campaign import form_of
from fmen_gui.training.data import split
from fmen_gui.weights.loading import save_safetensors
from tests.conftest import BENCHMARK, need

RUN = "fmen-s_x2"  # a campaign run: the tests' tiny pictures are big enough for ×2


def _shipped(weights: Path) -> Path:
    """A deploy-form FMEN-S ×2 file where the campaign expects the shipped one."""
    weights.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(3)
    net = FMEN(preset_config("fmen-s", 2), deploy=True)
    path = weights / "fmen_s_x2.safetensors"
    save_safetensors(net, path)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _pack(tmp_path: Path, data: Path, unseen: Path, budget: int = 10**9) -> tuple[Path, dict]:
    kw = {"root": tmp_path / "runs", "seeds": tmp_path / "seeds", "weights_dir": tmp_path / "weights"}
    _shipped(tmp_path / "weights")
    dest = tmp_path / "pack"
    return dest, b.pack(RUN, dest, data=data, unseen=unseen, budget=budget, **kw)


def test_pack_carries_every_pixel_exactly(data: Path, unseen: Path, tmp_path: Path) -> None:
    dest, info = _pack(tmp_path, data, unseen)
    pool, held = split(data)
    assert info["images"] == len(pool) and info["images_left_out"] == 0
    assert info["run"] == RUN and info["start"].endswith("fmen_s_x2.safetensors")
    assert json.loads((dest / "pack.json").read_text()) == info
    assert (dest / "site" / "platformdirs" / "__init__.py").is_file()
    out = tmp_path / "unpacked"
    b.unpack_images(dest / "images", out)
    assert photos.complete(out / "photos")
    for name in photos.file_names():
        assert np.array_equal(_pixels(out / "photos" / name), _pixels(unseen / name))
    for path in [*pool, *held]:
        assert np.array_equal(_pixels(out / "data" / path.relative_to(data)), _pixels(path))
    assert [p.relative_to(out / "data") for p in split(out / "data")[1]] == [
        p.relative_to(data) for p in held
    ]


def test_pack_stops_at_its_budget_and_refuses_an_empty_pool(data: Path, unseen: Path, tmp_path: Path) -> None:
    _, full = _pack(tmp_path / "a", data, unseen)
    one_image = full["image_bytes"] * 3 // (2 * full["images"])
    dest, info = _pack(tmp_path / "b", data, unseen, budget=one_image)
    assert 1 <= info["images"] < full["images"]
    assert info["images"] + info["images_left_out"] == full["images"]
    held = {f"{p.relative_to(data)}.webp" for p in split(data)[1]}  # carried outside the budget
    carried = [
        p
        for p in (dest / "images" / "data").rglob("*.webp")
        if str(p.relative_to(dest / "images" / "data")) not in held
    ]
    assert len(carried) == info["images"]
    assert sum(p.stat().st_size for p in carried) == info["image_bytes"] <= one_image
    with pytest.raises(ValueError, match="no training image fits"):
        _pack(tmp_path / "c", data, unseen, budget=10)


def test_pack_needs_the_unseen_photographs(data: Path, unseen: Path, tmp_path: Path) -> None:
    (unseen / photos.MANIFEST).unlink()
    with pytest.raises(FileNotFoundError, match=r"python -m fmen_gui\.training photos"):
        _pack(tmp_path, data, unseen)
    with pytest.raises(ValueError, match="no run named"):
        b.find_run("fmen-s_x5")


def test_the_freshest_train_form_weights_start_the_burst(tmp_path: Path) -> None:
    """The run's best, else its seed, else the shipped file; weights only (the cycle starts at 0)."""
    run, root, seeds, weights = b.find_run(RUN), tmp_path / "runs", tmp_path / "seeds", tmp_path / "weights"
    _shipped(weights)
    state, origin = b.start_weights(run, root, seeds, weights)
    assert origin.endswith("fmen_s_x2.safetensors") and state["form"] == "deploy"
    assert state["init"].startswith(f"{origin} (sha256 ") and "lifted into the train form" in state["init"]
    train = FMEN(preset_config("fmen-s", 2), deploy=False).state_dict()
    seeds.mkdir()
    torch.save({"ema": train, "form": "train", "step": 900, "init": "the first file"}, seeds / f"{RUN}.pt")
    state, origin = b.start_weights(run, root, seeds, weights)
    assert origin == str(seeds / f"{RUN}.pt") and set(state) == {"ema", "form", "init"}
    # What the burst's record will say it started from: the seed's step and its run's origin.
    assert state["init"] == f"{origin} at step 900 of a run from the first file"
    (root / RUN).mkdir(parents=True)
    torch.save({"ema": train, "form": "deploy"}, root / RUN / "best.pt")  # another form: passed over
    assert b.start_weights(run, root, seeds, weights)[1] == origin
    torch.save({"ema": train, "form": "train", "step": 50}, root / RUN / "best.pt")
    assert b.start_weights(run, root, seeds, weights)[1] == str(root / RUN / "best.pt")


def test_a_burst_trains_a_sized_cycle_and_brings_back_small_weights(
    data: Path, unseen: Path, tmp_path: Path
) -> None:
    dest, _ = _pack(tmp_path, data, unseen)
    out = tmp_path / "out"
    settings = b.BurstSettings(
        batch=2, patch=12, lr=1e-3, device="cpu", probe_steps=3, val_times=2, end_margin_s=1
    )
    result = b.burst(dest, 0.25, out, settings)
    assert result["run"] == RUN and result["reason"] in ("finished", "deadline")
    assert result["steps"] > 1 + settings.probe_steps  # the sized cycle ran past the probe
    record = json.loads((out / "record.json").read_text())
    assert record["validated_on"] == "22 unseen photographs" and record["steps"] == result["steps"]
    assert record["burst"]["run"] == RUN and record["burst"]["steps_per_s"] > 0
    schedule = record["config"]["schedule"]
    assert schedule.startswith("l1:") and schedule.endswith("@12:0.001") and "," not in schedule
    log = (out / "train.log").read_text()
    assert "burst:" in log and "a cycle of" in log
    if result["improved"]:
        state = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
        assert set(state) == {"ema", "form", "init"} and form_of(out / "best.pt") == "train"
        # A run the campaign starts from these weights says what they came from.
        assert state["init"] == f"{record['config']['init']}, then a GPU burst of {result['steps']} steps"
        assert "start.pt" not in state["init"]
    else:
        assert not (out / "best.pt").exists()


def _returned(folder: Path, best_validation: float, improved: bool = True) -> Path:
    folder.mkdir(parents=True)
    torch.manual_seed(7)
    torch.save(
        {"ema": FMEN(preset_config("fmen-s", 2), deploy=False).state_dict(), "form": "train"},
        folder / "best.pt",
    )
    (folder / "record.json").write_text(json.dumps({"best_validation": best_validation, "steps": 40}))
    (folder / "train.log").write_text("burst\n")
    (folder / "burst.json").write_text(json.dumps({"run": RUN, "improved": improved, "steps": 40}))
    return folder


def test_an_import_re_seeds_the_run_only_when_the_burst_beat_it(
    data: Path, unseen: Path, tmp_path: Path
) -> None:
    bench = need(BENCHMARK)
    root, seeds, weights = tmp_path / "runs", tmp_path / "seeds", tmp_path / "weights"
    shipped = _shipped(weights).read_bytes()
    kw = {"root": root, "seeds": seeds, "weights_dir": weights, "data": data, "benchmarks": bench}
    said: list[str] = []
    # Nothing better than where it started: nothing filed.
    assert (
        b.import_burst(_returned(tmp_path / "r0", 30.0, improved=False), log=said.append, unseen=unseen, **kw)
        is None
    )
    assert "nothing to import" in said[-1] and not root.exists()
    # The CPU run is better: filed (and judged for export), the run goes on.
    (root / RUN).mkdir(parents=True)
    (root / RUN / "record.json").write_text(json.dumps({"best_validation": 99.0}))
    filed = b.import_burst(_returned(tmp_path / "r1", 20.0), log=said.append, unseen=unseen, **kw)
    assert filed is not None and filed.parent == root and filed.name.startswith(f"{RUN}.burst-")
    assert (filed / "best.pt").exists() and (root / RUN / "record.json").exists()
    assert not (seeds / f"{RUN}.pt").exists() and "it goes on" in said[-1]
    # It was judged against the shipped file on the photographs (a random network either way).
    judged = [s for s in said if "on 22 unseen photographs" in s]
    assert judged and (judged[0].startswith("kept") or "beats" in judged[0])
    if judged[0].startswith("kept"):
        assert (weights / "fmen_s_x2.safetensors").read_bytes() == shipped
    # The burst is better than the CPU run: the run is set aside and the burst seeds it.
    (root / RUN / "record.json").write_text(json.dumps({"best_validation": 1.0}))
    filed = b.import_burst(_returned(tmp_path / "r2", 20.0), log=said.append, unseen=unseen, **kw)
    assert filed is not None and not (root / RUN).exists()
    aside = [p for p in root.iterdir() if p.name.startswith(f"{RUN}.before-burst-")]
    assert len(aside) == 1 and (aside[0] / "record.json").exists()
    seed = seeds / f"{RUN}.pt"
    assert seed.read_bytes() == (filed / "best.pt").read_bytes() and form_of(seed) == "train"
    assert "step" not in torch.load(seed, map_location="cpu", weights_only=True)  # the schedule starts at 0
