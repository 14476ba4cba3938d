"""The trainer and the campaign: schedule, held-out slice, exact resume, EMA, stops, export.

Runs on a small synthetic training folder laid out like ``../shared/data/train`` (T91/ and
BSD200/ with the held-out names), so it needs no shared data except where Set5/Set14 are
measured at export.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmen_gui.engine import devices
from fmen_gui.training import campaign as camp
from fmen_gui.training import photos
from fmen_gui.training import schedule as sched
from fmen_gui.training.data import HOLDOUT, BatchStream, PatchSampler, make_pair, split, step_rng
from fmen_gui.training.degrade import PHOTO
from fmen_gui.training.export import export
from fmen_gui.training.trainer import UNRECORDED_INIT, TrainConfig, Trainer, data_description, evaluate
from fmen_gui.weights import registry
from fmen_gui.weights.files import sha256_file
from fmen_gui.weights.loading import load_weights
from tests.conftest import BENCHMARK, ROOT, need

TINY = sched.parse("l1:3@12:1e-3,l2:3@12:1e-4")
N_PHOTOS = len(photos.TRAINING_PHOTOS.file_names())  # the training photographs in a pool


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict = {"model": "fmen-s", "scale": 2, "data": data, "out": out, "schedule": TINY, "batch": 2}
    base.update(kw)
    base.setdefault("val_every", 2)
    return TrainConfig(**base)


def test_schedule_text_round_trips_and_rejects_nonsense() -> None:
    text = "l1:8000@32:0.0005,l2:6000@48:2e-05"
    assert sched.format_schedule(sched.parse(text)) == text
    for bad in ("l3:10@32:1e-4", "l1:0@32:1e-4", "l1:10@4:1e-4", "l1:10@32:2", "l1:10:32@1e-4", ""):
        with pytest.raises(ValueError, match="bad stage"):
            sched.parse(bad)


def test_schedule_restarts_each_stage_with_warmup_and_cosine() -> None:
    s = sched.parse("l1:1000@32:5e-4,l2:400@48:2e-5")
    assert sched.total_steps(s) == 1400
    assert sched.stage_at(s, 999) == (s[0], 999)
    assert sched.stage_at(s, 1000) == (s[1], 0)
    assert sched.stage_at(s, 5000) == (s[1], 399)  # past the end: the last step
    assert sched.lr_at(s, 0) == pytest.approx(5e-4 / sched.WARMUP)
    assert sched.lr_at(s, sched.WARMUP - 1) == pytest.approx(5e-4)
    assert sched.lr_at(s, 999) == pytest.approx(sched.MIN_LR, abs=1e-8)  # cosine to the floor
    assert sched.lr_at(s, 1000) < sched.lr_at(s, 1099)  # a restart warms up again
    assert sched.lr_at(s, 1099) == pytest.approx(2e-5)
    rates = [sched.lr_at(s, i) for i in range(sched.WARMUP, 1000)]
    assert all(a >= b for a, b in itertools.pairwise(rates))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_default_recipe_grows_patches_and_ends_in_l2(scale: int) -> None:
    s = sched.default_schedule("fmen-s", scale)
    patches = [st.patch for st in s]
    assert patches == sorted(patches) and patches[0] < patches[-1]
    assert s[-1].loss == "l2" and s[-1].lr < s[0].lr / 10
    assert {st.loss for st in s[:-1]} == {"l1"}


def test_resuming_is_exact_when_only_stages_not_yet_begun_change() -> None:
    old = sched.parse("l1:10@12:1e-3,l2:5@12:1e-4")
    longer = old + sched.parse("l1:8@16:5e-4,l2:4@16:1e-4")
    assert sched.resumes_exactly(old, longer, 15)  # finished: a next generation goes on
    assert sched.resumes_exactly(old, longer, 12)
    assert sched.resumes_exactly(old, sched.parse("l1:10@12:1e-3,l2:9@16:1e-5"), 10)  # L2 not begun
    assert not sched.resumes_exactly(old, sched.parse("l1:10@12:1e-3,l2:9@16:1e-5"), 11)
    assert not sched.resumes_exactly(old, sched.parse("l1:12@12:1e-3,l2:5@12:1e-4"), 3)  # its cosine
    assert sched.resumes_exactly(old, sched.parse("l1:12@12:1e-3"), 0)  # nothing begun yet
    assert not sched.resumes_exactly(old, sched.parse("l1:10@12:1e-3"), 12)  # the L2 stage is gone
    for step in range(1, 16):  # the rates and patches of the steps already trained are the same
        assert [sched.lr_at(longer, k) for k in range(step)] == [sched.lr_at(old, k) for k in range(step)]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_campaign_recipe_only_ever_grows_at_its_end(scale: int) -> None:
    """The first generation is the one the seeds trained under (its third cycle and L2 only for
    the runs that had begun them); the second trains larger patches and ends in L2."""
    p = {2: (48, 64), 3: (40, 48), 4: (40, 48)}[scale]
    two = f"l1:4000@{p[0]}:1e-4,l1:4000@{p[1]}:5e-5"
    first = sched.parse(f"{two},l1:4000@{p[1]}:5e-5,l2:3000@{p[1]}:1e-5")
    long, short = sched.finetune_schedule("fmen-s", scale, True), sched.finetune_schedule("fmen-s", scale)
    assert sched.resumes_exactly(first, long, sched.total_steps(first))
    assert sched.resumes_exactly(first, short, sched.total_steps(sched.parse(two)))
    assert not sched.resumes_exactly(first, short, sched.total_steps(sched.parse(two)) + 1)
    for recipe, begun in ((long, first), (short, sched.parse(two))):
        second = recipe[len(begun) :]
        assert second == short[2:] and second[-1].loss == "l2" and second[-1].lr < second[0].lr
        assert min(st.patch for st in second) > p[1]
        assert {st.loss for st in second[:-1]} == {"l1"}


@pytest.mark.parametrize("run", camp.RUNS, ids=lambda run: run.name)
def test_every_committed_seed_goes_on_exactly_under_its_recipe(run: camp.Run) -> None:
    """A recipe change that moved a committed run into another stage at its step would show
    here, not in a warning in a log on the next machine."""
    seed = torch.load(ROOT / "checkpoints" / f"{run.name}.pt", map_location="cpu", weights_only=True)
    assert sched.resumes_exactly(sched.parse(seed["schedule"]), camp.run_schedule(run), seed["step"])


def test_a_finished_run_goes_on_under_a_longer_schedule(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = Trainer(_cfg(data, out))
    assert done.train() == "finished" and done.finished
    longer = TINY + sched.parse("l1:2@16:5e-4,l2:2@16:1e-4")
    more = Trainer(_cfg(data, out, schedule=longer))
    assert more.step == 6 and not more.finished
    assert more.train() == "finished" and more.step == 10
    log = (out / "train.log").read_text()
    assert "schedule goes on from step 6 of 6 to 10: the stages begun are unchanged" in log
    assert "warning: the schedule changed" not in log
    Trainer(_cfg(data, out, schedule=sched.parse("l1:5@12:1e-3,l2:5@12:1e-4"))).train()
    assert "warning: the schedule changed in a stage begun before step 10" in (out / "train.log").read_text()


def test_holdout_never_enters_the_training_pool(data: Path) -> None:
    pool, val = split(data)
    assert [p.relative_to(data).as_posix() for p in val] == sorted(HOLDOUT)
    assert not {p.resolve() for p in pool} & {p.resolve() for p in val}
    assert len(pool) == 5


def test_the_real_holdout_is_ten_bsd200_images() -> None:
    train = need(ROOT.parent / "shared" / "data" / "train")
    pool, val = split(train)
    assert len(val) == 10 and all(p.parent.name == "BSD200" for p in val)
    assert len(pool) == 281


def test_missing_validation_images_are_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "T91").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "T91" / "a.png")
    with pytest.raises(SystemExit, match="validation images missing"):
        split(tmp_path)


def test_patch_sampler_pairs_align_and_skip_small_images(data: Path) -> None:
    pool, _ = split(data)
    sampler = PatchSampler(pool, 2, np.random.default_rng(0))
    lr, hr = sampler.batch(6, 12)
    assert lr.shape == (6, 12, 12, 3) and hr.shape == (6, 24, 24, 3)
    # Each HR patch reduces to (nearly) its LR patch: they are the same place, same transform.
    for a, b in zip(lr, hr, strict=True):
        down = np.asarray(Image.fromarray(b).resize((12, 12), Image.Resampling.BICUBIC)).astype(int)
        assert np.abs(down[2:-2, 2:-2] - a[2:-2, 2:-2].astype(int)).mean() < 12
    assert len(sampler.eligible(24)) == 5 and len(sampler.eligible(25)) == 0


@pytest.mark.parametrize("degradation", [None, PHOTO], ids=["clean", "photo"])
def test_batches_made_ahead_by_workers_are_the_batches_of_their_steps(
    data: Path, degradation: object
) -> None:
    """A batch is a function of (seed, step) alone, whichever process makes it and when."""
    sampler = PatchSampler(split(data)[0], 2, np.random.default_rng(0), degradation)  # type: ignore[arg-type]

    def patch_at(k: int) -> int:
        return 12 if k < 7 else 16

    stream = BatchStream(sampler, 3, patch_at, seed=4, start=5, workers=2)
    try:
        ahead = [stream.next() for _ in range(4)]
    finally:
        stream.close()
    for k, (lr, hr) in enumerate(ahead, start=5):
        here = sampler.batch(3, patch_at(k), step_rng(4, k))
        assert np.array_equal(lr, here[0]) and np.array_equal(hr, here[1]), k
    assert lr.shape == (3, 16, 16, 3)
    assert not np.array_equal(ahead[0][1], ahead[1][1])  # steps draw differently


def test_a_run_with_batch_workers_trains_the_same_weights(data: Path, tmp_path: Path) -> None:
    alone = Trainer(_cfg(data, tmp_path / "alone", val_every=100))
    helped = Trainer(_cfg(data, tmp_path / "helped", val_every=100, workers=2))
    assert alone.train() == helped.train() == "finished"
    assert helped._stream is None  # the workers end with the call
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, helped.model.state_dict()[name]), name


def _weights(t: Trainer) -> dict[str, torch.Tensor]:
    return {
        **{f"m.{k}": v for k, v in t.model.state_dict().items()},
        **{f"e.{k}": v for k, v in t.ema.state_dict().items()},
    }


def test_a_compiled_run_trains_what_the_plain_one_does(data: Path, tmp_path: Path) -> None:
    """The same first step's loss (up to the fused kernels' rounding) and the same weights' shapes;
    a compiler that fails leaves the run training, uncompiled, with a line in its log."""
    plain = Trainer(_cfg(data, tmp_path / "plain"))
    compiled = Trainer(_cfg(data, tmp_path / "compiled", compile=True))
    assert compiled._forward is not compiled.model
    a, b = plain.train_step(), compiled.train_step()
    assert b == pytest.approx(a, rel=2e-2)
    assert compiled.train() == "finished"
    assert "torch.compile failed" not in (tmp_path / "compiled" / "train.log").read_text()

    broken = Trainer(_cfg(data, tmp_path / "broken", compile=True))

    def no_compiler(_x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")

    broken._forward = no_compiler
    assert broken.train() == "finished" and broken._forward is broken.model
    log = (tmp_path / "broken" / "train.log").read_text()
    assert (
        log.count("torch.compile failed (RuntimeError: InvalidCxxCompiler: No working C++ compiler found)")
        == 1
    )


@pytest.mark.parametrize(("form", "compiled"), [("train", False), ("deploy", False), ("train", True)])
def test_resume_is_exact_and_the_ema_is_what_gets_kept(
    form: str, compiled: bool, data: Path, tmp_path: Path
) -> None:
    """Also through torch.compile, as the campaign trains: the compiled kernels of a resumed
    run are those of the uninterrupted one."""
    torch.set_num_threads(1)  # the same kernels in both runs
    whole = Trainer(_cfg(data, tmp_path / "whole", form=form, compile=compiled))
    assert whole.train() == "finished"

    Trainer(_cfg(data, tmp_path / "split", form=form, compile=compiled)).train(
        max_steps=2
    )  # stops mid-stage...
    first = Trainer(_cfg(data, tmp_path / "split", form=form, compile=compiled))
    assert first.step == 2
    assert first.train(max_steps=2) == "steps"  # ...and across the L1 → L2 boundary
    resumed = Trainer(_cfg(data, tmp_path / "split", form=form, compile=compiled))
    assert resumed.step == 4 and resumed.train() == "finished"

    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert whole.history == resumed.history and len(whole.history) == 3

    # The EMA trails the raw weights, and best.pt holds the EMA of the best validation.
    assert any(not torch.equal(v, whole.ema.state_dict()[k]) for k, v in whole.model.state_dict().items())
    best = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)
    assert set(best) >= {"ema", "step", "best"} and "model" not in best
    assert best["best"] == pytest.approx(max(v for _, v in whole.history), abs=1e-3)
    record = json.loads((tmp_path / "whole" / "record.json").read_text())
    assert record["steps"] == 6 and record["config"]["schedule"] == sched.format_schedule(TINY)
    assert record["amp"] == ("bfloat16" if devices.cpu_bf16_native() else "fp32")


def test_the_deploy_form_continues_a_weights_file_and_exports_what_it_trained(
    data: Path, tmp_path: Path
) -> None:
    """The campaign's way: the shipped network, trained as it ships, exported without folding."""
    bench = need(BENCHMARK)
    shipped = ROOT / "weights" / "fmen_s_x2.safetensors"
    t = Trainer(_cfg(data, tmp_path / "run", form="deploy", init=shipped))
    start = evaluate(load_weights(shipped)[0], [make_pair(p, 2) for p in split(data)[1]], 2)
    assert t.step == 0 and t.validate() == pytest.approx(start, abs=1e-9)  # nothing lost at the start
    assert t.train() == "finished"
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["form"] == "deploy"
    weights = tmp_path / "weights"
    weights.mkdir()
    assert export("fmen-s", 2, tmp_path / "run", weights_dir=weights, data=data, benchmarks=bench)
    exported, _desc = load_weights(weights / "fmen_s_x2.safetensors")
    for name, value in exported.state_dict().items():
        assert torch.equal(value, best["ema"][name]), name
    # A run folder of the other form is a clear error, not a shape mismatch deep in torch.
    with pytest.raises(ValueError, match="deploy-form run"):
        Trainer(_cfg(data, tmp_path / "run", form="train"))


