"""Train FMEN / FMEN-S; validate and keep an EMA of the weights.

Two forms can be trained (``TrainConfig.form``):

- ``"train"``: the paper's over-parameterised blocks (RRRB expansions, BatchNorm in the
  HFABs), folded into the deploy form at validation and export. The paper's recipe for a
  network trained from scratch.
- ``"deploy"``: the plain 3×3 network that ships, trained directly, starting from weights
  that already exist (the shipped file). One step costs a third of a train-form step on a
  CPU (0.70 s against 2.22 s, FMEN-S ×4, batch 16, 32-px patches, 2-core EPYC), and a
  deploy-form file cannot be lifted back into the train form exactly (the BatchNorms
  normalise by batch statistics while training), so continuing the shipped networks is
  done in this form. On the CPU time this project has, three times the steps count for
  more than the over-parameterisation does.

Built for a long campaign on idle CPUs, resumed many times:

- the state of a run is one file, ``last.pt`` (model, EMA, optimiser, step, every RNG,
  best validation), written atomically every ``save_every`` steps and when stopped; a
  resumed run continues exactly where an uninterrupted one would have been;
- the exponential moving average of the weights (decay 0.999) is what gets validated and
  exported: on small batches it is worth a few tenths of a dB over the raw weights;
- checkpoints are chosen on images the run never trains on, never on Set5/Set14: the unseen
  photographs of :mod:`~fmen_gui.training.photos` where fetched, else
  :data:`~fmen_gui.training.data.HOLDOUT`; a run that moves between them starts its curve
  and its best again;
- fp32 on CPUs without bf16 in hardware (emulated bf16 is several times slower), bf16
  autocast where it is native; on CUDA bf16 autocast where the GPU has it, else fp16 with a
  grad scaler (a GPU burst, :mod:`~fmen_gui.training.burst`);
- SIGTERM/SIGINT and a wall-clock deadline end the run after the current step, saved;
- the train form's RRRBs run merged (:func:`~fmen_gui.arch.fmen.merge_for_training`): one
  3×3 convolution whose kernel is computed from the block's weights at each step, the same
  function and gradients. On a 2-core AVX2 AMD EPYC, fp32, batch 16, 64-px patches ×2:
  FMEN-S 0.21 → 0.56 steps/s, FMEN 0.10 → 0.35;
- ``TrainConfig.compile``: the training forward and backward through ``torch.compile``
  (Inductor fuses the BatchNorms, additions and activations around the convolutions). On
  the campaign's 2-core bf16 CPU, batch 16, 48-px patches, train form: FMEN-S ×4 15 % faster
  (1.40 → 1.61 steps/s), FMEN ×4 9 % (0.560 → 0.612), for about a minute of compiling per
  start, which a 40-minute chunk repays (about 7 % more steps). A run that cannot compile
  (no C compiler, an unsupported operator) trains uncompiled and says so in its log.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fmen_gui.arch.fmen import FMEN, merge_for_training, preset_config
from fmen_gui.arch.reparam import lift, reparameterize
from fmen_gui.engine.backends import select_backend
from fmen_gui.engine.devices import cpu_bf16_native
from fmen_gui.metrics import psnr_y
from fmen_gui.training import schedule as sched
from fmen_gui.training.data import BatchStream, Pair, PatchSampler, condition_sets, split, step_rng
from fmen_gui.training.degrade import Degradation
from fmen_gui.training.photos import SLICE, TRAINING_PHOTOS, training_photos, validation_images

EMA_DECAY = 0.999
DATA = Path("../shared/data/train")
FORMS = ("train", "deploy")
# What a run started from, as the manifest records it (``Trainer.origin``).
IDENTITY_INIT = "identity (nearest-neighbour) initialisation"
UNRECORDED_INIT = "not recorded (a run saved before runs kept their origin)"


@dataclass
class TrainConfig:
    model: str = "fmen-s"
    scale: int = 4
    data: Path = DATA
    out: Path = Path("runs/fmen-s_x4")
    schedule: sched.Schedule = field(default_factory=lambda: sched.default_schedule("fmen-s", 4))
    batch: int = 16
    ema_decay: float = EMA_DECAY
    val_every: int = 250
    save_every: int = 50
    threads: int = 0  # 0 = torch default
    device: str = "auto"
    init: Path | None = None  # a checkpoint or weights file whose matching tensors start a new run
    form: str = "train"  # which form of the network is trained (see the module docstring)
    seed: int = 0
    deadline: float = 0.0  # time.time() after which the run saves and stops; 0 = none
    degradation: Degradation | None = None  # the photo models' inputs; None = clean bicubic
    unseen: Path | None = None  # the unseen photographs to validate on (see photos.py), if fetched
    train_photos: Path | None = None  # training photographs added to the pool (photos.TRAINING_PHOTOS)
    workers: int = 0  # processes making batches ahead (a GPU burst); 0 = made between steps
    compile: bool = False  # the training step's network through torch.compile (see the module docstring)

    def describe(self) -> dict[str, str]:
        return {
            "model": self.model,
            "scale": str(self.scale),
            "batch": str(self.batch),
            "schedule": sched.format_schedule(self.schedule),
            "ema_decay": str(self.ema_decay),
            "optimizer": "Adam(0.9, 0.99)",
            "form": self.form,
            "seed": str(self.seed),
            "inputs": "degraded (see degradation)" if self.degradation else "clean bicubic",
            "data": self.pool,
        }

    @property
    def pool(self) -> str:
        """What this run trains on (see :func:`data_description`)."""
        return data_description(self.train_photos is not None)


def data_description(with_photos: bool) -> str:
    """What a run trains on, as its record and the manifest say it (a resumed run must train on
    the same: its batches are a function of the pool)."""
    pool = "T91 + BSD200 less the 10 held-out validation images"
    if not with_photos:
        return pool
    licences = "; ".join(f"{p}: {lic}" for p, lic in TRAINING_PHOTOS.licenses.items())
    return f"{pool} + {len(TRAINING_PHOTOS.file_names())} training photographs ({licences})"


def pool_of(state: dict[str, Any]) -> str:
    """The pool a run checkpoint was trained on (runs older than the record: the 281 images)."""
    return str(state.get("data") or data_description(False))


def start_origin(path: Path, lifted: bool) -> str:
    """A run's origin when it starts from ``path``: the file's name and digest (a shipped file
    is replaced by later exports, so its name alone would not say which weights these were)."""
    from fmen_gui.weights.files import sha256_file

    how = ", lifted into the train form" if lifted else ""
    return f"{path} (sha256 {sha256_file(path)[:12]}{how})"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@torch.no_grad()
def evaluate(deploy: FMEN, pairs: list[Pair], scale: int) -> float:
    """Mean Y-PSNR of a deploy-form model, whole images, CPU fp32, 8-bit rounded output.

    Run by the engine's CPU backend, so the score is that of the pixels the app writes.
    """
    cpu = torch.device("cpu")
    run = select_backend(deploy.cpu().float().eval(), cpu, torch.float32)
    scores = []
    for lr, hr in pairs:
        x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float()
        y = run(x)[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
        scores.append(psnr_y(y, hr, scale))
    return float(np.mean(scores))


def score_sets(deploy: FMEN, sets: dict[str, list[Pair]], scale: int) -> tuple[float, dict[str, float]]:
    """The validation score (the mean over conditions, equal weight) and each condition's."""
    by = {how: evaluate(deploy, pairs, scale) for how, pairs in sets.items()}
    return float(np.mean(list(by.values()))), by


