"""What a photographer notices in the window (issue 11, section 4), with the real worker.

These tests run the real engine with the weights shipped in ``weights/`` (small inputs, ×2 or
×4 on the CPU), so what they check is what a user gets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gui.conftest import ROOT
from tests.test_transparency import assert_no_hidden_red, hidden_red_png

SHIPPED = ROOT / "weights"


@pytest.fixture
def shipped_weights(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Let the registry see the trained weights that ship with the app (all models, all scales)."""
    if not (SHIPPED / "manifest.json").exists():
        pytest.skip(f"needs the shipped weights in {SHIPPED}")
    monkeypatch.setenv("FMEN_WEIGHTS_DIR", str(SHIPPED))
    return SHIPPED


def choose(window, *, model: str | None = None, scale: int | None = None, fmt: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Pick settings through the panel's own widgets, as a user would."""
    panel = window.panel
    if model is not None:
        panel.model_combo.setCurrentIndex(panel.model_combo.findData(model))
    if scale is not None:
        panel.scale_buttons[scale].click()
    if fmt is not None:
        panel.format_combo.setCurrentIndex(panel.format_combo.findData(fmt))


def run_all(qtbot, window, timeout: int = 120000) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.idle, timeout=timeout):
        window.start()


# ------------------------------------------------------------------ 1. RGBA saved as JPEG
def test_rgba_to_jpeg_fills_transparency_with_white_and_says_so(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    src = hidden_red_png(tmp_path / "in" / "cutout.png")
    window = make_window()
    choose(window, model="fmen-s", scale=2, fmt="jpg")
    assert window.panel.background_combo.currentData() == "#ffffff"  # white by default
    window.add_paths([src])
    wait_loaded(window, 1)
    run_all(qtbot, window)
    item = window.model.items()[0]
    assert item.status == "done", item.message
    dst = item.latest_result().path
    assert dst.suffix == ".jpg"
    assert_no_hidden_red(dst, 2)
    message = window.statusBar().currentMessage()
    assert "transparent areas filled with white" in message, message
    # The shown result is what was saved: no transparency left in it.
    assert not item.latest_result().image.hasAlphaChannel()


def test_background_colour_is_a_setting(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path, store
) -> None:  # type: ignore[no-untyped-def]
    src = hidden_red_png(tmp_path / "in" / "cutout.png")
    window = make_window()
    choose(window, model="fmen-s", scale=2, fmt="jpg")
    combo = window.panel.background_combo
    combo.setCurrentIndex(combo.findData("#000000"))
    window.add_paths([src])
    wait_loaded(window, 1)
    run_all(qtbot, window)
    pixels = np.asarray(Image.open(window.model.items()[0].latest_result().path)).astype(int)
    assert pixels[:, :20].max() < 12, "transparent areas are not black"
    assert "filled with black" in window.statusBar().currentMessage()
    window.save_settings()
    assert store.load().background == "#000000"


# ------------------------------------------------------------------ 2. the running job's label
def test_running_label_is_the_jobs_own_model_and_scale(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path, make_png
) -> None:  # type: ignore[no-untyped-def]
    src = make_png(tmp_path / "in" / "photo.png", size=(64, 48))
    window = make_window()
    window.panel.tile_spin.setValue(32)  # several tiles: progress arrives while the job runs
    choose(window, model="fmen-s", scale=2)
    window.add_paths([src])
    wait_loaded(window, 1)
    run_all(qtbot, window)
    item = window.model.items()[0]
    assert list(item.results) == ["FMEN-S ×2"]

    # Re-run the same picture with FMEN ×4: while it runs, both the dropdown and the pane must
    # name FMEN ×4, not the earlier FMEN-S ×2 result.
    choose(window, model="fmen", scale=4)
    seen: list[tuple[str, str, bool]] = []

    def look(*_: object) -> None:  # the queue repaints the item after each tile (GUI thread)
        if item.status == "running" and item.done > 0:
            _left, right = window.view.sources()
            label = right.label if right else ""
            seen.append((window.right_combo.currentText(), label, window.view.has_progress()))

    window.model.dataChanged.connect(look)
    with qtbot.waitSignal(window.idle, timeout=120000):
        window.rerun_items([item.key])
    window.model.dataChanged.disconnect(look)
    assert seen, "no progress was seen while the job ran"
    assert all(s == ("FMEN ×4 (running…)", "FMEN ×4", True) for s in seen), seen
    assert list(item.results) == ["FMEN-S ×2", "FMEN ×4"]
    assert window.right_combo.currentText() == "FMEN ×4"  # the finished result replaces the entry
    assert window.view.sources()[1].label == "FMEN ×4"


# ------------------------------------------------------------------ 3. counts, selection, ETA
def test_failed_items_are_not_counted_as_done(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path, make_png
) -> None:  # type: ignore[no-untyped-def]
    good = make_png(tmp_path / "in" / "good.png", size=(20, 16))
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(good.read_bytes()[:60])  # a PNG cut short: its reading fails
    window = make_window()
    choose(window, model="fmen-s", scale=2)
    window.add_paths([good, broken])
    wait_loaded(window, 2)
    run_all(qtbot, window)
    statuses = [i.status for i in window.model.items()]
    assert statuses == ["done", "failed"]
    assert window.queue_title.text() == "Queue · 1/2 done · 1 failed"


def test_new_items_are_selected_and_scrolled_to(
    qtbot, make_window, wait_loaded, tmp_path: Path, make_png
) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    first = [make_png(tmp_path / "in" / f"{n:02d}.png", size=(8, 8), seed=n) for n in range(30)]
    window.add_paths(first)
    wait_loaded(window, 30)
    window.select(window.model.items()[0].key)
    window.queue_view.scrollToTop()
    late = [make_png(tmp_path / "late" / f"new{n}.png", size=(8, 8), seed=50 + n) for n in range(2)]
    added = window.add_paths(late)
    qtbot.waitUntil(lambda: window.current_item() is added[0])
    selected = {i.key for i in window.queue_view.selected_items()}
    assert selected == {i.key for i in added}
    viewport = window.queue_view.viewport().rect()
    for item in added:
        rect = window.queue_view.visualRect(window.model.index(window.model.row_of(item.key)))
        assert viewport.contains(rect), f"{item.name} is not scrolled into view"


def test_queue_title_shows_time_left_for_the_whole_batch(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path, make_png
) -> None:  # type: ignore[no-untyped-def]
    images = [make_png(tmp_path / "in" / f"p{n}.png", size=(64, 64), seed=n) for n in range(2)]
    window = make_window()
    window.panel.tile_spin.setValue(32)
    choose(window, model="fmen-s", scale=2)
    window.add_paths(images)
    wait_loaded(window, 2)
    titles: list[str] = []
    estimates: list[tuple[float | None, float | None]] = []

    def look(*_: object) -> None:  # the queue repaints the item after each tile (GUI thread)
        running = next((i for i in window.model.items() if i.status == "running"), None)
        if running is None or running.done == 0:  # no tile yet: no speed to tell the time from
            return
        estimates.append((running.eta_seconds(), window.queue_eta()))
        window._update_queue_title()  # what the half-second timer does
        titles.append(window.queue_title.text())

    window.model.dataChanged.connect(look)
    run_all(qtbot, window)
    window.model.dataChanged.disconnect(look)
    # While the first image runs with the second queued, the batch takes longer than the item.
    first_job = [e for e, t in zip(estimates, titles, strict=True) if "0/2 done" in t]
    assert first_job and all(q is not None and i is not None and q > i for i, q in first_job)
    assert any("left" in t for t in titles), titles
    assert "left" not in window.queue_title.text()  # idle: no estimate shown


# ------------------------------------------------------------------ 4. paste, open folder, copy
def test_pasted_image_and_its_result_go_to_pictures(
    qtbot, make_window, wait_loaded, shipped_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import platformdirs
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage

    pictures = tmp_path / "Pictures"
    monkeypatch.setattr(platformdirs, "user_pictures_dir", lambda: str(pictures))
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    window = make_window()
    choose(window, model="fmen-s", scale=2)
    image = QImage(20, 14, QImage.Format.Format_RGB888)
    image.fill(0x3366AA)
    QGuiApplication.clipboard().setImage(image)
    window.paste_action.trigger()
    wait_loaded(window, 1)
    item = window.model.items()[0]
    assert item.path.parent == pictures / "FMEN Upscaler"
    run_all(qtbot, window)
    result = item.latest_result()
    assert result.path.parent == pictures / "FMEN Upscaler" and result.path.exists()

    # Open Output Folder (Ctrl+Shift+O) shows that folder.
    assert window.open_folder_action.shortcut().toString() == "Ctrl+Shift+O"
    window.open_folder_action.trigger()
    assert [u.toLocalFile() for u in opened] == [str(pictures / "FMEN Upscaler")]

    # Copy Result (Ctrl+Shift+C): the full-size pixels and the file.
    assert window.copy_action.isEnabled()
    QGuiApplication.clipboard().clear()
    window.copy_action.trigger()
    copied = QGuiApplication.clipboard().image()
    assert (copied.width(), copied.height()) == (40, 28)
    saved = np.asarray(Image.open(result.path).convert("RGB"))
    rgb = copied.convertToFormat(QImage.Format.Format_RGB888)
    row_bytes = rgb.bytesPerLine()
    pixels = np.frombuffer(rgb.constBits(), np.uint8).reshape(28, row_bytes)[:, : 40 * 3].reshape(28, 40, 3)
    assert np.array_equal(pixels, saved)
    urls = QGuiApplication.clipboard().mimeData().urls()
    assert [u.toLocalFile() for u in urls] == [str(result.path)]


def test_pasted_image_goes_to_the_output_folder_when_one_is_set(
    qtbot, make_window, wait_loaded, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QGuiApplication, QImage

    out = tmp_path / "results"
    window = make_window()
    window.panel.folder_edit.setText(str(out))
    image = QImage(10, 10, QImage.Format.Format_RGB888)
    image.fill(0x808080)
    QGuiApplication.clipboard().setImage(image)
    window.paste()
    wait_loaded(window, 1)
    assert window.model.items()[0].path.parent == out


# ------------------------------------------------------------------ 5. same format as input
def test_output_format_defaults_to_the_inputs_like_the_cli(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path, store
) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("photo.jpg", "scan.bmp", "art.webp"):
        Image.fromarray(pixels).save(folder / name)
    window = make_window()
    assert window.panel.format_combo.currentText() == "Same as input"
    choose(window, model="fmen-s", scale=2)
    window.add_paths(sorted(folder.iterdir()))
    wait_loaded(window, 3)
    run_all(qtbot, window)
    outputs = {i.name: i.latest_result().path for i in window.model.items()}
    assert outputs["photo.jpg"].name == "photo_fmen-s_x2.jpg"
    assert outputs["scan.bmp"].name == "scan_fmen-s_x2.png"  # BMP is no output format
    assert outputs["art.webp"].name == "art_fmen-s_x2.webp"
    assert {Image.open(p).format for p in outputs.values()} == {"JPEG", "PNG", "WEBP"}
    window.save_settings()
    assert store.load().output_format == ""


# ------------------------------------------------------------------ 6. Help
def test_help_lists_the_real_shortcuts_and_has_a_howto(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QTableWidget

    window = make_window()
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions() if a.menu()}
    help_texts = [a.text().replace("&", "") for a in menus["Help"].actions() if a.text()]
    assert help_texts == ["How to Use", "Keyboard Shortcuts", "About FMEN Upscaler"]
    # Change a shortcut: the dialog follows the actions, it is not a written-out copy.
    window.copy_action.setShortcut(QKeySequence("Ctrl+Alt+K"))
    dialog = window.show_shortcuts()
    qtbot.waitExposed(dialog)
    table = dialog.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    expected = {
        a.text().replace("&", "").replace("…", ""): " or ".join(k.toString() for k in a.shortcuts())
        for a in window.actions()
        if a.shortcuts()
    }
    assert rows == expected
    assert rows["Copy Result"] == "Ctrl+Alt+K"
    assert rows["Upscale"] == "Ctrl+Return or Ctrl+Enter"
    assert rows["Open"] == "Ctrl+O" and rows["Keyboard Shortcuts"] == "Ctrl+/"
    dialog.close()
    box = window.show_howto()
    qtbot.waitExposed(box)
    assert "Ctrl+Enter" in box.informativeText() and "drop" in box.informativeText().lower()
    box.close()


# ------------------------------------------------------------------ 7. checkerboard, contrast
def test_transparency_is_shown_as_a_checkerboard(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QColor, QImage

    from fmen_gui.gui.compare_view import CHECKER_COLOURS, CHECKER_SQUARE, CompareView, Source

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    clear = QImage(100, 80, QImage.Format.Format_RGBA8888)
    clear.fill(QColor(255, 0, 0, 0))  # transparent, with red hidden underneath
    opaque = QImage(100, 80, QImage.Format.Format_RGB888)
    opaque.fill(QColor("#2060a0"))
    original = Source(clear, "Original", is_original=True)
    view.set_sources(original, Source(clear, "FMEN-S ×4"), original=original)
    view.set_mode("side")
    view.actual_size()
    shot = view.grab().toImage()
    area = view.image_rect(0).toRect().adjusted(2, 2, -2, -2)
    c = area.center()  # away from the label in the corner
    colours = {
        shot.pixelColor(x, y).name()
        for x in range(c.x(), c.x() + 4 * CHECKER_SQUARE)
        for y in range(c.y() + 8, c.y() + 8 + 4 * CHECKER_SQUARE)
    }
    assert colours == set(CHECKER_COLOURS), colours
    assert QColor(255, 0, 0).name() not in colours
    # An opaque image covers it completely.
    view.set_sources(Source(opaque, "Original", is_original=True), Source(opaque, "x"))
    view.actual_size()
    shot = view.grab().toImage()
    area = view.image_rect(0).toRect().adjusted(2, 2, -2, -2)
    assert shot.pixelColor(area.center()).name() == "#2060a0"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_secondary_text_meets_wcag_contrast(qtbot, theme: str) -> None:  # type: ignore[no-untyped-def]
    import qdarktheme
    from PySide6.QtGui import QColor, QPalette

    from fmen_gui.gui.queue import STATUS_COLOURS
    from fmen_gui.gui.theme import MIN_TEXT_CONTRAST, TEXT_COLOURS, apply_theme, contrast_ratio, text_colour

    palette = qdarktheme.load_palette(theme)  # the colours the theme really paints with
    window, base = (palette.color(r).name() for r in (QPalette.ColorRole.Window, QPalette.ColorRole.Base))
    # A selected queue card: the accent at alpha 40 over the base colour.
    accent, card = QColor(STATUS_COLOURS["running"]), QColor(base)
    a = 40 / 255
    selected = QColor(
        *(round(getattr(accent, c)() * a + getattr(card, c)() * (1 - a)) for c in ("red", "green", "blue"))
    ).name()
    for role, colour in TEXT_COLOURS[theme].items():
        for background in (window, base, selected):
            ratio = contrast_ratio(colour, background)
            assert ratio >= MIN_TEXT_CONTRAST, f"{theme} {role} {colour} on {background}: {ratio:.2f}:1"
    body = palette.color(QPalette.ColorRole.Text).name()
    assert contrast_ratio(body, base) >= MIN_TEXT_CONTRAST
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    apply_theme(theme)
    assert text_colour("done") == TEXT_COLOURS[theme]["done"]  # what the queue paints with now


# ------------------------------------------------------------------ 8. animations
def test_animations_are_marked_first_frame_only(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    folder = tmp_path / "anim"
    folder.mkdir()
    frames = [Image.new("RGB", (12, 10), c) for c in ("red", "green", "blue")]
    for name in ("spin.gif", "spin.webp", "spin.png"):
        frames[0].save(folder / name, save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (12, 10), "white").save(folder / "still.png")
    window = make_window()
    choose(window, model="fmen-s", scale=2)
    window.add_paths([folder / n for n in ("spin.gif", "spin.webp", "spin.png", "still.png")])
    wait_loaded(window, 4)
    items = {i.name: i for i in window.model.items()}
    for name in ("spin.gif", "spin.webp", "spin.png"):
        index = window.model.index(window.model.row_of(items[name].key))
        assert "First frame only (animation of 3 frames)" in index.data(Qt.ItemDataRole.ToolTipRole)
        # FMEN-S ×2 has a photo model, so the card also names the kind Auto chose for it.
        assert "· first frame only" in items[name].size_text()
    assert items["still.png"].frames == 1 and "first frame" not in items["still.png"].size_text()
    window.remove_items([items[n].key for n in ("spin.webp", "spin.png", "still.png")])
    run_all(qtbot, window)
    assert "first frame only" in window.statusBar().currentMessage()
    assert "first frame only" in items["spin.gif"].message


# ------------------------------------------------------------------ 10. the queue across restarts
def test_queue_and_finished_results_come_back_after_a_restart(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path, make_png
) -> None:  # type: ignore[no-untyped-def]
    import json

    from fmen_gui.gui.session import queue_file

    done_src = make_png(tmp_path / "in" / "done.png", size=(16, 12), seed=1)
    gone_src = make_png(tmp_path / "in" / "gone.png", size=(16, 12), seed=2)
    window = make_window()
    choose(window, model="fmen-s", scale=2)
    window.add_paths([done_src, gone_src])
    wait_loaded(window, 2)
    run_all(qtbot, window)
    waiting = make_png(tmp_path / "in" / "waiting.png", size=(16, 12), seed=3)
    window.add_paths([waiting])
    wait_loaded(window, 3)
    results = {i.name: i.latest_result() for i in window.model.items() if i.results}
    window.shutdown()  # quit
    saved = json.loads(queue_file().read_text())
    assert [r["path"] for r in saved["items"]] == [str(done_src), str(gone_src), str(waiting)]
    assert not list(queue_file().parent.glob(".queue-*")), "a temporary file was left behind"
    results["gone.png"].path.unlink()  # a result deleted while the app was closed

    again = make_window()
    qtbot.waitUntil(
        lambda: len(again.model.items()) == 3 and all(i.original is not None for i in again.model.items())
    )
    items = {i.name: i for i in again.model.items()}
    assert items["done.png"].status == "done" and list(items["done.png"].results) == ["FMEN-S ×2"]
    qtbot.waitUntil(lambda: not items["done.png"].results["FMEN-S ×2"].image.isNull())
    restored = items["done.png"].results["FMEN-S ×2"]
    assert restored.path == results["done.png"].path and restored.size == (32, 24)
    assert (restored.image.width(), restored.image.height()) == (32, 24)
    assert items["gone.png"].status == "pending" and not items["gone.png"].results
    assert items["waiting.png"].status == "pending"
    assert again.queue_title.text() == "Queue · 1/3 done"


def test_a_crash_mid_job_restores_the_item_as_queued(qtbot, make_window, make_png, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fmen_gui.gui.session import load_queue, queue_file, save_queue

    src = make_png(tmp_path / "in" / "a.png")
    save_queue([{"path": str(src), "status": "running", "message": "", "results": []}])
    queue_file().with_name("junk").write_text("{")  # unrelated files do not matter
    window = make_window()
    qtbot.waitUntil(lambda: window.model.items() and window.model.items()[0].status == "pending")
    queue_file().write_text("{ torn")  # a torn file (cannot happen with the atomic write) is ignored
    assert load_queue() == []


# ------------------------------------------------------------------ 11. memory of big jobs
def test_reduced_preview_is_a_box_mean_in_8_bits() -> None:
    from fmen_gui.gui.imaging import preview_factor, reduced_preview

    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    alpha = np.full((4, 6), 255, np.uint8)
    alpha[0, 0] = 0
    out = reduced_preview(rgb, alpha, 2)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    expected = rgb.astype(float).reshape(2, 2, 3, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(out[..., :3], np.floor(expected + 0.5).astype(np.uint8))
    assert out[0, 0, 3] == 191 and out[1, 2, 3] == 255  # (0 + 3 × 255) / 4, rounded
    deep = reduced_preview(rgb.astype(np.uint16) * 257, None, 1)
    assert np.array_equal(deep, rgb)
    assert preview_factor(24000, 16000, 16_000_000) == 5  # 4800 × 3200
    assert preview_factor(4000, 4000, 16_000_000) == 1


def test_progress_canvas_of_a_huge_job_is_reduced(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QColor, QImage

    from fmen_gui.gui.compare_view import PROGRESS_MAX_PIXELS, CompareView, Source

    view = CompareView()
    qtbot.addWidget(view)
    original = QImage(6000, 4000, QImage.Format.Format_RGB888)
    original.fill(QColor("gray"))
    view.set_sources(Source(original, "Original", is_original=True), None)
    view.begin_progress(QSize(24000, 16000))
    partial = view._partial
    assert partial.width() * partial.height() <= PROGRESS_MAX_PIXELS * 1.01
    assert view.canvas_size() == QSize(24000, 16000)  # the picture keeps its true size
    tile = QImage(1200, 800, QImage.Format.Format_RGB888)
    tile.fill(QColor("#ff0000"))
    view.paste_tile(tile, 12000, 8000)
    f = partial.width() / 24000
    inside = partial.pixelColor(round(12600 * f), round(8400 * f))
    outside = partial.pixelColor(round(6000 * f), round(4000 * f))
    assert inside.name() == "#ff0000" and outside.alpha() == 0


def test_big_results_are_kept_as_reduced_previews(
    qtbot, make_window, wait_loaded, shipped_weights: Path, tmp_path: Path, make_png, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QGuiApplication

    import fmen_gui.gui.imaging as imaging

    monkeypatch.setattr(imaging, "PREVIEW_MAX_PIXELS", 1000)  # "big" = more than 1000 pixels here
    src = make_png(tmp_path / "in" / "wide.png", size=(64, 48))
    window = make_window()
    choose(window, model="fmen-s", scale=2)
    window.add_paths([src])
    wait_loaded(window, 1)
    run_all(qtbot, window)
    result = window.model.items()[0].latest_result()
    assert result.size == (128, 96)
    assert (result.image.width(), result.image.height()) == (32, 24)  # 128 // 4, 96 // 4
    _left, right = window.view.sources()
    assert right.label == "FMEN-S ×2 (preview 25%)"
    assert window.view.canvas_size() == QSize(128, 96)
    window.copy_action.trigger()  # the clipboard gets the saved file's full pixels
    assert QGuiApplication.clipboard().image().width() == 128