def test_a_run_keeps_saying_what_it_started_from(data: Path, tmp_path: Path) -> None:
    """The manifest's "init" survives a resume, a seed and a new run continued from the seed
    (shipped files are replaced by exports: the digest says which weights a run started from)."""
    shipped = ROOT / "weights" / "fmen_s_x2.safetensors"
    t = Trainer(_cfg(data, tmp_path / "run", init=shipped))
    digest = sha256_file(shipped)[:12]
    assert t.origin == f"{shipped} (sha256 {digest}, lifted into the train form)"
    origin = t.origin
    assert t.train() == "finished"
    assert t.record()["config"]["init"] == origin
    assert Trainer(_cfg(data, tmp_path / "run")).origin == origin  # resumed
    seed = camp.save_seed(t, tmp_path / "seed.pt")
    continued = Trainer(_cfg(data, tmp_path / "run2", init=seed))
    assert continued.step == 6 and continued.origin == origin
    deploy = Trainer(_cfg(data, tmp_path / "run3", init=shipped, form="deploy"))
    assert "lifted" not in deploy.origin
    # A run saved before runs kept their origin says so rather than guess.
    last = tmp_path / "run" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["init"]
    torch.save(state, last)
    assert Trainer(_cfg(data, tmp_path / "run")).origin == UNRECORDED_INIT