def _to_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(a).to(device).permute(0, 3, 1, 2).float()
    return t.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def identity_init(model: FMEN) -> None:
    """Start from nearest-neighbour upscaling instead of noise.

    FMEN has no image-level skip connection, so from a random start it spends its first
    thousands of steps learning to reproduce the input colours. Routing the input through
    three head channels, the global residual and the tail (one tap per sub-pixel) gives a
    ~28 dB network at step 0 while keeping the architecture unchanged; the body's first
    contributions are damped so they start as small corrections.
    """
    head, tail = model.head, model.tail[0]
    cin = head.weight.shape[1]
    s2 = tail.weight.shape[0] // cin
    head.weight[:cin].zero_()
    head.bias[:cin].zero_()
    for c in range(cin):
        head.weight[c, c, 1, 1] = 1.0
    tail.weight.mul_(0.1)
    tail.bias.zero_()
    for c in range(cin):
        tail.weight[c * s2 : (c + 1) * s2, c, 1, 1] = 1.0
    model.lr_conv.weight.mul_(0.1)
    model.lr_conv.bias.zero_()


def checkpoint_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint stands for: its EMA where it has one."""
    return state.get("ema") or state.get("model") or state


def init_from(model: FMEN, checkpoint: dict[str, Any]) -> list[str]:
    """Copy every tensor of a loaded checkpoint whose name and shape match; return what was skipped."""
    state = checkpoint_weights(checkpoint)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


class StopRequest:
    """SIGTERM/SIGINT/SIGHUP set a flag that the loop reads after each step (main thread only)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers, a deadline still works
                break
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.signal = signum

    def __exit__(self, *_exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        want_cuda = cfg.device in ("auto", "cuda") and torch.cuda.is_available()
        self.device = torch.device("cuda" if want_cuda else "cpu")
        if self.device.type == "cuda":  # bf16 where the GPU has it: no loss scaling to go wrong
            self.amp_dtype: torch.dtype | None = (
                torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            )
        else:
            self.amp_dtype = torch.bfloat16 if cpu_bf16_native() else None
        # Seeded before the network is built: its random initial weights are part of the run.
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        if cfg.form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, not {cfg.form!r}")
        config = preset_config(cfg.model, cfg.scale)
        deploy = cfg.form == "deploy"
        # Either form is stock layers that autograd trains; validation runs the EMA through the
        # engine's CPU backend (see evaluate), so it scores what ships.
        model = FMEN(config, deploy=deploy)
        self.model = model.to(self.device, memory_format=torch.channels_last)
        merge_for_training(self.model)  # the train form at about the deploy form's cost
        self.ema = FMEN(config, deploy=deploy)  # on the CPU: validated and saved from there
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.schedule[0].lr, betas=(0.9, 0.99))
        self.step = 0
        self.best = -math.inf
        self.best_step = 0
        self.wall = 0.0
        self.history: list[tuple[int, float]] = []  # (step, validation dB) of every validation
        self.history_by: list[tuple[int, dict[str, float]]] = []  # the same, per condition
        self.history_on = ""  # the images the history was measured on (photos.validation_images)
        # The EMA's decay warms up only for a network that starts from nothing; one that starts
        # from trained weights keeps their average from the first step (warming up would hand
        # the EMA to the first, noisiest steps of the new learning rate).
        self.ema_warmup = cfg.init is None
        # What the run started from (the manifest's "init"): kept in every checkpoint and seed,
        # so that a resumed run, or one continued from a seed or a burst, still says it.
        self.origin = IDENTITY_INIT
        cfg.out.mkdir(parents=True, exist_ok=True)
        self.log_path = cfg.out / "train.log"
        self.last_path = cfg.out / "last.pt"
        self.best_path = cfg.out / "best.pt"
        pool, _ = split(cfg.data)
        if cfg.train_photos is not None:
            pool += training_photos(cfg.train_photos)
        self.sampler = PatchSampler(
            pool,
            cfg.scale,
            np.random.default_rng(cfg.seed),
            cfg.degradation,
            by_area=cfg.train_photos is not None,
        )
        self._stream: BatchStream | None = None  # batches made ahead, while train() runs
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        if cfg.compile:
            # A fresh start for this run's graphs: a campaign trains several networks in one
            # process, and compiled code kept for another would count against the limit of
            # recompilations, past which torch silently stops compiling.
            torch._dynamo.reset()
            self._forward = torch.compile(self.model)
        if self.last_path.exists():
            self._resume(torch.load(self.last_path, map_location="cpu", weights_only=True))
        else:
            identity_init(self.model)
            if cfg.init is not None:
                self._start_from(cfg.init)
            self.ema.load_state_dict(self.model.state_dict())
        self.val_on, base = validation_images(cfg.data, cfg.scale, cfg.unseen)
        self.val_sets = condition_sets(base, self.kind)
        self.val_by: dict[str, float] = {}  # the last validation, per condition
        self._check_validation_images()
        self.log(
            f"{cfg.model} ×{cfg.scale} on {self.device} amp={self.amp_dtype} threads={torch.get_num_threads()} "
            f"train images={len(self.sampler.pairs)} val={self.val_on}"
            f"×{'/'.join(self.val_sets)} from step {self.step} "
            f"of {sched.total_steps(cfg.schedule)} ({sched.format_schedule(cfg.schedule)})"
        )

    def _start_from(self, path: Path) -> None:
        """A new run from a checkpoint or a weights file.

        A committed seed (``.pt``) keeps its step, so the schedule goes on; a weights file
        (``.safetensors``, e.g. the shipped one) starts the schedule at step 0.
        """
        if path.suffix == ".safetensors":
            from fmen_gui.weights.loading import load_weights

            state: Any = load_weights(path)[0].state_dict()
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        inherited = state.get("init") if isinstance(state, dict) else None
        weights = checkpoint_weights(state)
        lifted = not self.model.deploy and any(k.endswith("rep_conv.weight") for k in weights)
        if lifted:  # deploy weights into the train form: the same function (see arch.reparam.lift)
            state = self._lifted(weights)
        skipped = init_from(self.model, state)
        self.origin = str(inherited) if inherited and not skipped else start_origin(path, lifted)
        self.ema_warmup = bool(skipped)  # a partial start is mostly fresh weights
        if isinstance(state, dict) and "step" in state and not skipped:
            self.step = int(state["step"])
            self.wall = float(state.get("wall", 0.0))
            self.history = [tuple(h) for h in state.get("history", [])]  # type: ignore[misc]
            self.history_by = [tuple(h) for h in state.get("history_by", [])]  # type: ignore[misc]
            self.history_on = str(state.get("val_on", SLICE))
        how = " (lifted from the deploy form)" if lifted else ""
        self.log(
            f"initialised from {path}{how} at step {self.step}; fresh: {', '.join(skipped) or 'nothing'}"
        )
        if isinstance(state, dict) and not skipped:
            self._check_schedule(state.get("schedule"))

    def _lifted(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Train-form weights equal to deploy ones, BatchNorms calibrated on training patches.

        The calibration patches are drawn with a generator of their own (a run's batches are
        those of :func:`~fmen_gui.training.data.step_rng`).
        """
        deploy = FMEN(self.model.config, deploy=True)
        deploy.load_state_dict(weights)
        calibration = np.random.default_rng(self.cfg.seed + 1)
        lrs = [self.sampler.batch(16, self.cfg.schedule[0].patch, calibration)[0] for _ in range(4)]
        batch = torch.cat([_to_tensor(lr, torch.device("cpu")) for lr in lrs])
        return lift(deploy, batch, seed=self.cfg.seed).state_dict()

    def log(self, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}"
        print(line, flush=True)
        with self.log_path.open("a") as f:
            f.write(line + "\n")

    @property
    def finished(self) -> bool:
        return self.step >= sched.total_steps(self.cfg.schedule)

    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best": self.best,
            "best_step": self.best_step,
            "wall": self.wall,
            "history": self.history,
            "history_by": self.history_by,
            "val_on": self.val_on,
            "ema_warmup": self.ema_warmup,
            "init": self.origin,
            "form": self.cfg.form,
            "data": self.cfg.pool,
            "schedule": sched.format_schedule(self.cfg.schedule),
            "torch_rng": torch.get_rng_state(),
            "py_rng": json.dumps(random.getstate()),
        }

    def _save(self, path: Path, state: dict[str, Any] | None = None) -> None:
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self._state() if state is None else state, tmp)
        tmp.replace(path)

    def _resume(self, state: dict[str, Any]) -> None:
        form = state.get("form", "train")
        if form != self.cfg.form:
            raise ValueError(
                f"{self.last_path} holds a {form}-form run, not {self.cfg.form}: "
                "move the run folder aside or train the same form"
            )
        saved = pool_of(state)
        if saved != self.cfg.pool:
            raise ValueError(
                f"{self.last_path} was trained on {saved}, not {self.cfg.pool}: "
                "move the run folder aside or train on the same images"
            )
        self.model.load_state_dict(state["model"])
        # Runs started before the EMA existed resume with the EMA at the current weights.
        self.ema.load_state_dict(state.get("ema") or state["model"])
        self.opt.load_state_dict(state["opt"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.best, self.best_step = state["step"], state["best"], state["best_step"]
        self.wall = state["wall"]
        self.history = [tuple(h) for h in state.get("history", [])]  # type: ignore[misc]
        self.history_by = [tuple(h) for h in state.get("history_by", [])]  # type: ignore[misc]
        self.history_on = str(state.get("val_on", SLICE))
        self.ema_warmup = bool(state.get("ema_warmup", True))
        self.origin = str(state.get("init") or UNRECORDED_INIT)
        torch.set_rng_state(state["torch_rng"])
        py = json.loads(state["py_rng"])
        random.setstate((py[0], tuple(py[1]), py[2]))
        if "ema" not in state:
            # Selected on Set5 by the old trainer: not comparable with the held-out slice.
            self.best, self.best_step = -math.inf, 0
        self.log(f"resumed at step {self.step} (best validation {self.best:.3f} dB at {self.best_step})")
        self._check_schedule(state.get("schedule"))

    def _check_schedule(self, saved: object) -> None:
        """Say when the run goes on under another schedule than the one it was saved with.

        Appended stages (a finished run's next generation) are the normal case and leave the
        past as it was; a change to a stage already begun means the steps that follow are not
        the ones the old schedule would have given (the run goes on; the log says so).
        """
        if not isinstance(saved, str) or saved == sched.format_schedule(self.cfg.schedule):
            return
        try:
            old = sched.parse(saved)
        except ValueError:
            return  # a record from before schedules were saved as text: nothing to compare
        if sched.resumes_exactly(old, self.cfg.schedule, self.step):
            self.log(
                f"schedule goes on from step {self.step} of {sched.total_steps(old)} "
                f"to {sched.total_steps(self.cfg.schedule)}: the stages begun are unchanged"
            )
        else:
            self.log(
                f"warning: the schedule changed in a stage begun before step {self.step} "
                f"(was {saved}): the rates from here differ from the ones the run had"
            )

    @torch.no_grad()
    def _update_ema(self) -> None:
        # The usual warm-up of the decay, so that a young EMA is not dominated by its start.
        decay = self.cfg.ema_decay
        if self.ema_warmup:
            decay = min(decay, (1 + self.step) / (10 + self.step))
        own = self.model.state_dict()
        ema = self.ema.state_dict()
        # One transfer a step from a GPU, not one per tensor (each waits for the device).
        flat = torch.cat([own[n].detach().reshape(-1).float() for n in ema]).cpu()
        for value, cur in zip(ema.values(), flat.split([v.numel() for v in ema.values()]), strict=True):
            if value.is_floating_point():
                value.lerp_(cur.view_as(value), 1 - decay)
            else:
                value.copy_(cur.view_as(value))

    def deployed(self) -> FMEN:
        """The EMA as the app runs it."""
        return self.ema if self.cfg.form == "deploy" else reparameterize(self.ema)

    def _check_validation_images(self) -> None:
        """A run resumed on other validation images (the photographs fetched since, or not on
        this machine) starts its curve and its best again: scores on different images do not
        compare. Its weights and schedule go on."""
        if self.history and self.history_on and self.history_on != self.val_on:
            self.log(
                f"validation moves from {self.history_on} to {self.val_on}: "
                f"the best ({self.best:.3f} dB at {self.best_step}) and the curve start again"
            )
            self.history, self.history_by = [], []
            self.best, self.best_step = -math.inf, 0
        self.history_on = self.val_on

    @property
    def kind(self) -> str:
        """What the network is for: ``photo`` when it learns degraded inputs."""
        return "photo" if self.cfg.degradation else "clean"

    def validate(self) -> float:
        """The EMA's mean Y-PSNR over its validation images' conditions (equal weight); the best is kept."""
        psnr, self.val_by = score_sets(self.deployed(), self.val_sets, self.cfg.scale)
        self.history.append((self.step, round(psnr, 4)))
        self.history_by.append((self.step, {k: round(v, 4) for k, v in self.val_by.items()}))
        if psnr > self.best:
            self.best, self.best_step = psnr, self.step
            self._save(
                self.best_path,
                {
                    "ema": self.ema.state_dict(),
                    "form": self.cfg.form,
                    "step": self.step,
                    "wall": self.wall,
                    "best": psnr,
                    "history": self.history,
                    "history_by": self.history_by,
                    "val_on": self.val_on,
                    "init": self.origin,
                },
            )
        return psnr

    def train_step(self) -> float:
        stage, _ = sched.stage_at(self.cfg.schedule, self.step)
        for group in self.opt.param_groups:
            group["lr"] = sched.lr_at(self.cfg.schedule, self.step)
        if self._stream is not None:
            lr_np, hr_np = self._stream.next()
        else:
            lr_np, hr_np = self.sampler.batch(self.cfg.batch, stage.patch, step_rng(self.cfg.seed, self.step))
        x, y = _to_tensor(lr_np, self.device), _to_tensor(hr_np, self.device)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=bool(self.amp_dtype)
        ):
            out = self._forward_once(x)
        loss = F.l1_loss(out.float(), y) if stage.loss == "l1" else F.mse_loss(out.float(), y)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        self._update_ema()
        return float(loss.item())

    def _forward_once(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output for a training batch; a compiled forward that fails to compile
        is dropped for the plain module (the same parameters), once, with a line in the log."""
        if self._forward is self.model:
            return self.model(x)
        try:
            return self._forward(x)
        except Exception as e:  # any compiler failure: train on, uncompiled
            self.log(
                f"torch.compile failed ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}); training uncompiled"
            )
            self._forward = self.model
            return self.model(x)

    def train(self, max_steps: int = 0) -> str:
        """Train until the schedule ends, the deadline, a signal or ``max_steps`` more steps.

        Returns why it stopped: ``"finished"``, ``"deadline"``, ``"signal"`` or ``"steps"``.
        """
        cfg = self.cfg
        total = sched.total_steps(cfg.schedule)
        self.model.train()
        started, wall0, first = time.perf_counter(), self.wall, self.step
        window: list[float] = []
        tick = time.perf_counter()
        reason = "finished"
        if not self.history and not self.ema_warmup:
            # A run from trained weights (or moved to other validation images): its curve
            # starts at what it starts from, and a checkpoint is only "best" once it beats that.
            self.log(f"step {self.step} validation {self.validate():.3f} dB (the weights it starts from)")
        if cfg.workers:
            self._stream = BatchStream(
                self.sampler,
                cfg.batch,
                lambda k: sched.stage_at(cfg.schedule, k)[0].patch,
                cfg.seed,
                self.step,
                cfg.workers,
            )
        with contextlib.ExitStack() as cleanup, StopRequest() as stop:
            cleanup.callback(self._close_stream)
            while self.step < total:
                window.append(self.train_step())
                self.wall = wall0 + time.perf_counter() - started
                if self.step % 20 == 0:
                    rate = 20 / (time.perf_counter() - tick)
                    tick = time.perf_counter()
                    stage, _ = sched.stage_at(cfg.schedule, self.step - 1)
                    self.log(
                        f"step {self.step}/{total} {stage.loss} {np.mean(window):.3f} patch {stage.patch} "
                        f"lr {sched.lr_at(cfg.schedule, self.step):.2e} {rate:.2f} it/s"
                    )
                    window.clear()
                if self.step % cfg.val_every == 0 or self.step == total:
                    psnr = self.validate()
                    detail = (
                        " [" + ", ".join(f"{k} {v:.3f}" for k, v in self.val_by.items()) + "]"
                        if len(self.val_by) > 1
                        else ""
                    )
                    self.log(
                        f"step {self.step} validation {psnr:.3f} dB{detail} "
                        f"(best {self.best:.3f} at {self.best_step})"
                    )
                if self.step % cfg.save_every == 0:
                    self._save(self.last_path)
                if stop.signal is not None:
                    reason = "signal"
                elif cfg.deadline and time.time() >= cfg.deadline:
                    reason = "deadline"
                elif max_steps and self.step - first >= max_steps:
                    reason = "steps"
                else:
                    continue
                break
        self._save(self.last_path)
        self.write_record()
        why = f"{reason} {signal.Signals(stop.signal).name}" if stop.signal is not None else reason
        self.log(
            f"stopped ({why}) at step {self.step}; best validation {self.best:.3f} dB at {self.best_step}"
        )
        return reason

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def write_record(self) -> None:
        """What ``export`` copies into the manifest: how these weights came to be."""
        (self.cfg.out / "record.json").write_text(json.dumps(self.record(), indent=2))

    def record(self) -> dict[str, Any]:
        return {
            "steps": self.step,
            "best_step": self.best_step,
            "wall_minutes": round(self.wall / 60, 1),
            "hardware": f"{cpu_name()} ({torch.get_num_threads()} threads)"
            + (f", {torch.cuda.get_device_name(0)}" if self.device.type == "cuda" else ""),
            "best_validation": round(self.best, 3),
            "validated_on": self.val_on,
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "fp32",
            "config": {**self.cfg.describe(), "init": self.origin},
            **({"degradation": self.cfg.degradation.describe()} if self.cfg.degradation else {}),
        }
