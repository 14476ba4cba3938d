"""The one place where Qt meets the network: a long-lived worker thread that owns the model.

Why a single long-lived ``QThread`` with a worker ``QObject`` (and not a thread per job): the
network and, on a GPU, its CUDA context are expensive to create, so the model stays loaded
between jobs and is rebuilt only when model, scale, weights, device or precision change.
Requests arrive as queued signals and therefore run one at a time in submission order.

The engine (and with it torch) is imported lazily *inside* the slots that run in the worker
thread, so the window is on screen before torch starts loading. Nothing in here touches a
widget; results travel back to the GUI thread only as signals carrying plain values or
``QImage`` objects (which, unlike ``QPixmap``, may be built in any thread).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from fmen_gui.engine import jobs
from fmen_gui.errors import Cancelled, FmenError, WeightsError
from fmen_gui.gui.imaging import array_to_qimage, preview_factor, reduced_preview
from fmen_gui.gui.jobs import JobOutcome, JobSpec

log = logging.getLogger(__name__)

# Progressive display: a tile signal carries a copy of the tile, so cap how often we send one.
_MIN_TILE_INTERVAL_S = 0.03


class UpscaleWorker(QObject):
    """Runs jobs, weight imports and downloads in the worker thread.

    ``pipeline`` and ``devices`` can be injected (tests pass fakes); by default the real
    ``fmen_gui.engine.pipeline`` / ``fmen_gui.engine.devices`` are imported on first use.
    """

    job_started = Signal(int)  # job_id
    engine_loading = Signal(str)  # what is being loaded, for the status bar
    engine_ready = Signal(str, str)  # label ("FMEN-S ×4"), device label
    progress = Signal(int, int, int)  # job_id, tiles done, tiles total
    tile_ready = Signal(int, QImage, int, int, int, int)  # job_id, tile, x, y, out width, out height
    job_finished = Signal(object, QImage)  # JobOutcome, preview of the result
    job_failed = Signal(int, str)  # job_id, one-line reason
    job_cancelled = Signal(int)
    devices_found = Signal(list)  # [(key, label, [precisions])]
    task_done = Signal(str, str)  # kind ("import" | "remove" | "download" | "save"), message
    model_imported = Signal(str, int)  # model key, scale: sent just before its task_done
    task_failed = Signal(str, str)  # kind, one-line reason
    download_progress = Signal(int, int)  # bytes received, total (-1 when unknown)

    def __init__(
        self, pipeline: ModuleType | Any | None = None, devices: ModuleType | Any | None = None
    ) -> None:
        super().__init__()
        self._pipeline = pipeline
        self._devices = devices
        self._engine: Any = None
        self._engine_key: tuple[object, ...] | None = None
        self._lock = threading.Lock()
        self._cancels: dict[int, threading.Event] = {}
        self._download_cancel = threading.Event()
        self._batch = jobs.Batch()  # the folders this window's jobs swept (once a session)

    # ----------------------------------------------------------------- called from the GUI thread
    def register(self, job_id: int) -> None:
        """Create the cancel flag of a job before it is queued (thread-safe)."""
        with self._lock:
            self._cancels.setdefault(job_id, threading.Event())

    def cancel(self, job_id: int) -> None:
        """Ask a queued or running job to stop; it stops before its next tile (thread-safe)."""
        with self._lock:
            self._cancels.setdefault(job_id, threading.Event()).set()

    def cancel_all(self) -> None:
        """Cancel every known job and any download (used on close)."""
        with self._lock:
            for event in self._cancels.values():
                event.set()
        self._download_cancel.set()

    def cancel_download(self) -> None:
        self._download_cancel.set()

    # ----------------------------------------------------------------- lazy engine access
    def _pipeline_module(self) -> Any:
        if self._pipeline is None:
            self._pipeline = importlib.import_module("fmen_gui.engine.pipeline")
        return self._pipeline

    def _devices_module(self) -> Any:
        if self._devices is None:
            self._devices = importlib.import_module("fmen_gui.engine.devices")
        return self._devices

    def _engine_for(self, spec: JobSpec) -> Any:
        """The loaded engine for ``spec``, reloading only when the network must change."""
        key = spec.engine_key()
        if self._engine is not None and self._engine_key == key:
            return self._engine
        pipeline = self._pipeline_module()
        what = spec.weights.name if spec.weights else f"{spec.model.upper()} ×{spec.scale}"
        what += "" if spec.weights or spec.kind == "clean" else f" {spec.kind}"
        self.engine_loading.emit(f"Loading {what}…")
        self._engine = None  # free the old network before building the new one
        settings = pipeline.EngineSettings(**spec.engine_fields())
        engine = pipeline.Engine(settings)
        self._engine, self._engine_key = engine, key
        self.engine_ready.emit(str(engine.label), str(engine.device_label))
        return engine

    # ----------------------------------------------------------------- slots (worker thread)
    @Slot(object)
    def run_job(self, spec: JobSpec) -> None:
        """Upscale one file: load, run tile by tile, write atomically, report."""
        with self._lock:
            cancel = self._cancels.setdefault(spec.job_id, threading.Event())
        try:
            if cancel.is_set():
                raise Cancelled("cancelled before start")
            self.job_started.emit(spec.job_id)
            self._run(spec, cancel)
        except Cancelled:
            self.job_cancelled.emit(spec.job_id)
        except FmenError as exc:
            self.job_failed.emit(spec.job_id, str(exc) or type(exc).__name__)
        except MemoryError:
            self.job_failed.emit(spec.job_id, "out of memory; try a smaller tile size")
        except Exception as exc:  # an engine bug: keep the queue going, but keep the evidence
            log.error("job %s failed:\n%s", spec.job_id, traceback.format_exc())
            self.job_failed.emit(spec.job_id, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._cancels.pop(spec.job_id, None)

    def _run(self, spec: JobSpec, cancel: threading.Event) -> None:
        from fmen_gui.engine import images

        engine = self._engine_for(spec)
        if cancel.is_set():
            raise Cancelled("cancelled")
        job_id = spec.job_id
        last_emit = [0.0]
        pending: list[tuple[int, int, int, int]] = []

        def on_progress(done: int, total: int) -> None:
            self.progress.emit(job_id, int(done), int(total))

        def on_tile(out: np.ndarray, box: tuple[int, int, int, int]) -> None:
            # Merge boxes between emissions: a flood of tiny tiles would only queue up copies.
            pending.append(box)
            now = time.perf_counter()
            if now - last_emit[0] < _MIN_TILE_INTERVAL_S:
                return
            last_emit[0] = now
            self._emit_tiles(job_id, out, pending)

        # The window's policy for a taken name: the next number, decided again at the final
        # step, so a file that appears meanwhile (another program, a second window) is kept.
        result = engine.run(
            spec.job(),
            on_existing=jobs.OnExisting.NUMBER,
            batch=self._batch,
            progress=on_progress,
            cancel=cancel,
            on_tile=on_tile,
            keep_image=True,
        )
        image, result = result.image, replace(result, image=None)
        assert image is not None
        # The window keeps a display copy of bounded size, not a second full-size result.
        k = preview_factor(int(image.width), int(image.height))
        shown = reduced_preview(image.rgb, image.alpha, k)
        del image
        if result.filled and shown.shape[2] == 4:  # show what was saved: JPEG's transparency is filled
            shown = images.flatten_alpha(shown[..., :3], shown[..., 3], spec.background)
        preview = array_to_qimage(shown)
        del shown
        outcome = JobOutcome(
            job_id=job_id,
            src=spec.src,
            dst=result.dst,
            in_size=result.in_size,
            out_size=result.out_size,
            seconds=result.seconds,
            label=str(engine.label),
            device_label=str(engine.device_label),
            filled_with="#{:02x}{:02x}{:02x}".format(*spec.background) if result.filled else "",
        )
        self.job_finished.emit(outcome, preview)

    def _emit_tiles(self, job_id: int, out: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> None:
        """Send the bounding box of the pending tiles as one image copy."""
        y0 = min(b[0] for b in boxes)
        y1 = max(b[1] for b in boxes)
        x0 = min(b[2] for b in boxes)
        x1 = max(b[3] for b in boxes)
        boxes.clear()
        h, w = out.shape[:2]
        tile = array_to_qimage(out[y0:y1, x0:x1])
        self.tile_ready.emit(job_id, tile, x0, y0, w, h)

    @Slot(list)
    def sweep(self, folders: list[str]) -> None:
        """Start-up sweep of the folders this app writes to (see :func:`atomicfiles.sweep_stale`).

        Runs in the worker thread because a large folder takes a moment to list.
        """
        for folder in folders:
            self._batch.sweep(Path(folder))

    @Slot()
    def probe(self) -> None:
        """List devices and their precisions (imports torch, warming it up for the first job)."""
        try:
            devices = self._devices_module()
            found = [
                (str(d.key), str(d.label), [str(p) for p in devices.precision_choices(d.key)])
                for d in devices.list_devices()
            ]
        except Exception as exc:  # no devices module yet, or a broken driver: Auto still works
            log.warning("device probe failed: %s", exc)
            found = []
        self.devices_found.emit(found)

    @contextmanager
    def _task(self, task: str, *, cancelled: str | None = None) -> Iterator[None]:
        """Turn a task's failure into one line for the window: ``task_failed(task, line)``.

        A known failure (:class:`FmenError`) is its own message; anything else is a bug, logged
        with its traceback and reported as an internal error, never let out of the thread.
        """
        try:
            yield
        except Cancelled as exc:
            self.task_failed.emit(task, str(exc) if cancelled is None else cancelled)
        except FmenError as exc:
            self.task_failed.emit(task, str(exc))
        except Exception as exc:
            log.error("%s failed:\n%s", task, traceback.format_exc())
            self.task_failed.emit(task, f"internal error: {type(exc).__name__}: {exc}")

    @Slot(str)
    def import_weights(self, path: str) -> None:
        """Validate and install a model file of any supported architecture (loads torch)."""
        with self._task("import"):
            from fmen_gui.weights import registry

            entry = registry.import_weights(Path(path))
            self._forget_engine(entry.model)  # the key may name another file now
            self.model_imported.emit(entry.model, entry.scale)
            self.task_done.emit("import", f"Imported {entry.label}")

    @Slot(str)
    def remove_model(self, path: str) -> None:
        """Remove the imported model stored at ``path``: its manifest entry, then its file.

        Here rather than on the GUI thread because it touches the disk and the loaded network:
        jobs run one at a time in this thread, so none is using the model while it goes.
        """
        with self._task("remove"):
            from fmen_gui.weights import registry

            entry = next((e for e in registry.installed_weights() if str(e.path) == path), None)
            if entry is None:
                raise WeightsError(f"{Path(path).name} is no longer installed")
            registry.remove_weights(entry)
            self._forget_engine(entry.model)
            self.task_done.emit("remove", f"Removed {entry.display_name} ×{entry.scale}")

    def _forget_engine(self, model: str) -> None:
        """Drop the loaded network if it is ``model``'s: its file was replaced or removed."""
        if self._engine_key is not None and self._engine_key[0] == model:
            self._engine, self._engine_key = None, None

    @Slot()
    def download_official(self) -> None:
        """Fetch the official FMEN-S ×4 weights, reporting bytes; cancellable with Esc."""
        self._download_cancel.clear()
        with self._task("download", cancelled="Download cancelled"):
            from fmen_gui.weights import fetch

            def progress(received: int, total: int | None) -> None:
                self.download_progress.emit(int(received), -1 if total is None else int(total))

            path = fetch.fetch_official(progress=progress, cancel=self._download_cancel)
            self.task_done.emit("download", f"Downloaded {Path(path).name}")

    @Slot(str, str, str, int)
    def save_copy(self, src: str, dst: str, fmt: str, quality: int) -> None:
        """Re-encode a finished result under a new name/format (encoding 4K takes a while)."""
        with self._task("save"):
            from fmen_gui.engine import images

            data = images.read_image(Path(src))
            # The save dialog has already asked before an existing file is replaced.
            images.write_image(Path(dst), data, fmt=fmt, quality=quality, overwrite=True)
            self.task_done.emit("save", f"Saved {dst}")


