"""Application start-up: arguments, logging, the crash dialog, and the scripted screenshot mode.

Start-up imports only Qt and the torch-free parts of the project; torch arrives later, in the
worker thread, so the window is on screen quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from fmen_gui import __version__
from fmen_gui.gui.settings import APPLICATION, ORGANISATION, SettingsStore

log = logging.getLogger("fmen_gui.gui")


class ErrorReporter:
    """Turns an exception escaping any Qt slot into a log entry and one visible dialog.

    PySide6 hands such exceptions to ``sys.excepthook``; by default they would be printed to a
    console that a windowed app does not have, i.e. lost. A dialog that is already open
    absorbs further errors (logged only) so a failing paint handler cannot stack up dialogs.
    """

    def __init__(self, parent: QWidget | None = None, show_dialog: bool = True) -> None:
        self.parent = parent
        self.show_dialog = show_dialog
        self._showing = False
        self.count = 0
        self._previous = sys.excepthook

    def install(self) -> None:
        sys.excepthook = self

    def uninstall(self) -> None:
        sys.excepthook = self._previous

    def __call__(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        self.count += 1
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unhandled exception:\n%s", text)
        if not self.show_dialog or self._showing or QApplication.instance() is None:
            return
        self._showing = True
        try:
            box = QMessageBox(
                QMessageBox.Icon.Critical,
                "FMEN Upscaler: unexpected error",
                f"{exc_type.__name__}: {exc}",
                QMessageBox.StandardButton.Ok,
                self.parent,
            )
            box.setInformativeText("The app keeps running. Details are in the log and below.")
            box.setDetailedText(text)
            box.exec()
        finally:
            self._showing = False


def _qt_message_handler(mode: QtMsgType, _context: object, message: str) -> None:
    """Route Qt's own warnings into Python logging instead of a hidden stderr."""
    level = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }.get(mode, logging.WARNING)
    logging.getLogger("qt").log(level, "%s", message)


