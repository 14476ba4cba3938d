"""Train FMEN / FMEN-S in its train form, validate the deploy form, keep the best.

Built for this project's hardware: a 2-core CPU with native bf16 (channels_last plus bf16
autocast roughly halves a step) and, when there is one, a CUDA GPU with fp16 autocast.
Low-resolution images are made once per image with Pillow's antialiased bicubic (close to
the MATLAB ``imresize`` that made the benchmark inputs), so a training step is only numpy
slicing plus the network.
"""

from __future__ import annotations

import json
import math
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fmen_gui.arch.fmen import FMEN, preset_config
from fmen_gui.arch.reparam import reparameterize
from fmen_gui.engine.devices import cpu_bf16_native
from fmen_gui.metrics import psnr_y

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"}


@dataclass
class TrainConfig:
    model: str = "fmen-s"
    scale: int = 2
    data: Path = Path("../shared/data/train")
    val: Path = Path("../shared/data/benchmark/Set5")
    out: Path = Path("runs/fmen-s_x2")
    steps: int = 20000
    batch: int = 16
    patch: int = 48  # low-resolution patch side
    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup: int = 200
    val_every: int = 500
    save_every: int = 100
    threads: int = 0  # 0 = torch default
    device: str = "auto"
    init: Path | None = None  # a checkpoint whose matching tensors start this run (e.g. a ×2 body)
    seed: int = 0
    max_minutes: float = 0.0  # stop (after a checkpoint) once this much wall time has passed
    extra: dict[str, str] = field(default_factory=dict)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def bicubic_down(hr: np.ndarray, scale: int) -> np.ndarray:
    h, w = hr.shape[:2]
    return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.Resampling.BICUBIC))


class PatchSampler:
    """Aligned LR/HR patch pairs with random flips and 90° rotations, all in memory."""

    def __init__(self, folder: Path, scale: int, patch: int, rng: np.random.Generator) -> None:
        self.scale, self.patch, self.rng = scale, patch, rng
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        for path in list_images(folder):
            hr = np.asarray(Image.open(path).convert("RGB"))
            h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
            if h // scale < patch or w // scale < patch:
                continue
            hr = np.ascontiguousarray(hr[:h, :w])
            self.pairs.append((bicubic_down(hr, scale), hr))
        if not self.pairs:
            raise SystemExit(f"no training images of at least {patch * scale}px in {folder}")

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        p, s = self.patch, self.scale
        lrs = np.empty((n, p, p, 3), np.uint8)
        hrs = np.empty((n, p * s, p * s, 3), np.uint8)
        for i in range(n):
            lr, hr = self.pairs[self.rng.integers(len(self.pairs))]
            y = self.rng.integers(lr.shape[0] - p + 1)
            x = self.rng.integers(lr.shape[1] - p + 1)
            a = lr[y : y + p, x : x + p]
            b = hr[y * s : (y + p) * s, x * s : (x + p) * s]
            k = int(self.rng.integers(4))
            a, b = np.rot90(a, k), np.rot90(b, k)
            if self.rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            lrs[i], hrs[i] = a, b
        return lrs, hrs


