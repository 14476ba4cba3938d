"""The Help menu's windows: a first-use how-to, the shortcut table and About."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

HOWTO_TITLE = "Make pictures larger and sharper in four steps"
HOWTO = (
    "<ol>"
    "<li><b>Add images</b>: drop files or folders on the window, Open… (Ctrl+O), or paste "
    "(Ctrl+V).</li>"
    "<li><b>Choose</b> on the right: FMEN (quality) or FMEN-S (speed), the scale, and where and "
    "how to save (by default beside the input, in its own format).</li>"
    "<li><b>Upscale</b> (Ctrl+Enter). Tiles appear as they finish; Esc cancels and saves "
    "nothing.</li>"
    "<li><b>Compare</b>: drag the divider, wheel to zoom, drag to pan, hold Space for the "
    "original. Copy Result (Ctrl+Shift+C) or Open Output Folder (Ctrl+Shift+O).</li>"
    "</ol>"
    "<p>Right-click a queue item to upscale it again with other settings and compare both "
    "results side by side.</p>"
)
HOWTO_KEYS = (
    "In the view: ←/→ move the divider, hold Space to see the original. In the queue: Delete removes."
)


def shortcuts_dialog(parent: QWidget, rows: list[tuple[str, str]]) -> QDialog:
    """A table of (command, keys) rows, shown non-modally so it can stay open while working."""
    dialog = QDialog(parent)
    dialog.setObjectName("shortcutsDialog")
    dialog.setWindowTitle("Keyboard Shortcuts — FMEN Upscaler")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    table = QTableWidget(len(rows), 2, dialog)
    table.setHorizontalHeaderLabels(["Command", "Keys"])
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
    for r, (command, keys) in enumerate(rows):
        table.setItem(r, 0, QTableWidgetItem(command))
        table.setItem(r, 1, QTableWidgetItem(keys))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    layout.addWidget(QLabel(HOWTO_KEYS))
    dialog.resize(460, 560)
    dialog.show()
    return dialog


def howto_box(parent: QWidget) -> QMessageBox:
    """The few steps of a first use, shown non-modally."""
    box = QMessageBox(QMessageBox.Icon.Information, "How to use FMEN Upscaler", HOWTO_TITLE, parent=parent)
    box.setObjectName("howtoDialog")
    box.setInformativeText(HOWTO)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setModal(False)
    box.show()
    return box


def about_box(parent: QWidget) -> None:
    QMessageBox.about(
        parent,
        "About FMEN Upscaler",
        "<h3>FMEN Upscaler</h3><p>Image super-resolution with FMEN and FMEN-S "
        "(Du et al., NTIRE 2022 Efficient SR).</p>"
        "<p>Drag the divider or use ←/→, wheel to zoom, drag to pan, hold Space to see the "
        "original, 1/2 switch the view.</p>",
    )