def test_sigterm_stops_after_the_step_with_everything_saved(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fmen_gui.training", "train", "--scale", "2", "--data", str(data)]
    cmd += ["--out", str(out), "--schedule", "l1:100000@12:1e-4", "--batch", "1", "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # wait until it trains (20 steps logged)
        lines.append(line)
        if "step 20/" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "stopped (signal SIGTERM)" in rest  # named, so that a surprise stop can be traced
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] >= 20 and "ema" in state and "opt" in state
    assert not list(out.glob("*.tmp"))


def test_deadline_stops_the_run(data: Path, tmp_path: Path) -> None:
    trainer = Trainer(
        _cfg(data, tmp_path / "r", schedule=sched.parse("l1:100000@12:1e-4"), deadline=time.time())
    )
    assert trainer.train() == "deadline" and trainer.step == 1
    assert (tmp_path / "r" / "last.pt").exists()


def test_export_only_if_better_judges_on_the_validation_slice(data: Path, tmp_path: Path) -> None:
    bench = need(BENCHMARK)
    weights = tmp_path / "weights"
    weights.mkdir()
    Trainer(_cfg(data, tmp_path / "run")).train()
    # An empty weights folder: the run is exported, measured on the slice and Set5/Set14.
    assert export("fmen-s", 2, tmp_path / "run", weights_dir=weights, data=data, benchmarks=bench)
    entry = json.loads((weights / "manifest.json").read_text())["weights"][0]
    assert entry["file"] == "fmen_s_x2.safetensors" and set(entry["psnr"]) == {"Set5", "Set14"}
    assert entry["training"]["validation"]["images"] == list(HOLDOUT)
    assert entry["training"]["steps_at_export"] == 6
    # The project's shipped ×2 model is far better than six steps: it is kept, byte for byte.
    shutil.copy(ROOT / "weights" / "fmen_s_x2.safetensors", weights / "fmen_s_x2.safetensors")
    before = (weights / "fmen_s_x2.safetensors").read_bytes()
    said: list[str] = []
    changed = export(
        "fmen-s",
        2,
        tmp_path / "run",
        weights_dir=weights,
        data=data,
        benchmarks=bench,
        only_if_better=True,
        log=said.append,
    )
    assert not changed and said[0].startswith("kept")
    assert (weights / "fmen_s_x2.safetensors").read_bytes() == before


def test_export_is_judged_on_the_unseen_photographs_where_fetched(
    data: Path, unseen: Path, tmp_path: Path
) -> None:
    """Neither network trained on them: the shipped file's edge on the slice does not count."""
    bench = need(BENCHMARK)
    weights = tmp_path / "weights"
    weights.mkdir()
    Trainer(_cfg(data, tmp_path / "run")).train()
    kw = {"weights_dir": weights, "data": data, "benchmarks": bench, "unseen": unseen}
    assert export("fmen-s", 2, tmp_path / "run", only_if_better=True, **kw)
    judged = json.loads((weights / "manifest.json").read_text())["weights"][0]["training"]["validation"]
    assert judged["on"] == "22 unseen photographs" and "rival" not in judged
    assert judged["images"] == photos.file_names() and judged["conditions"] == ["clean"]
    assert judged["psnr_by_condition"]["clean"] == judged["psnr"]
    shutil.copy(ROOT / "weights" / "fmen_s_x2.safetensors", weights / "fmen_s_x2.safetensors")
    said: list[str] = []
    assert not export("fmen-s", 2, tmp_path / "run", only_if_better=True, log=said.append, **kw)
    assert said[0].startswith("kept") and "on 22 unseen photographs" in said[0]
    # Without a complete set it falls back to the slice.
    (unseen / photos.MANIFEST).unlink()
    said.clear()
    assert not export("fmen-s", 2, tmp_path / "run", only_if_better=True, log=said.append, **kw)
    assert "on the validation slice" in said[0]


def test_a_run_moved_to_other_validation_images_starts_its_curve_again(
    data: Path, unseen: Path, tmp_path: Path
) -> None:
    """Scores on different images do not compare: the best and the curve restart, the weights go on."""
    plan = sched.parse("l1:4@12:1e-4,l2:4@12:1e-5")
    first = Trainer(_cfg(data, tmp_path / "r", schedule=plan))
    first.train(max_steps=4)
    assert first.val_on == photos.SLICE and [s for s, _ in first.history] == [2, 4]
    moved = Trainer(_cfg(data, tmp_path / "r", schedule=plan, unseen=unseen))
    assert moved.step == 4 and moved.val_on == "22 unseen photographs"
    assert moved.history == [] and moved.best == -math.inf
    said = (tmp_path / "r" / "train.log").read_text()
    assert "validation moves from the validation slice to 22 unseen photographs" in said
    assert moved.train() == "finished" and [s for s, _ in moved.history] == [6, 8]
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert state["val_on"] == "22 unseen photographs" and [s for s, _ in state["history_by"]] == [6, 8]
    record = json.loads((tmp_path / "r" / "record.json").read_text())
    assert record["validated_on"] == "22 unseen photographs"
    # Where the same images are found again, nothing restarts.
    again = Trainer(_cfg(data, tmp_path / "r", schedule=plan, unseen=unseen))
    assert [s for s, _ in again.history] == [6, 8] and again.best == moved.best


def test_a_first_photo_file_must_clearly_beat_the_clean_network(data: Path, tmp_path: Path) -> None:
    """What Auto gives every compressed JPEG is not replaced by a rounding error's gain."""
    bench = need(BENCHMARK)
    weights = tmp_path / "weights"
    weights.mkdir()
    clean = weights / "fmen_s_x2.safetensors"
    shutil.copy(ROOT / "weights" / clean.name, clean)
    cfg = _cfg(data, tmp_path / "photo", form="deploy", init=clean, degradation=PHOTO)
    cfg.schedule = sched.parse("l1:2@12:1e-6")
    Trainer(cfg).train()
    said: list[str] = []
    kw = {"kind": "photo", "weights_dir": weights, "data": data, "benchmarks": bench, "log": said.append}
    assert not export("fmen-s", 2, tmp_path / "photo", only_if_better=True, **kw)
    assert "fmen_s_x2_photo.safetensors not written" in said[0] and "0.30 dB above" in said[0]
    assert not (weights / "fmen_s_x2_photo.safetensors").exists()


def test_campaign_shares_the_cpu_resumes_saves_seeds_and_exports(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = need(BENCHMARK)
    runs = (camp.Run("fmen-s", 4, 2.0), camp.Run("fmen-s", 2, 1.0), camp.Run("fmen-s", 2, 1.0, "photo"))
    root, seeds, weights = tmp_path / "runs", tmp_path / "seeds", tmp_path / "weights"
    weights.mkdir()
    said: list[str] = []
    camp.campaign(
        time.time() + 3600,
        runs=runs,
        root=root,
        seeds=seeds,
        weights_dir=weights,
        data=data,
        benchmarks=bench,
        schedules=lambda run: TINY,
        threads=1,
        photo_margin=0.0,  # six steps gain little; the margin has its own test
        compile_steps=False,  # three compilations for six steps each; the resume below compiles
        log=said.append,
    )
    assert "campaign: every run has finished its schedule" in said
    assert sorted(p.name for p in seeds.iterdir()) == ["fmen-s_x2.pt", "fmen-s_x2_photo.pt", "fmen-s_x4.pt"]
    seed = torch.load(seeds / "fmen-s_x4.pt", weights_only=True)
    assert seed["step"] == 6 and "ema" in seed and "opt" not in seed
    entries = json.loads((weights / "manifest.json").read_text())["weights"]
    assert sorted((e["file"], e["kind"]) for e in entries) == [
        ("fmen_s_x2.safetensors", "clean"),
        ("fmen_s_x2_photo.safetensors", "photo"),
        ("fmen_s_x4.safetensors", "clean"),
    ]
    # The photo run started from the clean network of its size and scale, on degraded inputs.
    photo_log = (root / "fmen-s_x2_photo" / "train.log").read_text()
    assert f"initialised from {weights / 'fmen_s_x2.safetensors'}" in photo_log
    photo = next(e for e in entries if e["kind"] == "photo")
    assert photo["training"]["degradation"]["jpeg_p"] > 0
    # The app keeps the clean network as the default; the photo one is asked for by kind.
    monkeypatch.setenv(registry.ENV_WEIGHTS_DIR, str(weights))
    assert registry.find_weights("fmen-s", 2).path.name == "fmen_s_x2.safetensors"
    assert registry.find_weights("fmen-s", 2, "photo").path.name == "fmen_s_x2_photo.safetensors"
    # A fresh machine: no run folders, the committed seed carries the ×4 run on at its step;
    # a run without a seed starts from the shipped file of its kind (the photo file, lifted).
    shutil.rmtree(root)
    (seeds / "fmen-s_x2_photo.pt").unlink()
    longer = sched.parse("l1:3@12:1e-3,l2:5@12:1e-4")
    camp.campaign(
        time.time() + 3600,
        runs=(runs[0], runs[2]),
        root=root,
        seeds=seeds,
        weights_dir=weights,
        data=data,
        benchmarks=bench,
        schedules=lambda run: longer,
        threads=1,
        log=said.append,
    )
    log = (root / "fmen-s_x4" / "train.log").read_text()
    assert "initialised from" in log and "at step 6" in log
    assert "torch.compile failed" not in log  # the campaign's chunks train compiled
    assert json.loads((root / "fmen-s_x4" / "record.json").read_text())["steps"] == 8
    photo_log = (root / "fmen-s_x2_photo" / "train.log").read_text()
    assert (
        f"initialised from {weights / 'fmen_s_x2_photo.safetensors'}" in photo_log
        and "at step 0" in photo_log
    )


def test_campaign_gives_the_next_chunk_to_the_run_furthest_behind(tmp_path: Path) -> None:
    runs = (camp.Run("fmen-s", 4, 4.0), camp.Run("fmen", 4, 2.0), camp.Run("fmen-s", 2, 1.0))
    for name, steps, minutes in (("fmen-s_x4", 100, 80.0), ("fmen_x4", 10, 30.0), ("fmen-s_x2", 6, 1.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "record.json").write_text(json.dumps({"steps": steps, "wall_minutes": minutes}))
    pick = camp.next_run(
        runs,
        tmp_path,
        set(),
        lambda run: TINY if run.scale == 2 else sched.default_schedule(run.model, run.scale),
    )
    assert pick == runs[1]  # fmen-s ×2 has finished its (tiny) schedule; fmen ×4 is furthest behind
    assert camp.next_run(runs, tmp_path, {"fmen_x4"}) == runs[2]


def test_on_a_fresh_machine_the_next_chunk_counts_what_the_seeds_had(tmp_path: Path) -> None:
    # A new clone has no runs/, only the committed seeds: their CPU time still counts, so the
    # chunk goes to the run furthest behind its share, not to the first in the list.
    runs = (camp.Run("fmen-s", 4, 3.0, "photo"), camp.Run("fmen-s", 4, 4.0), camp.Run("fmen", 4, 2.0))
    root, seeds = tmp_path / "runs", tmp_path / "checkpoints"
    seeds.mkdir()
    for name, step, minutes in (
        ("fmen-s_x4_photo", 7000, 120.0),
        ("fmen-s_x4", 5000, 74.3),
        ("fmen_x4", 9555, 259.7),
    ):
        torch.save({"step": step, "wall": minutes * 60, "ema": {}, "form": "train"}, seeds / f"{name}.pt")
    finetune = camp.run_schedule
    assert camp.next_run(runs, root, set(), finetune) == runs[0]  # without seeds: list order
    assert camp.next_run(runs, root, set(), finetune, seeds) == runs[1]  # 74.3 / 4 < 120 / 3 < 259.7 / 2
    (seeds / "fmen-s_x4.pt").write_bytes(b"not a checkpoint")  # unreadable: counts as unstarted
    assert camp.next_run(runs, root, set(), finetune, seeds) == runs[1]
    (root / "fmen-s_x4").mkdir(parents=True)  # a run folder's record outranks its seed
    (root / "fmen-s_x4" / "record.json").write_text(json.dumps({"steps": 5100, "wall_minutes": 900.0}))
    assert camp.next_run(runs, root, set(), finetune, seeds) == runs[0]  # 120 / 3 < 259.7 / 2


def test_deadline_parsing() -> None:
    now = time.time()
    assert camp.parse_deadline(None, 1.5) == pytest.approx(now + 5400, abs=5)
    until = camp.parse_deadline("00:00", None)
    assert now < until <= now + 86400
    for bad in ("25:99", "noon"):
        with pytest.raises(ValueError):
            camp.parse_deadline(bad, None)
    with pytest.raises(ValueError):
        camp.parse_deadline(None, None)


CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni {extra}\n"


@pytest.mark.parametrize(
    ("extra", "native"),
    [("", False), ("avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512bw", False)],
)
def test_bf16_is_native_only_with_the_cpu_flags(extra: str, native: bool) -> None:
    flags = devices.cpu_flags(CPUINFO.format(extra=extra))
    assert "avx512f" in flags
    assert bool(flags & devices.BF16_CPU_FLAGS) is native


def test_this_cpu_offers_bf16_only_where_native() -> None:
    native = devices.cpu_bf16_native()
    assert native == bool(devices.cpu_flags() & devices.BF16_CPU_FLAGS)
    assert ("bf16" in devices.precision_choices("cpu")) is native


def test_training_cli_rejects_a_bad_schedule() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fmen_gui.training", "train", "--schedule", "l1:10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert proc.returncode == 2 and "bad stage" in proc.stderr


def test_curves_are_drawn_from_the_runs_histories(data: Path, tmp_path: Path) -> None:
    from fmen_gui.training.curves import condition_histories, draw, histories

    Trainer(_cfg(data, tmp_path / "runs" / "fmen-s_x2")).train()
    shutil.copytree(tmp_path / "runs" / "fmen-s_x2", tmp_path / "runs" / "fmen-s_x2.deploy-form")  # set aside
    curves = histories(tmp_path / "runs")
    assert list(curves) == ["fmen-s_x2"] and [s for s, _ in curves["fmen-s_x2"]] == [2, 4, 6]
    png = tmp_path / "docs" / "curves.png"
    draw(curves, png, {"fmen-s_x2": (30.0, "shipped fmen_s_x2")})
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert im.size == (900, 260) and (pixels != 255).any(axis=2).mean() > 0.01
    # A photo run (validated under four conditions) gets a second panel: change per condition.
    cfg = _cfg(data, tmp_path / "runs" / "fmen-s_x2_photo", degradation=PHOTO)
    Trainer(cfg).train()
    by = condition_histories(tmp_path / "runs")
    assert list(by) == ["fmen-s_x2_photo"] and set(by["fmen-s_x2_photo"]) == {
        "clean",
        "jpeg75",
        "jpeg50",
        "noise5",
    }
    assert [s for s, _ in by["fmen-s_x2_photo"]["jpeg75"]] == [2, 4, 6]
    draw(histories(tmp_path / "runs"), png, by_condition=by)
    with Image.open(png) as im:
        assert im.size == (900, 3 * 260)
    # On a fresh clone a run without a folder is drawn from its committed seed; a folder's
    # last.pt outranks a seed of the same run.
    seeds = tmp_path / "checkpoints"
    trainer = Trainer(_cfg(data, tmp_path / "runs" / "fmen-s_x2"))
    camp.save_seed(trainer, seeds / "fmen-s_x2_photo.pt")  # history [2, 4, 6], clean only
    torch.save({"history": [(1, 1.0)]}, seeds / "fmen-s_x2.pt")
    shutil.rmtree(tmp_path / "runs" / "fmen-s_x2_photo")
    assert list(histories(tmp_path / "runs")) == ["fmen-s_x2"]
    curves = histories(tmp_path / "runs", seeds)
    assert list(curves) == ["fmen-s_x2", "fmen-s_x2_photo"] and curves["fmen-s_x2"][0][0] == 2
    assert [s for s, _ in curves["fmen-s_x2_photo"]] == [2, 4, 6]
    with pytest.raises(SystemExit, match="no validation history"):
        draw({}, png)


def test_a_run_that_cannot_resume_here_is_set_aside_not_deleted(tmp_path: Path) -> None:
    base, with_photos = data_description(False), data_description(True)
    folder = tmp_path / "fmen-s_x4"
    folder.mkdir()
    torch.save({"form": "deploy", "step": 5}, folder / "last.pt")
    assert camp.retire_unresumable(folder, "deploy", base) is None and folder.exists()
    moved = camp.retire_unresumable(folder, "train", base)
    assert moved == tmp_path / "fmen-s_x4.deploy-form" and not folder.exists()
    assert torch.load(moved / "last.pt", weights_only=True)["step"] == 5
    folder.mkdir()
    torch.save({"form": "deploy"}, folder / "last.pt")
    assert camp.retire_unresumable(folder, "train", base) == tmp_path / "fmen-s_x4.deploy-form-2"
    assert camp.retire_unresumable(tmp_path / "nothing-yet", "train", base) is None
    # The same form on another pool: a run without "data" (older runs) trained on the 281 images.
    folder.mkdir()
    torch.save({"form": "train", "step": 7}, folder / "last.pt")
    assert camp.retire_unresumable(folder, "train", base) is None
    assert camp.retire_unresumable(folder, "train", with_photos) == tmp_path / "fmen-s_x4.other-pool"
    folder.mkdir()
    torch.save({"form": "train", "data": with_photos}, folder / "last.pt")
    assert camp.retire_unresumable(folder, "train", with_photos) is None


def test_the_campaign_trains_on_the_photographs_going_on_from_the_seed(data: Path, tmp_path: Path) -> None:
    """A run folder on the 281 images is set aside; the run goes on from its seed's step with
    the photographs in its pool, and its seed and manifest entry say so."""
    bench = need(BENCHMARK)
    extra = _training_photos(tmp_path / "extra")
    root, seeds, weights = tmp_path / "runs", tmp_path / "seeds", tmp_path / "weights"
    weights.mkdir()
    run = camp.Run("fmen-s", 2, 1.0)
    kw: dict = {"runs": (run,), "root": root, "seeds": seeds, "weights_dir": weights, "data": data}
    kw |= {"benchmarks": bench, "threads": 1, "compile_steps": False, "log": [].append}
    first = sched.parse("l1:3@12:1e-3")
    camp.campaign(time.time() + 3600, schedules=lambda run: first, **kw)
    assert torch.load(seeds / "fmen-s_x2.pt", weights_only=True)["data"] == data_description(False)
    said: list[str] = []
    kw["log"] = said.append
    camp.campaign(time.time() + 3600, schedules=lambda run: TINY, train_photos=extra, **kw)
    assert any("kept as" in line and "fmen-s_x2.other-pool" in line for line in said)
    log = (root / "fmen-s_x2" / "train.log").read_text()
    assert "at step 3" in log and f"train images={len(split(data)[0]) + N_PHOTOS}" in log
    seed = torch.load(seeds / "fmen-s_x2.pt", weights_only=True)
    assert seed["step"] == 6 and seed["data"] == data_description(True)
    entry = json.loads((weights / "manifest.json").read_text())["weights"][0]
    assert f"{N_PHOTOS} training photographs" in json.dumps(entry)


def _training_photos(folder: Path) -> Path:
    """Stand-ins for the fetched training photographs: each larger than all the classic images."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    for name in photos.TRAINING_PHOTOS.file_names():
        small = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
        Image.fromarray(small).resize((144, 96), Image.Resampling.BICUBIC).save(folder / name)
    (folder / photos.MANIFEST).write_text("{}")
    return folder


def test_patches_are_drawn_by_area_only_where_asked(tmp_path: Path) -> None:
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.new("RGB", (200, 200), "red").save(big)  # LR 100×100: 89² patch starts of 12 px
    Image.new("RGB", (40, 40), "blue").save(small)  # LR 20×20: 9²
    for by_area, share in ((False, 0.5), (True, 89**2 / (89**2 + 9**2))):
        sampler = PatchSampler([big, small], 2, np.random.default_rng(0), by_area=by_area)
        draws = [sampler.draw(12, np.random.default_rng(i)) for i in range(2000)]
        assert draws.count(0) / len(draws) == pytest.approx(share, abs=0.03)
        assert sampler.draw(21, np.random.default_rng(0)) == 0  # too small for the other: never drawn


def test_a_run_with_the_training_photographs_says_so_and_resumes_only_on_them(
    data: Path, tmp_path: Path
) -> None:
    extra = _training_photos(tmp_path / "extra")
    t = Trainer(_cfg(data, tmp_path / "run", train_photos=extra))
    assert len(t.sampler.pairs) == len(split(data)[0]) + N_PHOTOS and t.sampler.by_area
    t.train(max_steps=2)
    said = json.loads((tmp_path / "run" / "record.json").read_text())["config"]["data"]
    assert f"{N_PHOTOS} training photographs" in said and "CC-BY-4.0" in said
    # A run's batches are a function of its pool: it resumes on the same images or not at all.
    with pytest.raises(
        ValueError, match=r"was trained on .* training photographs \(.*\), not T91 [^(]*: move"
    ):
        Trainer(_cfg(data, tmp_path / "run"))
    assert Trainer(_cfg(data, tmp_path / "run", train_photos=extra)).step == 2
    Trainer(_cfg(data, tmp_path / "plain")).train(max_steps=2)
    with pytest.raises(ValueError, match=r"was trained on T91 .* images, not"):
        Trainer(_cfg(data, tmp_path / "plain", train_photos=extra))
    with pytest.raises(FileNotFoundError, match="photos --training"):
        Trainer(_cfg(data, tmp_path / "none", train_photos=tmp_path / "missing"))


def test_the_cli_fetches_the_training_photographs_and_trains_on_them(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fmen_gui.training import __main__ as cli

    extra = _training_photos(tmp_path / "extra")
    asked: list[object] = []

    def fetch(folder: Path | None = None, download: object = None, collection: object = None) -> Path:
        asked.append(collection)
        return extra

    monkeypatch.setattr(photos, "fetch", fetch)
    cli.main(["photos", "--training"])
    assert (
        asked == [photos.TRAINING_PHOTOS]
        and f"{N_PHOTOS} training photographs in {extra}" in capsys.readouterr().out
    )
    out = tmp_path / "run"
    run = ["train", "--scale", "2", "--data", str(data), "--out", str(out), "--schedule", "l1:2@12:1e-3"]
    cli.main([*run, "--batch", "2", "--val-every", "2", "--train-photos", "--unseen", str(tmp_path / "none")])
    assert (
        f"{N_PHOTOS} training photographs" in json.loads((out / "record.json").read_text())["config"]["data"]
    )
