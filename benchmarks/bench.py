"""FMEN Upscaler benchmark: speed, memory, fast-path quality, start-up. ``make bench``.

Prints one table and writes ``benchmarks/results.json``. Speed is reported as output
megapixels per second and, more usefully on shared machines, as the ratio to a *reference run
in the same process*: the same deploy network with stock PyTorch layers, eager fp32, NCHW,
whole image. Memory is the peak resident-set growth of one job in a fresh process.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmen_gui.arch.detect import describe  # noqa: E402
from fmen_gui.arch.fmen import FMEN, multiply_adds_per_pixel, preset_config  # noqa: E402
from fmen_gui.engine import devices  # noqa: E402
from fmen_gui.engine.pipeline import Upscaler  # noqa: E402
from fmen_gui.metrics import psnr_y  # noqa: E402

SHARED = ROOT.parent / "shared"
OFFICIAL = SHARED / "weights" / "official" / "fmen_s_x4_njujet.pt"
SET5 = SHARED / "data" / "benchmark" / "Set5" / "x4"
SET14_HR = SHARED / "data" / "benchmark" / "Set14" / "x4"
SIZES = {"256x256": (256, 256), "480x270": (270, 480)}


def real_content(height: int, width: int) -> np.ndarray:
    """A photo-like LR input: Set14 pictures resized and tiled, or a synthetic fallback."""
    sources = sorted(SET14_HR.glob("*_HR.png"))
    if not sources:
        yy, xx = np.mgrid[0:height, 0:width]
        return np.stack([(xx * 1.7) % 256, (yy * 2.3) % 256, (xx + yy) % 256], -1).astype(np.uint8)
    canvas = np.zeros((height, width, 3), np.uint8)
    tile = 128
    k = 0
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            im = (
                Image.open(sources[k % len(sources)])
                .convert("RGB")
                .resize((tile, tile), Image.Resampling.BICUBIC)
            )
            part = np.asarray(im)
            canvas[y : y + tile, x : x + tile] = part[: height - y, : width - x]
            k += 1
    return canvas


def load_model(key: str) -> tuple[FMEN, str]:
    """Trained weights when present (official FMEN-S ×4, or the project's own), else random."""
    if key == "fmen-s" and OFFICIAL.exists():
        from fmen_gui.weights.loading import load_weights

        return load_weights(OFFICIAL)[0], "official"
    try:
        from fmen_gui.weights.loading import load_weights
        from fmen_gui.weights.registry import find_weights

        return load_weights(find_weights(key, 4).path)[0], "trained"
    except Exception:
        torch.manual_seed(0)
        return FMEN(preset_config(key, 4)).eval(), "random init"


def timed(fn, repeat: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitive cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_gflops(repeat: int = 5) -> float:
    """fp32 matrix-multiply throughput: the machine's practical peak."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    t = timed(lambda: a @ b, repeat)
    return 2 * 2048**3 / t / 1e9


def speed_rows(repeat: int) -> list[dict]:
    """Time every reference run first: the engine tunes the process's allocator when it starts
    (``fmen_gui.engine.memory``), and the reference must run as plain PyTorch would."""
    rows = []
    fast_dtype = torch.bfloat16 if devices.cpu_bf16_native() else None
    models = {key: load_model(key) for key in ("fmen-s", "fmen")}
    inputs = {label: real_content(h, w) for label, (h, w) in SIZES.items()}
    t_ref: dict[tuple[str, str], float] = {}
    for key, (model, _source) in models.items():
        ref = copy.deepcopy(model).eval()  # the network's own stock layers; the engine moves `model`
        for label, rgb in inputs.items():
            x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float()

            def reference(x: torch.Tensor = x, ref: FMEN = ref) -> None:
                with torch.inference_mode():
                    ref(x).clamp(0, 255).round().byte()

            t_ref[key, label] = timed(reference, repeat)
    for key, (model, source) in models.items():
        desc = describe(model.config, model)
        fast = Upscaler(copy.deepcopy(model), desc, torch.device("cpu"), fast_dtype) if fast_dtype else None
        engine = Upscaler(model, desc, torch.device("cpu"), torch.float32)
        for label, rgb in inputs.items():
            h, w = rgb.shape[:2]
            tr = t_ref[key, label]
            t_eng = timed(lambda rgb=rgb, up=engine: up.upscale_rgb(rgb, tile="auto"), repeat)
            t_fast = (
                timed(lambda rgb=rgb, up=fast: up.upscale_rgb(rgb, tile="auto"), repeat) if fast else None
            )
            out_mp = h * w * 16 / 1e6
            macs = multiply_adds_per_pixel(model.config) * h * w
            rows.append(
                {
                    "model": desc.name,
                    "weights": source,
                    "input": label,
                    "auto_tile": engine.auto_tile(h, w),
                    "reference_mp_s": out_mp / tr,
                    "default_mp_s": out_mp / t_eng,
                    "fast_mp_s": out_mp / t_fast if t_fast else None,
                    "default_ratio": tr / t_eng,
                    "fast_ratio": tr / t_fast if t_fast else None,
                    "reference_gflops": 2 * macs / tr / 1e9,
                    "default_gflops": 2 * macs / t_eng / 1e9,
                    "fast_gflops": 2 * macs / t_fast / 1e9 if t_fast else None,
                }
            )
            print(
                f"  {desc.name} {label}: ref {tr:.3f}s default {t_eng:.3f}s"
                + (f" fast {t_fast:.3f}s" if t_fast else ""),
                flush=True,
            )
    return rows


def fast_path_psnr() -> dict | None:
    if not OFFICIAL.exists() or not SET5.exists() or not devices.cpu_bf16_native():
        return None
    from fmen_gui.weights.loading import load_weights

    model, desc = load_weights(OFFICIAL)
    exact = Upscaler(model, desc, torch.device("cpu"), torch.float32)
    model2, _ = load_weights(OFFICIAL)
    fast = Upscaler(model2, desc, torch.device("cpu"), torch.bfloat16)
    a, b = [], []
    for lr_path in sorted(SET5.glob("*_LR.png")):
        lr = np.asarray(Image.open(lr_path).convert("RGB"))
        hr = np.asarray(Image.open(str(lr_path).replace("_LR", "_HR")).convert("RGB"))
        a.append(psnr_y(exact.upscale_rgb(lr, tile=0), hr, 4))
        b.append(psnr_y(fast.upscale_rgb(lr, tile=0), hr, 4))
    return {"fp32": float(np.mean(a)), "bf16": float(np.mean(b)), "cost_db": float(np.mean(a) - np.mean(b))}


MEMJOB = r"""
import json, sys, numpy as np, torch
sys.path.insert(0, {root!r})
from benchmarks.bench import real_content, load_model
from fmen_gui.arch.detect import describe
from fmen_gui.engine.memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from fmen_gui.engine.pipeline import Upscaler
model, _ = load_model("fmen-s")
up = Upscaler(model, describe(model.config, model), torch.device("cpu"), torch.float32)
rgb = real_content({h}, {w})
import time
base = rss_bytes()
reset_peak_rss()
start = time.perf_counter()
out = up.upscale_rgb(rgb, tile={tile!r})
print(json.dumps({{"growth": peak_rss_bytes() - base, "output": out.nbytes, "tile": {tile!r} if {tile!r} != "auto" else up.auto_tile({h}, {w}),
                  "seconds": time.perf_counter() - start}}))
"""


def memory_job(h: int, w: int, tile: object) -> dict:
    code = MEMJOB.format(root=str(ROOT), h=h, w=w, tile=tile)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def startup_time(repeat: int = 3) -> float | None:
    """Seconds from spawning ``python -m fmen_gui`` to the app saying its window is shown."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FMEN_GUI_EXIT_AFTER_SHOW": "1"}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "fmen_gui"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("window shown"):
                times.append(time.perf_counter() - start)
                break
        proc.wait(timeout=60)
    return statistics.median(times) if times else None


GUIJOB = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
import numpy as np
from PIL import Image
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from benchmarks.bench import real_content
from fmen_gui.gui.main_window import MainWindow
from fmen_gui.gui.responsiveness import GapMeter
from fmen_gui.gui.settings import SettingsStore

app = QApplication([])
tmp = Path(tempfile.mkdtemp())
src = tmp / "input.png"
Image.fromarray(real_content({h}, {w})).save(src)
window = MainWindow(store=SettingsStore.from_file(str(tmp / "settings.ini")))
window.confirm_close_during_job = lambda: True
window.show()
window.add_paths([src])
meter, results, started = GapMeter(), [], [0.0]

def run_job():
    item = window.model.items()[0]
    if item.original is None:  # still decoding
        QTimer.singleShot(20, run_job)
        return
    item.status = "pending"
    started[0] = time.perf_counter()
    meter.start()
    window.start()

def on_idle():
    meter.stop()
    item = window.model.items()[0]
    results.append({{"status": item.status, "gap_ms": meter.largest * 1000 if meter.gaps else None,
                     "seconds": time.perf_counter() - started[0], "size": list(item.latest_result().size)}})
    if len(results) < 2:
        QTimer.singleShot(0, run_job)
    else:
        app.quit()

window.idle.connect(on_idle)
QTimer.singleShot(0, run_job)
QTimer.singleShot(300000, app.quit)
app.exec()
window.shutdown()
print(json.dumps(results))
"""


def gui_gap(h: int = 270, w: int = 480) -> dict:
    """Largest pause of the GUI event loop (a 5 ms timer) while the real worker upscales.

    The first job also imports torch and loads the network; the second is the steady state.
    """
    code = GUIJOB.format(root=str(ROOT), h=h, w=w)
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FMEN_DATA_DIR": data}
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
            )
        except subprocess.TimeoutExpired:
            return {"error": "timed out"}
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    first, second = json.loads(proc.stdout.strip().splitlines()[-1])
    if first["status"] != "done" or second["status"] != "done":
        return {"error": f"jobs ended {first['status']} / {second['status']}"}
    return {
        "input": f"{w}x{h}",
        "first_gap_ms": first["gap_ms"],
        "gap_ms": second["gap_ms"],
        "first_s": first["seconds"],
        "job_s": second["seconds"],
        "output": second["size"],
    }


def gpu_section() -> dict | None:
    if not torch.cuda.is_available():
        return None
    model, _ = load_model("fmen-s")
    model = model.cuda().half().eval()
    x = torch.rand(1, 3, 256, 256, device="cuda").half() * 255
    torch.cuda.synchronize()
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(20):
            model(x)
        torch.cuda.synchronize()
    return {
        "device": torch.cuda.get_device_name(0),
        "fp16_ms_256": (time.perf_counter() - start) / 20 * 1000,
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-big", action="store_true", help="skip the 3840×2160 → ×4 job (about 3 min)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    from fmen_gui.engine.backends import winograd

    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads} threads, torch {torch.__version__}, bf16 native: {devices.cpu_bf16_native()}, "
        f"Winograd kernel: {winograd.isa() or 'none (oneDNN only)'}",
    }
    print("measuring peak…", flush=True)
    result["peak_fp32_gflops"] = peak_gflops()
    print("speed…", flush=True)
    result["speed"] = speed_rows(args.repeat)
    print("fast path PSNR…", flush=True)
    result["fast_psnr"] = fast_path_psnr()
    if not args.skip_memory:
        print("memory…", flush=True)
        result["memory"] = {
            "whole_960x540": memory_job(540, 960, 0),
            "auto_960x540": memory_job(540, 960, "auto"),
        }
        if not args.skip_big:
            print("3840×2160 → ×4…", flush=True)
            result["memory"]["auto_3840x2160"] = memory_job(2160, 3840, "auto")
    print("start-up…", flush=True)
    result["startup_s"] = startup_time()
    print("GUI event loop during a job…", flush=True)
    result["gui"] = gui_gap()
    result["gpu"] = gpu_section()
    result["seconds"] = time.perf_counter() - started
    (ROOT / "benchmarks" / "results.json").write_text(json.dumps(result, indent=2))
    print_table(result)


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def print_table(r: dict) -> None:
    print(f"\nMachine: {r['machine']}; measured fp32 peak {r['peak_fp32_gflops']:.0f} GFLOP/s\n")
    print(
        "| model | LR input | auto tile | reference MP/s | default MP/s | ×ref | fast MP/s | ×ref "
        "| GFLOP/s ref / default / fast (direct-convolution count) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in r["speed"]:
        print(
            f"| {row['model']} ×4 | {row['input']} | {row['auto_tile'] or 'whole'} | {_f(row['reference_mp_s'])} "
            f"| {_f(row['default_mp_s'])} | {_f(row['default_ratio'])} | {_f(row['fast_mp_s'])} "
            f"| {_f(row['fast_ratio'])} | {_f(row['reference_gflops'], '{:.0f}')} / "
            f"{_f(row['default_gflops'], '{:.0f}')} / {_f(row['fast_gflops'], '{:.0f}')} |"
        )
    fp = r.get("fast_psnr")
    if fp:
        print(
            f"\nFast path (bf16) on Set5 ×4, official FMEN-S: fp32 {fp['fp32']:.3f} dB, bf16 {fp['bf16']:.3f} dB, "
            f"cost {fp['cost_db']:.3f} dB"
        )
    mem = r.get("memory")
    if mem:
        for name, m in mem.items():
            if "error" in m:
                print(f"Memory {name}: failed ({m['error']})")
                continue
            beyond = (m["growth"] - m["output"]) / 2**20
            print(
                f"Memory {name} (FMEN-S ×4, tile {m['tile'] or 'whole'}): +{m['growth'] / 2**20:.0f} MB "
                f"resident, {beyond:.0f} MB beyond the {m['output'] / 2**20:.0f} MB output array, "
                f"{m.get('seconds', 0):.1f} s"
            )
    print(f"Start-up to main window: {_f(r.get('startup_s'))} s")
    g = r.get("gui")
    if g and "error" not in g:
        print(
            f"Largest GUI event-loop gap during a {g['input']} → {g['output'][0]}×{g['output'][1]} job "
            f"({g['job_s']:.2f} s): {g['gap_ms']:.0f} ms (first job, which also loads torch and the "
            f"network: {g['first_gap_ms']:.0f} ms)"
        )
    elif g:
        print(f"GUI event-loop gap: failed ({g['error']})")
    if r.get("gpu"):
        g = r["gpu"]
        print(f"GPU {g['device']}: fp16 256×256 {g['fp16_ms_256']:.1f} ms, peak {g['peak_mb']:.0f} MB")
    print(f"(benchmark took {r['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
