"""The batch: the queue of images, which one runs next, and what the worker's answers do to it.

The worker only ever sees one job at a time (``_dispatch``), so a settings change applies to
the next image of a batch, a failure marks its item and the batch goes on, and Cancel stops the
batch cleanly. Items change state only through their own methods, applied with
``QueueModel.update`` so every change repaints its card; the window listens to the signals
below and never edits an item itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from fmen_gui.engine.kinds import KindChoice
from fmen_gui.engine.names import format_key
from fmen_gui.gui.eta import FinishRates, queue_seconds_left
from fmen_gui.gui.imaging import PREVIEW_MAX_PIXELS, ImageLoader, LoadedImage
from fmen_gui.gui.jobs import JobOutcome, JobSpec
from fmen_gui.gui.queue import (
    DONE,
    FINISHED_STATES,
    LOADING,
    PENDING,
    RUNNING,
    QueueItem,
    QueueModel,
    Result,
)
from fmen_gui.gui.settings import BACKGROUNDS

if TYPE_CHECKING:
    from fmen_gui.gui.worker import WorkerController

ETA_TICK_MS = 500


class Planner(Protocol):
    """What the batch asks the owner of the settings about an item's job (see ``gui.planner``)."""

    def job_spec(self, item: QueueItem) -> JobSpec:
        """The job for ``item`` under the current settings."""
        ...

    def job_label(self) -> str:
        """The label of a job started now ("FMEN ×4"), before the engine says."""
        ...

    def expectation(self, item: QueueItem) -> tuple[tuple[int, int] | None, KindChoice, bool]:
        """What ``item`` will become: (output size, network kind, whether its card names the kind)."""
        ...

    def output_format(self, item: QueueItem) -> str:
        """The format key ("png") that ``item``'s job writes."""
        ...