def _quit_on_signals(app: QApplication) -> Callable[[], None]:
    """Make SIGTERM (logout, ``kill``) and Ctrl+C quit like the Quit command: settings saved,
    the worker joined, exit status 0.

    Python runs a signal handler only between two bytecodes, and Qt's event loop can sit in C++
    until the next event arrives, so a handler alone could wait for the next mouse move.
    ``signal.set_wakeup_fd`` makes the C-level handler write a byte to a socket that a
    QSocketNotifier watches: the loop wakes, Python gets control and runs the handler at once.
    Ctrl+C gets a handler too: the default one raises KeyboardInterrupt inside whatever Python
    code Qt happens to call next. Returns the function that puts everything back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals can only be handled on the main thread
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def drain() -> None:
        with contextlib.suppress(OSError):
            reader.recv(64)

    notifier.activated.connect(drain)
    previous = {
        signum: signal.signal(signum, lambda _signum, _frame: app.quit())
        for signum in (signal.SIGTERM, signal.SIGINT)
        if signal.getsignal(signum) is not signal.SIG_IGN  # e.g. Ctrl+C for a `cmd &` of a script
    }

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        reader.close()
        writer.close()

    return restore


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fmen-gui", description="FMEN Upscaler desktop app")
    parser.add_argument("files", nargs="*", type=Path, help="images or folders to queue")
    parser.add_argument("--weights", type=Path, help="use this weights file (model and scale come from it)")
    parser.add_argument("--upscale", action="store_true", help="start upscaling the queued files at once")
    parser.add_argument("--settings", type=Path, help="keep settings in this INI file (portable mode)")
    parser.add_argument(
        "--screenshot", type=Path, help="after the queue finishes, save a picture of the window here and quit"
    )
    parser.add_argument("--theme", choices=("dark", "light"), help="switch the theme (remembered)")
    parser.add_argument(
        "--new-instance",
        action="store_true",
        help="open a window of its own instead of handing the files to the running one",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="upscale the bundled sample with FMEN-S on the CPU, print the result and exit (0 = passed)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(list(argv))


def _screenshot_when_idle(window: object, path: Path, app: QApplication) -> None:
    """Scripted screenshot: wait for the queue, centre the divider, grab, quit."""
    from fmen_gui.gui.main_window import MainWindow

    assert isinstance(window, MainWindow)

    def grab() -> None:
        window.view.set_divider(0.5)
        window.view.fit()
        window.repaint()
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(path))
        log.info("screenshot %s: %s", path, "saved" if ok else "FAILED")
        app.quit()

    window.idle.connect(lambda: QTimer.singleShot(600, grab))


def startup_sweep_folders(output_dir: str, files: Sequence[Path]) -> list[Path]:
    """Folders where a killed earlier run may have left temporary files of this app.

    The user weights folder (downloads, imports), the configured output folder, and the
    folders of files named on the command line (results go beside them by default). Folders
    of images dropped later are swept by the worker before its first write there.
    """
    from fmen_gui.weights.registry import user_weights_dir  # torch-free

    folders = [user_weights_dir()]
    if output_dir:
        folders.append(Path(output_dir))
    folders += [Path(f).parent for f in files]
    return list(dict.fromkeys(folders))


def start_instance_server(files: Sequence[Path]) -> tuple[bool, QObject | None]:
    """(forwarded, server): hand ``files`` to a running instance, or become the one that listens.

    Without QtNetwork (a build that left it out) every start opens its own window, as before.
    """
    try:
        from fmen_gui.gui import single_instance
    except ImportError as exc:
        log.info("single instance unavailable: %s", exc)
        return False, None
    if single_instance.send_to_running(list(files)):
        return True, None
    server = single_instance.InstanceServer()
    server.listen()
    return False, server


def connect_instance(server: QObject, window: QWidget) -> None:
    """Queue the files a later start sent, and bring the window to the front."""
    from fmen_gui.gui.main_window import MainWindow

    assert isinstance(window, MainWindow)

    def received(paths: list[Path]) -> None:
        if paths:
            window.add_paths(paths)
        if window.isMinimized():
            window.showNormal()
        window.raise_()
        window.activateWindow()

    server.files_received.connect(received)  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window; files on the command line are queued."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.self_test:
        # No window: checks a build (or a bundle) where there is no screen. Imported here because
        # it brings in the engine and torch, which this module must not import directly.
        from fmen_gui.selftest import run_self_test

        return run_self_test()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("fmen-upscaler")
    qInstallMessageHandler(_qt_message_handler)
    server = None
    if not (args.new_instance or args.screenshot or os.environ.get("FMEN_GUI_EXIT_AFTER_SHOW")):
        forwarded, server = start_instance_server(args.files)
        if forwarded:
            log.info("handed %d file(s) to the running FMEN Upscaler", len(args.files))
            return 0

    from fmen_gui.gui.main_window import MainWindow

    store = SettingsStore.from_file(str(args.settings)) if args.settings else SettingsStore()
    if args.theme:
        settings = store.load()
        settings.theme = args.theme
        store.save(settings)
    # A scripted screenshot neither shows the user's last queue nor replaces it.
    window = MainWindow(store=store, weights_override=args.weights, keep_queue=not args.screenshot)
    reporter = ErrorReporter(window)
    reporter.install()
    restore_signals = _quit_on_signals(app)
    if server is not None:
        connect_instance(server, window)
    window.show()
    # Temp files of a run that was killed (never those of a live run): see atomicfiles.
    window.controller.sweep(startup_sweep_folders(store.load().output_dir, list(args.files or [])))
    if args.files:
        window.add_paths(list(args.files))
    if args.screenshot:
        _screenshot_when_idle(window, args.screenshot, app)
    if args.upscale:
        QTimer.singleShot(0, window.start)
    if os.environ.get("FMEN_GUI_EXIT_AFTER_SHOW"):
        # For the start-up benchmark: report once the event loop has painted the window.
        def shown() -> None:
            print(f"window shown, torch imported: {'torch' in sys.modules}", flush=True)
            app.quit()

        QTimer.singleShot(0, shown)
    else:
        # Listing devices imports torch: do it once the window has been painted.
        QTimer.singleShot(500, window.controller.probe)
    try:
        return app.exec()
    finally:
        restore_signals()
        window.shutdown()
        reporter.uninstall()
        if server is not None:
            server.close()  # type: ignore[attr-defined]
