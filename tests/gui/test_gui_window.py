"""The main window with a fake engine: drops, paste, queue, progress, cancel, failures, close."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from fmen_gui.errors import EngineError


def drop_paths(window, paths: list[Path]) -> None:  # type: ignore[no-untyped-def]
    """A real drag: enter first (a lone drop is ignored by Qt), then drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(window.width() // 2, window.height() // 2)  # PySide6 6.11: drag events take QPoint
    enter = QDragEnterEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    assert window.overlay.isVisible(), "no drop highlight while dragging"
    drop = QDropEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, drop)
    assert not window.overlay.isVisible()


def run_queue(qtbot, window, timeout: int = 20000) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.idle, timeout=timeout):
        window.start()


def test_dropping_files_and_a_folder_queues_them(
    wait_loaded, make_png, qtbot, make_window, images_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    nested = tmp_path / "folder" / "deeper"
    make_png(nested / "c.png")
    make_png(tmp_path / "folder" / "d.png")
    (tmp_path / "folder" / "notes.txt").write_text("not an image")
    make_png(tmp_path / "folder" / "d_fmen-s_x4.png")  # an earlier result: skipped
    drop_paths(window, [images_dir / "a.png", images_dir / "b.png", tmp_path / "folder"])
    wait_loaded(window, 4)
    names = [i.name for i in window.model.items()]
    assert names == ["a.png", "b.png", "d.png", "c.png"]  # a folder's files, then its subfolders
    assert all(i.status == "pending" for i in window.model.items())
    assert all(i.thumb is not None and i.in_size == (24, 24) for i in window.model.items())
    assert "Added 4 images" in window.statusBar().currentMessage()
    assert window.current_item() is not None and window.current_item().name == "a.png"


def test_dropping_a_text_file_is_rejected_with_a_message(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    drop_paths(window, [text])
    assert window.model.rowCount() == 0
    message = window.statusBar().currentMessage()
    assert "readme.txt" in message and "Not a supported image" in message
    assert not QApplication.activeModalWidget()


def test_a_corrupt_image_fails_its_item_only(
    wait_loaded, qtbot, make_window, tmp_path: Path, images_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    window.add_paths([bad, images_dir / "a.png"])
    wait_loaded(window, 2)
    items = {i.name: i for i in window.model.items()}
    assert items["broken.png"].status == "failed" and items["broken.png"].message
    assert items["a.png"].status == "pending"


def test_paste_queues_a_clipboard_image(wait_loaded, qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    image = QImage(16, 12, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.darkCyan)
    QGuiApplication.clipboard().setImage(image)
    window.paste_action.trigger()
    wait_loaded(window, 1)
    item = window.model.items()[0]
    assert item.in_size == (16, 12) and item.path.exists()


def test_upscale_shows_progress_and_saves(
    wait_loaded, qtbot, make_window, fake_pipeline, images_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.add_paths([images_dir / "a.png", images_dir / "b.png"])
    wait_loaded(window, 2)
    progress: list[tuple[int, int, int]] = []
    tiles: list[int] = []
    window.controller.worker.progress.connect(lambda j, d, t: progress.append((j, d, t)))
    window.controller.worker.tile_ready.connect(lambda j, *_: tiles.append(j))
    window.view.setFocus()
    with qtbot.waitSignal(window.idle, timeout=20000):
        qtbot.keyClick(window.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    items = window.model.items()
    assert [i.status for i in items] == ["done", "done"]
    for item in items:
        result = item.latest_result()
        assert result.path == images_dir / f"{item.path.stem}_fmen-s_x4.png"
        assert result.path.exists() and result.size == (96, 96)
        assert result.image.width() == 96
        job = [(d, t) for j, d, t in progress if j == item.job_id]
        assert [d for d, _ in job] == sorted(d for d, _ in job), "progress went backwards"
        assert job[-1][0] == job[-1][1] == 9
    assert tiles, "no tile was shown while running"
    assert len(fake_pipeline.Engine.created) == 1, "the model was reloaded between jobs"
    assert "Last run" in window.run_label.text() and window.device_label.text() == "Fake CPU"
    # The view shows the original against the result, which can be swapped for comparison.
    left, right = window.view.sources()
    assert left.is_original and right.label == "FMEN-S ×4"
    assert window.save_action.isEnabled()


def test_the_model_reloads_only_when_it_must(
    wait_loaded, qtbot, make_window, fake_pipeline, images_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window(pipeline=fake_pipeline)
    window.panel.refresh_weights = lambda: None  # type: ignore[method-assign]
    window.panel._missing = {}  # pretend every model and scale has weights
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    run_queue(qtbot, window)
    window.panel.tile_spin.setValue(64)  # a tile change needs no reload
    run_queue(qtbot, window)
    assert len(fake_pipeline.Engine.created) == 1
    window.panel.scale_buttons[2].setChecked(True)  # a scale change does
    run_queue(qtbot, window)
    assert len(fake_pipeline.Engine.created) == 2
    item = window.model.items()[0]
    assert list(item.results) == ["FMEN-S ×4", "FMEN-S ×2"]
    # Both results of the same picture can be put side by side.
    window.left_combo.setCurrentText("FMEN-S ×4")
    window.right_combo.setCurrentText("FMEN-S ×2")
    left, right = window.view.sources()
    assert (left.label, right.label) == ("FMEN-S ×4", "FMEN-S ×2")
    assert window.view.canvas_size().width() == 96


def test_cancel_mid_job_saves_nothing_and_the_next_job_runs(
    wait_loaded,
    qtbot,
    make_window,
    fake_pipeline,  # type: ignore[no-untyped-def]
    images_dir: Path,
) -> None:
    fake_pipeline.Engine.tile_delay = 0.3  # wide margin: a loaded CI machine must not finish first
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.add_paths([images_dir / "a.png", images_dir / "b.png"])
    wait_loaded(window, 2)
    window.start()
    a = window.model.items()[0]
    qtbot.waitUntil(lambda: a.done > 0, timeout=10000)  # mid-job: some tiles are done
    assert window.is_busy()
    qtbot.waitUntil(window.view.has_progress, timeout=5000)  # finished tiles are on show
    with qtbot.waitSignal(window.idle, timeout=10000):
        qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    b = window.model.items()[1]
    assert 0 < a.done < 9 or a.status == "cancelled"
    assert a.status == "cancelled" and b.status == "pending"
    assert not list(images_dir.glob("*_x4*")), "a cancelled job left a file"
    assert not window.is_busy() and window.upscale_action.isEnabled()
    assert not window.cancel_action.isEnabled()
    fake_pipeline.Engine.tile_delay = 0.0
    run_queue(qtbot, window)  # the queue goes on with the pending item
    assert b.status == "done" and b.latest_result().path.exists()


def test_a_failure_marks_its_item_and_the_queue_goes_on(
    wait_loaded,
    qtbot,
    make_window,
    fake_pipeline,  # type: ignore[no-untyped-def]
    images_dir: Path,
) -> None:
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    fake_pipeline.Engine.fail_with = EngineError("out of memory even with 32-pixel tiles")
    run_queue(qtbot, window)
    item = window.model.items()[0]
    assert item.status == "failed" and "out of memory" in item.message
    assert "out of memory" in window.statusBar().currentMessage()
    fake_pipeline.Engine.fail_with = None
    window.add_paths([images_dir / "b.png"])
    wait_loaded(window, 2)
    run_queue(qtbot, window)
    assert window.model.items()[1].status == "done"


def test_engine_bugs_are_reported_not_lost(
    wait_loaded, qtbot, make_window, fake_pipeline, images_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    fake_pipeline.Engine.fail_with = ZeroDivisionError("boom")
    run_queue(qtbot, window)
    item = window.model.items()[0]
    assert item.status == "failed" and "ZeroDivisionError" in item.message


def test_closing_during_a_job_cancels_cleanly(
    wait_loaded, qtbot, make_window, fake_pipeline, images_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    fake_pipeline.Engine.tile_delay = 0.2
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    asked: list[bool] = []
    window.confirm_close_during_job = lambda: asked.append(True) or False  # first answer: no
    window.start()
    qtbot.waitUntil(lambda: window.model.items()[0].done > 0, timeout=10000)
    assert not window.close()
    assert asked and window.isVisible() and window.is_busy()
    window.confirm_close_during_job = lambda: True
    assert window.close()
    assert window.controller.worker_thread.isFinished()
    assert not list(images_dir.glob("*_x4*"))


def test_devices_are_listed_by_name(qtbot, make_window, fake_pipeline, fake_devices) -> None:  # type: ignore[no-untyped-def]
    window = make_window(pipeline=fake_pipeline, devices=fake_devices)
    combo = window.panel.device_combo
    window.controller.probe()
    # (waitSignal on a worker-thread signal returns before the GUI thread has handled it)
    qtbot.waitUntil(lambda: combo.count() == 3, timeout=5000)
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert texts == ["Auto — CUDA 0: Fake RTX", "CUDA 0: Fake RTX", "CPU (2 threads)"]
    combo.setCurrentIndex(2)
    precisions = [
        window.panel.precision_combo.itemData(i) for i in range(window.panel.precision_combo.count())
    ]
    assert precisions == ["auto", "fp32"]


def test_scales_without_weights_are_disabled_with_the_reason(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os

    folder = Path(os.environ["FMEN_WEIGHTS_DIR"])
    (folder / "fmen_s_x4.pt").write_bytes(b"stand-in")
    manifest = {
        "version": 1,
        "weights": [{"file": "fmen_s_x4.pt", "model": "fmen-s", "scale": 4, "sha256": "0"}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    window = make_window()
    panel = window.panel
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("fmen-s"))
    assert panel.scale_buttons[4].isEnabled()
    assert not panel.scale_buttons[2].isEnabled()
    assert "No FMEN-S ×2 weights installed" in panel.scale_buttons[2].toolTip()
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("fmen"))
    assert not any(b.isEnabled() for b in panel.scale_buttons.values())
    assert panel.weights_problem()
    window.add_paths([tmp_path])  # nothing there; only to have the window in a normal state
    window.start()
    assert "No FMEN ×4 weights installed" in window.statusBar().currentMessage()


def test_space_flashes_the_original_from_anywhere_but_text_fields(
    wait_loaded, qtbot, make_window, images_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    window.activateWindow()
    window.queue_view.setFocus()
    qtbot.keyPress(window.queue_view, Qt.Key.Key_Space)
    assert window.view.flashing
    qtbot.keyRelease(window.queue_view, Qt.Key.Key_Space)
    assert not window.view.flashing
    window.panel.template_edit.setFocus()
    qtbot.keyClick(window.panel.template_edit, Qt.Key.Key_Space)
    assert not window.view.flashing


def test_view_shortcuts(wait_loaded, qtbot, make_window, images_dir: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_2)
    assert window.view.mode == "side" and window.settings.view_mode == "side"
    qtbot.keyClick(window.view, Qt.Key.Key_1)
    assert window.view.mode == "slider"
    qtbot.keyClick(window.view, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.view.zoom == 1.0
    qtbot.keyClick(window.view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.view.zoom == pytest.approx(window.view.fit_zoom())
    assert window.zoom_label.text().endswith("%")


def test_drop_target_accepts_only_urls(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()
    assert not window.overlay.isVisible()


def test_output_folder_is_created_and_rerun_adds_a_numbered_file(  # type: ignore[no-untyped-def]
    qtbot, make_window, wait_loaded, fake_pipeline, images_dir: Path, tmp_path: Path
) -> None:
    window = make_window(pipeline=fake_pipeline, weights=Path("fake.pt"))
    out = tmp_path / "new" / "folder"
    window.panel.folder_edit.setText(str(out))
    window.panel.format_combo.setCurrentIndex(window.panel.format_combo.findData("webp"))
    window.add_paths([images_dir / "a.png"])
    wait_loaded(window, 1)
    with qtbot.waitSignal(window.idle, timeout=20000):
        window.start()
    item = window.model.items()[0]
    with qtbot.waitSignal(window.idle, timeout=20000):
        window.rerun_items([item.key])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_fmen-s_x4 (2).webp", "a_fmen-s_x4.webp"]  # never overwritten
    assert window.windowTitle().startswith("a.png")