class BatchController(QObject):
    """Owns the queue and runs it through the worker, one job at a time."""

    idle = Signal()  # the batch ended (finished, failed or cancelled) and nothing runs
    item_finished = Signal(int)  # queue key of an item that reached a final state
    item_updated = Signal(int)  # key of an item whose pictures, results or job changed: show it again
    job_started = Signal(int)  # key of the item just sent to the worker
    job_ended = Signal(int)  # key of the item whose job ended (saved, failed or cancelled)
    progress = Signal(int, int)  # tiles done, total of the running job
    tile_ready = Signal(int, QImage, int, int, int, int)  # key, tile, x, y, output width, height
    saved = Signal(object)  # JobOutcome of the job just saved
    message = Signal(str)  # for the status bar
    changed = Signal()  # the queue or the batch state changed (actions, title, saved queue)
    ticked = Signal()  # time passed while a job runs (the ETAs moved)

    def __init__(self, controller: WorkerController, planner: Planner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.planner = planner
        self.model = QueueModel(self)
        self.loader = ImageLoader(self)
        # Finished results of a restored queue, held at display size like new ones.
        self.result_loader = ImageLoader(self, max_pixels=PREVIEW_MAX_PIXELS)
        self._running: tuple[int, int] | None = None  # (job_id, item key)
        self._batch = False  # run queued items one after another
        self._active = False  # a batch was started and has not yet gone idle
        self._closing = False
        self._finish_rates = FinishRates()  # learned seconds per output megapixel of saving
        self._result_requests: dict[int, tuple[int, str, tuple[int, int], float]] = {}
        self._next_result_request = -1
        self._eta_timer = QTimer(self)
        self._eta_timer.setInterval(ETA_TICK_MS)
        self._eta_timer.timeout.connect(self._tick_eta)

        w = controller.worker
        w.job_started.connect(self._on_job_started)
        w.engine_ready.connect(self._on_engine_ready)
        w.progress.connect(self._on_progress)
        w.tile_ready.connect(self._on_tile)
        w.job_finished.connect(self._on_job_finished)
        w.job_failed.connect(self._on_job_failed)
        w.job_cancelled.connect(self._on_job_cancelled)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.result_loader.loaded.connect(self._on_result_loaded)

    # ------------------------------------------------------------------ state
    def is_busy(self) -> bool:
        """A job is with the worker."""
        return self._running is not None

    def in_batch(self) -> bool:
        """A batch runs (it may be waiting for images still being read)."""
        return self._batch

    def running_key(self) -> int | None:
        return self._running[1] if self._running else None

    def _running_item(self, job_id: int) -> QueueItem | None:
        if self._running is None or self._running[0] != job_id:
            return None
        return self.model.find(self._running[1])

    # ------------------------------------------------------------------ the queue
    def add(self, paths: list[Path]) -> list[QueueItem]:
        """Queue ``paths`` (image files) and start reading them; they are queued once read."""
        added = []
        for path in paths:
            item = self.model.add(path)
            added.append(item)
            self.loader.request(item.key, path)
        return added

    def resume(self) -> None:
        """New images arrived: a running batch takes them."""
        if self._batch:
            self._dispatch()

    def remove(self, keys: list[int]) -> set[int]:
        """Remove items (never the running one); returns the keys removed."""
        removable = {k for k in keys if k != self.running_key()}
        self.model.remove(removable)
        self.changed.emit()
        return removable

    def requeue(self, keys: list[int]) -> None:
        """Queue finished items again (e.g. to compare models); ``start`` runs them."""
        for key in keys:
            item = self.model.find(key)
            if item is not None and item.status in FINISHED_STATES and item.original is not None:
                self.model.update(key, QueueItem.requeue)

    def _set_expected(self, item: QueueItem) -> None:
        self.model.update(item.key, QueueItem.expect, *self.planner.expectation(item))

    def refresh_expected(self) -> None:
        """The settings changed: show what each waiting item will now become."""
        for item in self.model.items():
            if item.status in (PENDING, LOADING):
                self._set_expected(item)

    def _on_loaded(self, key: int, loaded: LoadedImage) -> None:
        item = self.model.update(key, QueueItem.read, loaded)
        if item is None:
            return
        if item.frames > 1:
            self.message.emit(f"{item.name}: {item.animation_note()}")
        self._set_expected(item)
        self.item_updated.emit(key)
        self.changed.emit()
        self.resume()

    def _on_load_failed(self, key: int, reason: str) -> None:
        item = self.model.update(key, QueueItem.fail, reason)
        if item is None:
            return
        self.message.emit(f"{item.name}: {reason}")
        self.changed.emit()
        self.item_finished.emit(key)
        self.resume()

    # ------------------------------------------------------------------ running
    def start(self, current: QueueItem | None) -> bool:
        """Upscale every queued image; with none queued, re-run ``current`` (to compare).

        False (with a message) when there is nothing to upscale.
        """
        pending = [i for i in self.model.items() if i.status in (PENDING, LOADING)]
        if not pending:
            if current is None or current.status == RUNNING or current.original is None:
                self.message.emit("Nothing to upscale: drop or open images first")
                return False
            self.model.update(current.key, QueueItem.requeue)
        self._batch = True
        self._active = True
        self._dispatch()
        return True

    def cancel(self) -> None:
        """Stop the running job (within one tile) and the batch; pending items stay queued."""
        if self._running is None:
            if self._batch:
                self._batch = False
                self._dispatch()
            return
        self._batch = False
        self.controller.cancel(self._running[0])
        self.message.emit("Cancelling…")
        self.changed.emit()

    def shutdown(self) -> None:
        """Stop dispatching (the window then cancels the worker and joins the threads)."""
        self._closing = True
        self._batch = False
        self._eta_timer.stop()

    def wait(self) -> None:
        """Join the image readers."""
        self.loader.wait()
        self.result_loader.wait()

    def _dispatch(self) -> None:
        """Send the next pending item to the worker if none is running, or go idle."""
        if self._closing:
            return
        if self._running is not None:
            self.changed.emit()
            return
        item = self.model.next_pending() if self._batch else None
        if item is None:
            if self._batch and any(i.status == LOADING for i in self.model.items()):
                self.changed.emit()  # more images are still being read: wait for them
                return
            self._batch = False
            self._eta_timer.stop()
            self.changed.emit()
            if self._active:
                self._active = False
                self.idle.emit()
            return
        spec = self.planner.job_spec(item)
        label = self.planner.job_label()
        self._set_expected(item)
        self.model.update(item.key, QueueItem.start, spec.job_id, label, self._finish_seconds(item))
        self._running = (spec.job_id, item.key)
        self.controller.submit(spec)
        self._eta_timer.start()
        self.job_started.emit(item.key)
        self.changed.emit()

    def _job_done(self, item: QueueItem) -> None:
        self._running = None
        self.job_ended.emit(item.key)
        self.item_finished.emit(item.key)
        self._dispatch()

    # ------------------------------------------------------------------ the worker's answers
    def _on_job_started(self, job_id: int) -> None:
        item = self._running_item(job_id)
        if item is not None:
            self.model.update(item.key, QueueItem.job_started)

    def _on_engine_ready(self, label: str, _device_label: str) -> None:
        item = self.model.find(self._running[1]) if self._running else None
        if item is not None:
            relabelled = item.job_label != label
            self.model.update(item.key, QueueItem.engine_ready, label)
            if relabelled:  # the engine knows best (e.g. a weights file's scale)
                self.item_updated.emit(item.key)

    def _on_progress(self, job_id: int, done: int, total: int) -> None:
        item = self._running_item(job_id)
        if item is None:
            return
        self.model.update(item.key, QueueItem.progress, done, total)
        self.progress.emit(done, total)

    def _on_tile(self, job_id: int, tile: QImage, x: int, y: int, width: int, height: int) -> None:
        item = self._running_item(job_id)
        if item is not None:
            self.tile_ready.emit(item.key, tile, x, y, width, height)

    def _on_job_finished(self, outcome: JobOutcome, preview: QImage) -> None:
        item = self._running_item(outcome.job_id)
        if item is None:
            return
        if item.last_tile_at is not None:  # learn how long saving took, for the next estimates
            pixels = outcome.out_size[0] * outcome.out_size[1]
            self._finish_rates.learn(
                format_key(outcome.dst.suffix), pixels, time.monotonic() - item.last_tile_at
            )
        saved = f"Saved {outcome.dst}"
        if outcome.filled_with:
            fill = BACKGROUNDS.get(outcome.filled_with, outcome.filled_with)
            saved += f" (JPEG has no transparency: transparent areas filled with {fill})"
        if item.frames > 1:
            saved += f"; {item.animation_note()}"
        result = Result(outcome.label, outcome.dst, preview, outcome.out_size, outcome.seconds)
        self.model.update(item.key, QueueItem.finish, result, saved)
        self.saved.emit(outcome)
        self.message.emit(saved)
        self._job_done(item)

    def _on_job_failed(self, job_id: int, reason: str) -> None:
        item = self._running_item(job_id)
        if item is None:
            return
        self.model.update(item.key, QueueItem.fail, reason)
        self.message.emit(f"{item.name}: {reason}")
        self._job_done(item)

    def _on_job_cancelled(self, job_id: int) -> None:
        item = self._running_item(job_id)
        if item is None:
            return
        self.model.update(item.key, QueueItem.cancel)
        self.message.emit(f"Cancelled {item.name}; nothing was saved")
        self._job_done(item)

    # ------------------------------------------------------------------ time left
    def _tick_eta(self) -> None:
        if self._running:
            self.model.changed(self._running[1])
        self.ticked.emit()

    def _finish_seconds(self, item: QueueItem) -> float:
        """Seconds expected for encoding and writing ``item``'s result, learned from earlier ones."""
        if item.expected_out is None:
            return 0.0
        pixels = item.expected_out[0] * item.expected_out[1]
        return self._finish_rates.seconds(self.planner.output_format(item), pixels)

    def queue_eta(self, now: float | None = None) -> float | None:
        """Seconds until the running image and every queued one are saved (None: not known yet)."""
        item = self.model.find(self._running[1]) if self._running else None
        if item is None or item.expected_out is None:
            return None
        queued = [
            (i.expected_out[0] * i.expected_out[1], self._finish_seconds(i))
            for i in self.model.items()
            if i.status == PENDING and i.expected_out is not None and self._batch
        ]
        return queue_seconds_left(
            time.monotonic() if now is None else now,
            item.first_tile_at,
            item.done,
            item.total,
            item.expected_out[0] * item.expected_out[1],
            item.finish_estimate,
            queued,
            item.last_tile_at,
        )

    # ------------------------------------------------------------------ across restarts
    def records(self) -> list[dict[str, object]]:
        """The queue as plain records; a running or unread item comes back as queued."""
        records: list[dict[str, object]] = []
        for item in self.model.items():
            status = item.status if item.status in FINISHED_STATES else PENDING
            records.append(
                {
                    "path": str(item.path),
                    "status": status,
                    "message": item.message if status in FINISHED_STATES else "",
                    "results": [
                        {"label": r.label, "path": str(r.path), "size": list(r.size), "seconds": r.seconds}
                        for r in item.results.values()
                    ],
                }
            )
        return records

    def restore(self, records: list[dict[str, object]]) -> int:
        """Queue again what ``records`` hold, with their results; returns how many were queued.

        Inputs that are gone are skipped; results whose files are gone are dropped, and an item
        left without any goes back to the queue instead of claiming "done".
        """
        restored = 0
        for record in records:
            path = Path(str(record["path"]))
            if not path.is_file():
                continue
            item = self.model.add(path)
            restored += 1
            raw = record.get("results", [])
            results = [r for r in raw if isinstance(r, dict)] if isinstance(raw, list) else []
            kept = [r for r in results if Path(str(r.get("path", ""))).is_file()]
            status = str(record.get("status", PENDING))
            if status in FINISHED_STATES and (kept or status != DONE):
                self.model.update(item.key, QueueItem.restore, status, str(record.get("message", "")))
            for r in kept:
                request = self._next_result_request
                self._next_result_request -= 1
                label = str(r.get("label", ""))
                size = r.get("size") or [0, 0]
                out_size = (int(size[0]), int(size[1]))
                self._result_requests[request] = (item.key, label, out_size, float(r.get("seconds", 0.0)))
                self.result_loader.request(request, Path(str(r["path"])))
                placeholder = Result(label, Path(str(r["path"])), QImage(), out_size, 0.0)
                self.model.update(item.key, QueueItem.add_result, placeholder)
            self.loader.request(item.key, path)
        return restored

    def _on_result_loaded(self, request: int, loaded: LoadedImage) -> None:
        info = self._result_requests.pop(request, None)
        item = self.model.find(info[0]) if info else None
        if info is None or item is None or info[1] not in item.results:
            return
        _key, label, size, seconds = info
        self.model.update(
            item.key, QueueItem.add_result, Result(label, loaded.path, loaded.image, size, seconds)
        )
        self.item_updated.emit(item.key)