class WorkerController(QObject):
    """Owns the worker thread; the GUI's only handle on it.

    It creates the thread once, forwards requests as queued signals, and on ``shutdown``
    cancels everything and joins the thread, so Qt never destroys a running ``QThread``.
    """

    _submit = Signal(object)
    _probe = Signal()
    _import = Signal(str)
    _remove = Signal(str)
    _download = Signal()
    _save = Signal(str, str, str, int)
    _sweep = Signal(list)

    def __init__(self, worker: UpscaleWorker | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker if worker is not None else UpscaleWorker()
        self.worker_thread = QThread()
        self.worker_thread.setObjectName("fmen-worker")
        self.worker.moveToThread(self.worker_thread)
        self._submit.connect(self.worker.run_job)
        self._probe.connect(self.worker.probe)
        self._import.connect(self.worker.import_weights)
        self._remove.connect(self.worker.remove_model)
        self._download.connect(self.worker.download_official)
        self._save.connect(self.worker.save_copy)
        self._sweep.connect(self.worker.sweep)
        self.worker_thread.start()
        self._closed = False

    def submit(self, spec: JobSpec) -> None:
        self.worker.register(spec.job_id)
        self._submit.emit(spec)

    def cancel(self, job_id: int) -> None:
        self.worker.cancel(job_id)

    def probe(self) -> None:
        self._probe.emit()

    def import_weights(self, path: str) -> None:
        self._import.emit(path)

    def remove_model(self, path: str) -> None:
        self._remove.emit(path)

    def download_official(self) -> None:
        self._download.emit()

    def cancel_download(self) -> None:
        self.worker.cancel_download()

    def save_copy(self, src: str, dst: str, fmt: str, quality: int) -> None:
        self._save.emit(src, dst, fmt, quality)

    def sweep(self, folders: list[str]) -> None:
        """Remove stale temp files of killed runs from these folders, in the worker thread."""
        self._sweep.emit([str(f) for f in folders])

    def shutdown(self, timeout_ms: int = 60000) -> bool:
        """Cancel all work, stop the event loop of the thread and wait for it to end."""
        if self._closed:
            return True
        self._closed = True
        self.worker.cancel_all()
        self.worker_thread.quit()
        ok = bool(self.worker_thread.wait(timeout_ms))
        if not ok:
            log.error("worker thread did not stop within %d ms", timeout_ms)
        return ok