def load_benchmark(folder: Path, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for lr_path in sorted((folder / f"x{scale}").glob("*_LR.png")):
        hr_path = lr_path.with_name(lr_path.name.replace("_LR", "_HR"))
        pairs.append(
            (np.asarray(Image.open(lr_path).convert("RGB")), np.asarray(Image.open(hr_path).convert("RGB")))
        )
    return pairs


@torch.no_grad()
def evaluate(deploy: FMEN, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int) -> float:
    """Mean Y-PSNR of a deploy-form model, whole images, CPU fp32, 8-bit rounded output."""
    deploy = deploy.cpu().float().eval()
    scores = []
    for lr, hr in pairs:
        x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float()
        y = deploy(x)[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
        scores.append(psnr_y(y, hr, scale))
    return float(np.mean(scores))


def _to_tensor(a: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    t = torch.from_numpy(a).to(device).permute(0, 3, 1, 2).float()
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


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


def init_from(model: FMEN, path: Path) -> list[str]:
    """Copy every tensor of a checkpoint whose name and shape match; return what was skipped."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        want_cuda = cfg.device in ("auto", "cuda") and torch.cuda.is_available()
        self.device = torch.device("cuda" if want_cuda else "cpu")
        self.channels_last = True
        if self.device.type == "cuda":
            self.amp_dtype: torch.dtype | None = torch.float16
        else:
            self.amp_dtype = torch.bfloat16 if cpu_bf16_native() else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda")
        self.model = FMEN(preset_config(cfg.model, cfg.scale), deploy=False).to(self.device)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.step = 0
        self.best = -math.inf
        self.best_step = 0
        self.wall = 0.0
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        cfg.out.mkdir(parents=True, exist_ok=True)
        self.log_path = cfg.out / "train.log"
        self.last_path = cfg.out / "last.pt"
        self.best_path = cfg.out / "best.pt"
        if self.last_path.exists():
            self._resume()
        elif cfg.init is not None:
            identity_init(self.model)
            skipped = init_from(self.model, cfg.init)
            self.log(f"initialised from {cfg.init}; fresh: {', '.join(skipped) or 'nothing'}")
        else:
            identity_init(self.model)
        self.sampler = PatchSampler(cfg.data, cfg.scale, cfg.patch, self.rng)
        self.val_pairs = load_benchmark(cfg.val, cfg.scale)
        self.log(
            f"{cfg.model} ×{cfg.scale} on {self.device} amp={self.amp_dtype} threads={torch.get_num_threads()} "
            f"train images={len(self.sampler.pairs)} val={len(self.val_pairs)} from step {self.step}"
        )

    def log(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        print(line, flush=True)
        with self.log_path.open("a") as f:
            f.write(line + "\n")

    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))

    def _state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best": self.best,
            "best_step": self.best_step,
            "wall": self.wall,
            "torch_rng": torch.get_rng_state(),
            "np_rng": json.dumps(self.rng.bit_generator.state),
            "py_rng": json.dumps(random.getstate()),
        }

    def _save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(self._state(), tmp)
        tmp.replace(path)

    def _resume(self) -> None:
        state = torch.load(self.last_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.best, self.best_step = state["step"], state["best"], state["best_step"]
        self.wall = state["wall"]
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = json.loads(state["np_rng"])
        py = json.loads(state["py_rng"])
        random.setstate((py[0], tuple(py[1]), py[2]))
        self.log(f"resumed at step {self.step} (best {self.best:.3f} dB at {self.best_step})")

    def validate(self) -> float:
        psnr = evaluate(reparameterize(self.model), self.val_pairs, self.cfg.scale)
        if psnr > self.best:
            self.best, self.best_step = psnr, self.step
            self._save(self.best_path)
        return psnr

    def train(self) -> None:
        cfg = self.cfg
        self.model.train()
        started = time.perf_counter()
        wall0 = self.wall
        window: list[float] = []
        tick = time.perf_counter()
        while self.step < cfg.steps:
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(self.step)
            lr_np, hr_np = self.sampler.batch(cfg.batch)
            x = _to_tensor(lr_np, self.device, self.channels_last)
            y = _to_tensor(hr_np, self.device, self.channels_last)
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
            ):
                out = self.model(x)
            loss = F.l1_loss(out.float(), y)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.step += 1
            window.append(loss.item())
            self.wall = wall0 + time.perf_counter() - started
            if self.step % 20 == 0:
                rate = 20 / (time.perf_counter() - tick)
                tick = time.perf_counter()
                eta = (cfg.steps - self.step) / max(rate, 1e-9) / 60
                self.log(
                    f"step {self.step}/{cfg.steps} loss {np.mean(window):.3f} "
                    f"lr {self.lr_at(self.step):.2e} {rate:.2f} it/s eta {eta:.0f} min"
                )
                window.clear()
            if self.step % cfg.val_every == 0 or self.step == cfg.steps:
                psnr = self.validate()
                self.log(f"step {self.step} Set5 {psnr:.3f} dB (best {self.best:.3f} at {self.best_step})")
            if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                self._save(self.last_path)
            if cfg.max_minutes and (time.perf_counter() - started) / 60 > cfg.max_minutes:
                self._save(self.last_path)
                self.write_record()
                self.log(f"time limit reached at step {self.step}; resume with the same command")
                return
        self.write_record()
        self.log(f"done: best Set5 {self.best:.3f} dB at step {self.best_step}")

    def write_record(self) -> None:
        """What ``export`` copies into the manifest: how these weights came to be."""
        (self.cfg.out / "record.json").write_text(json.dumps(self.record(), indent=2))

    def record(self) -> dict:
        return {
            "steps": self.step,
            "best_step": self.best_step,
            "wall_minutes": round(self.wall / 60, 1),
            "hardware": f"{cpu_name()} ({torch.get_num_threads()} threads)"
            + (f", {torch.cuda.get_device_name(0)}" if self.device.type == "cuda" else ""),
            "best_set5": round(self.best, 3),
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "fp32",
            "config": {k: str(v) for k, v in asdict(self.cfg).items() if k not in ("extra",)},
        }
