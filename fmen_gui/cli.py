"""``fmen-upscale``: the command line over the same engine the desktop app uses.

Exit status: 0 when every input succeeded, 1 when some failed (one ``error: PATH: reason`` line
each, the others still processed), 2 for usage errors (bad arguments, an unusable ``--device``
or ``--precision``, a bad ``--name`` template), 130 when interrupted (Ctrl-C), 143 on SIGTERM
and 129 on SIGHUP (128 + the signal's number, as a shell reports a process killed by it).
Expected errors never print a traceback; an interrupted or terminated run removes the
temporary file of the image it was writing and the output folders it created and left empty.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn, TextIO

from fmen_gui.engine.kinds import AUTO, KIND_SETTINGS, KindChoice, kind_for_file
from fmen_gui.engine.names import DEFAULT_TEMPLATE, MODEL_KEYS, OUTPUT_FORMATS, SCALES
from fmen_gui.errors import Cancelled, FmenError

if TYPE_CHECKING:
    from fmen_gui.engine.pipeline import EngineSettings

MODELS = MODEL_KEYS
FORMATS = tuple(OUTPUT_FORMATS)


class UsageError(Exception):
    """Bad arguments: exit status 2."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C so every temporary file is removed.

    A BaseException, so that no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # One unwinding is enough: a second signal must not interrupt the cleanup of the first.
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP (a closed terminal, ``kill``, a service stop) unwind like Ctrl-C.

    Python's default for them is to die on the spot, leaving the hidden ``.part`` file of the
    image being written. Only the main thread can install handlers (the CLI's, not the GUI's).
    """
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_terminated)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _tile(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use a number of low-resolution pixels, 0 or auto") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no tiling), a positive number or auto")
    return value


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use a number from 1 to 100") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("use a number from 1 to 100")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="fmen-upscale",
        description="Upscale images with FMEN (quality) or FMEN-S (speed).",
        epilog="Outputs are named {stem}_{model}_x{scale}.{ext} beside each input unless -o is given.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", type=Path, help="image files or folders (recursive)")
    p.add_argument("-o", "--output", type=Path, help="output folder, or with one input file, the output file")
    p.add_argument(
        "-m",
        "--model",
        metavar="KEY",
        default=None,
        help="fmen-s (speed, default), fmen (quality), or the key of an imported model "
        "(see --list-models; its scale comes from the model)",
    )
    p.add_argument("--scale", type=int, choices=SCALES, default=None, help="2, 3 or 4 (default 4)")
    p.add_argument(
        "--weights",
        type=Path,
        help="a model file: FMEN or another architecture spandrel knows, .pth or .safetensors "
        "(its scale comes from the file)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "fp16", "bf16"),
        help="auto = fp16 on GPUs, exact fp32 on the CPU",
    )
    p.add_argument(
        "--tile", type=_tile, default="auto", help="tile size in low-res pixels, auto, or 0 for none"
    )
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="best quality: average the 8 flipped/rotated passes (8× the time, see README)",
    )
    p.add_argument(
        "--kind",
        choices=KIND_SETTINGS,
        default=AUTO,
        help="auto (default): the photo model for JPEGs of quality ≤ 90, and for PNGs whose pixels "
        "show they were such JPEGs, where one is installed, else the clean one; clean: "
        "bicubic-trained; photo: trained on JPEG, noise and blur",
    )
    p.add_argument(
        "--format", choices=FORMATS, help="output format (default: the input's, BMP/GIF become PNG)"
    )
    p.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument("--name", default=DEFAULT_TEMPLATE, help="output name template (no extension)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.add_argument("--quiet", action="store_true", help="print errors only")
    p.add_argument("--list-models", action="store_true", help="show installed models and where they are")
    p.add_argument(
        "--import-model",
        metavar="FILE",
        type=Path,
        help="copy a model file into the app's data folder and print the key to run it with",
    )
    p.add_argument(
        "--remove-model",
        metavar="KEY",
        help="remove an imported or downloaded model (bundled ones stay; --scale picks one scale)",
    )
    p.add_argument("--fetch-official", action="store_true", help="download the authors' FMEN-S ×4 weights")
    return p


def _shown(text: str) -> str:
    """``text`` as one printable line: control characters and undecodable name bytes escaped.

    A file name that is not valid UTF-8 reaches Python as lone surrogates, which a strict UTF-8
    stdout refuses with UnicodeEncodeError (a traceback halfway through a batch); a newline in a
    name would split an ``error:`` line in two. Ordinary names, accents and CJK included, pass
    unchanged.
    """
    if text.isprintable():
        return text
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in text)


class _Progress:
    """A one-line progress bar on a terminal; silent when not a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.prefix = ""
        self.start = time.perf_counter()

    def begin(self, prefix: str) -> None:
        self.prefix = _shown(prefix)
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 28
        filled = width * done // max(total, 1)
        elapsed = time.perf_counter() - self.start
        eta = f" eta {elapsed / done * (total - done):.0f}s" if 0 < done < total else ""
        bar = "█" * filled + "░" * (width - filled)
        self.stream.write(f"\r{self.prefix} {bar} {done}/{total} tiles{eta}\x1b[K")
        self.stream.flush()

    def end(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _download_progress(stream: TextIO, enabled: bool) -> object:
    def report(done: int, total: int | None) -> None:
        if not enabled:
            return
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        stream.write(f"\rdownloading official FMEN-S ×4 weights: {size}\x1b[K")
        stream.flush()

    return report


def list_models(out: TextIO) -> None:
    """Every installed model: key, scale, kind, source, architecture, parameters, file, PSNR."""
    from fmen_gui.weights.registry import (
        installed_weights,
        params_text,
        project_weights_dir,
        user_data_dir,
        user_weights_dir,
    )

    entries = installed_weights()
    out.write("Installed models (run one with --model KEY --scale N):\n")
    if not entries:
        out.write("  (none)  run `fmen-upscale --fetch-official` for FMEN-S ×4, or pass --weights FILE\n")
    width = max((len(e.model) for e in entries), default=0)
    for e in entries:
        params = params_text(e.params) if e.params is not None else "?"
        psnr = ", ".join(f"{k} {v:.2f} dB" for k, v in sorted(e.psnr.items())) if e.psnr else ""
        name = f"  {e.name}" if e.name else ""
        out.write(
            _shown(
                f"  {e.model:{width}} ×{e.scale}  {e.kind:5}  {e.source:9} {e.arch:18} {params:>8}  "
                f"{e.path}{name}  {psnr}".rstrip()
            )
            + "\n"
        )
    out.write(f"Bundled weights folder: {project_weights_dir()}\n")
    out.write(f"User weights folder:    {user_weights_dir()}\n")
    out.write(f"User data folder:       {user_data_dir()}\n")


def _import_model(path: Path, out: _Stdout, err: TextIO, quiet: bool) -> int:
    """``--import-model FILE``: validate, copy into the user folder, print how to run it."""
    from fmen_gui.atomicfiles import sweep_stale
    from fmen_gui.weights.registry import import_weights, user_weights_dir

    sweep_stale(user_weights_dir())
    try:
        entry = import_weights(path)
    except FmenError as exc:
        err.write(_shown(f"error: {path}: {exc}") + "\n")
        return 1
    if not quiet:
        run_it = f"--model {entry.model}" + ("" if entry.model not in MODELS else f" --scale {entry.scale}")
        out.line(_shown(f"imported {entry.label}: run it with {run_it}  ({entry.path})"))
    return 0


def _installed_keys_text() -> str:
    """``"span_x4, custom"``: the keys of the imported models, for error messages."""
    from fmen_gui.weights.registry import imported_models

    keys = sorted({e.model for e in imported_models()})
    return ", ".join(keys) if keys else "none"


def _remove_model(key: str, scale: int | None, out: _Stdout, err: TextIO, quiet: bool) -> int:
    """``--remove-model KEY``: remove the user's entries of KEY (at ``scale`` if given).

    Removing a preset key (``fmen-s``) removes the fetched or imported files of that key, so the
    bundled ones are used again; the bundled files themselves are refused.
    """
    from fmen_gui.weights.registry import installed_weights, remove_weights

    try:
        entries = [e for e in installed_weights() if e.model == key.lower()]
        if scale is not None:
            entries = [e for e in entries if e.scale == scale]
        mine = [e for e in entries if e.source != "bundled"]
        if not entries:
            at = f" ×{scale}" if scale is not None else ""
            err.write(
                _shown(
                    f"error: --remove-model {key}{at}: no such model is installed "
                    f"(imported: {_installed_keys_text()}; see --list-models)"
                )
                + "\n"
            )
            return 1
        if not mine:
            labels = ", ".join(e.label for e in entries)
            err.write(
                _shown(f"error: --remove-model {key}: {labels} ships with the app and cannot be removed")
                + "\n"
            )
            return 1
        for entry in mine:
            remove_weights(entry)
            if not quiet:
                out.line(_shown(f"removed {entry.label}  ({entry.path})"))
    except FmenError as exc:
        err.write(_shown(f"error: --remove-model {key}: {exc}") + "\n")
        return 1
    return 0


def _resolve_model(args: argparse.Namespace) -> tuple[str, int]:
    """The ``(model, scale)`` to run: a preset, or an installed import whose scale is its own.

    Reads the manifests only (no torch). An unknown key, or a ``--scale`` the model does not
    have, is a usage error naming what is installed.
    """
    model = (args.model or "fmen-s").lower()
    if model in MODELS:
        return model, args.scale or 4
    from fmen_gui.weights.registry import installed_weights

    scales = sorted({e.scale for e in installed_weights() if e.model == model})
    if not scales:
        build_parser().error(
            f"--model {args.model}: no such model; use fmen-s, fmen or an imported one "
            f"(imported: {_installed_keys_text()}; see --list-models)"
        )
    shown = " and ".join(f"×{s}" for s in scales)
    if args.scale is not None and args.scale not in scales:
        build_parser().error(f"--scale {args.scale} conflicts with --model {model}, which is a {shown} model")
    if args.scale is None and len(scales) > 1:
        build_parser().error(f"--model {model} is installed at {shown}: add --scale")
    return model, args.scale or scales[0]


def _resolve_output(
    args: argparse.Namespace, files: list[tuple[Path, Path | None]]
) -> tuple[Path | None, Path | None]:
    """Return (output folder, single output file) from -o."""
    from fmen_gui.engine.images import is_supported

    if args.output is None:
        return None, None
    single = len(files) == 1 and files[0][1] is None
    if single and is_supported(args.output) and not args.output.is_dir():
        _check_extension_matches_format(args.output, args.format)
        return None, args.output
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"-o {args.output}: exists and is not a folder")
    return args.output, None


def _check_extension_matches_format(path: Path, fmt: str | None) -> None:
    """``-o x.png --format jpg`` would put JPEG bytes in a ``.png`` file: refuse it."""
    from fmen_gui.engine.images import output_format_for
    from fmen_gui.errors import ImageError

    if fmt is None:
        return
    try:
        by_name = output_format_for(path, None)
    except ImageError:
        return  # .bmp, .gif: an input-only extension; the writer names the problem
    if by_name != output_format_for(path, fmt):
        raise UsageError(
            f"-o {path} is named as {by_name} but --format {fmt} was given: "
            f"change the extension or drop --format"
        )


class _Stdout:
    """The result lines on stdout, one per written image, flushed as they happen.

    Flushed per line so that a pipe reader sees progress. When the reader has gone
    (``fmen-upscale … | head -1``) the lines are dropped quietly and the batch goes on: the
    images are the product and stdout only the log, so a closed pipe must not turn a written
    file into a failure or print a traceback at exit.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def line(self, text: str) -> None:
        if self.gone:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except OSError:  # EPIPE above all; any other failure of the log is no image's failure
            self.gone = True
            _silence(self.stream)


def _silence(stream: TextIO) -> None:
    """Point a broken stream's descriptor at the null device so the exit-time flush is quiet."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)


def _remove_if_empty(created: list[Path]) -> None:
    """Remove the folders this run created and left empty, deepest first.

    ``rmdir`` refuses a folder with anything in it, so a folder that received a result (or a
    file from someone else meanwhile) stays; folders that existed before are never touched.
    """
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def run(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = _Stdout(stdout or sys.stdout)
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    created: list[Path] = []
    state = {"writing": False}
    try:
        return _run(args, out, err, created, state)
    except KeyboardInterrupt:
        err.write(
            "interrupted: the current output was not written\n" if state["writing"] else "interrupted\n"
        )
        return 130
    except Terminated as exc:
        what = ": the current output was not written" if state["writing"] else ""
        err.write(f"terminated by {exc.name}{what}\n")
        return 128 + exc.signum
    finally:
        _remove_if_empty(created)


def _run(
    args: argparse.Namespace, out: _Stdout, err: TextIO, created: list[Path], state: dict[str, bool]
) -> int:
    quiet = args.quiet

    if args.fetch_official:
        from fmen_gui.atomicfiles import sweep_stale
        from fmen_gui.weights.fetch import fetch_official
        from fmen_gui.weights.registry import user_weights_dir

        sweep_stale(user_weights_dir())
        try:
            path = fetch_official(progress=_download_progress(err, not quiet and err.isatty()))  # type: ignore[arg-type]
        except FmenError as exc:
            err.write(f"\nerror: download failed: {exc}\n")
            return 1
        if not quiet:
            err.write(f"\rsaved official FMEN-S ×4 weights to {path}\x1b[K\n")
    if args.import_model is not None and _import_model(args.import_model, out, err, quiet):
        return 1
    if args.remove_model is not None and _remove_model(args.remove_model, args.scale, out, err, quiet):
        return 1
    if args.list_models:
        list_models(out.stream)
    if not args.inputs:
        if args.fetch_official or args.list_models or args.import_model or args.remove_model:
            return 0
        build_parser().error(
            "no INPUT given (or use --list-models / --import-model / --remove-model / --fetch-official)"
        )
    try:
        model, scale = _resolve_model(args)
    except FmenError as exc:  # an unreadable manifest
        err.write(_shown(f"error: {exc}") + "\n")
        return 1

    from fmen_gui.engine import jobs

    try:
        jobs.check_name_template(args.name)
    except FmenError as exc:
        build_parser().error(_shown(str(exc)))
    # Folders: their images, less this template's own results (a rerun must not upscale them).
    files = [(path, root) for path, root, own in jobs.walk_inputs(args.inputs, args.name) if not own]
    if not files:
        err.write("error: no supported images found in the given folders\n")
        return 1
    try:
        out_dir, out_file = _resolve_output(args, files)
    except (UsageError, FmenError) as exc:
        build_parser().error(_shown(str(exc)))

    from fmen_gui.engine import devices
    from fmen_gui.engine.pipeline import Engine, EngineSettings

    # An unusable device or precision is a bad argument (exit 2), not a failed image.
    try:
        device = devices.resolve_device(args.device)
    except FmenError as exc:
        build_parser().error(f"--device {args.device}: {exc}")
    try:
        devices.resolve_dtype(args.precision, device)
    except FmenError as exc:
        build_parser().error(f"--precision {args.precision}: {exc}")

    settings = EngineSettings(
        model=model,
        scale=scale,
        weights=args.weights,
        device=args.device,
        precision=args.precision,
        tile=args.tile,
        ensemble=args.ensemble,
    )
    try:
        choose = _kind_chooser(args, settings)
    except FmenError as exc:
        err.write(_shown(f"error: {exc}") + "\n")
        return 1
    engines: dict[str, Engine] = {}
    for kind in choose.kinds:  # load now: bad weights fail before any job
        try:
            engines[kind] = Engine(replace(settings, kind=kind))
        except FmenError as exc:
            where = f"{args.weights}: " if args.weights else ""
            err.write(_shown(f"error: {where}{exc}") + "\n")
            return 1
    engine = next(iter(engines.values()))
    if args.weights and args.scale and args.scale != engine.scale:
        build_parser().error(
            f"--scale {args.scale} conflicts with {args.weights}, which is a ×{engine.scale} model"
        )

    batch = jobs.Batch.of(p for p, _ in files)
    batch.created = created  # the folders the run makes: removed again if left empty (run())
    policy = jobs.OnExisting.OVERWRITE if args.overwrite else jobs.OnExisting.FAIL
    progress = _Progress(err, not quiet)
    cancel = threading.Event()
    failures = 0
    for index, (src, root) in enumerate(files, 1):
        choice = choose(src)
        engine = engines[choice.kind]
        try:
            folder = out_dir
            if out_dir is not None and root is not None:
                folder = out_dir / src.parent.relative_to(root)
            job = jobs.Job(
                src, dst=out_file, out_dir=folder, fmt=args.format, quality=args.quality, template=args.name
            )
            jobs.destination(job, engine, policy, batch)  # the checks, before the progress line
            progress.begin(f"[{index}/{len(files)}] {src.name}")
            state["writing"] = True
            result = engine.run(job, on_existing=policy, batch=batch, progress=progress, cancel=cancel)
            state["writing"] = False
            progress.end()
        except (KeyboardInterrupt, Terminated):
            cancel.set()
            progress.end()
            raise
        except Cancelled:
            progress.end()
            return 130
        except (FmenError, OSError) as exc:
            state["writing"] = False
            progress.end()
            failures += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            err.write(_shown(f"error: {src}: {reason}") + "\n")
            continue
        if not quiet:  # outside the try: a closed stdout is not a failed image
            (w0, h0), (w1, h1) = result.in_size, result.out_size
            out.line(_shown(f"{src} -> {result.dst}  {w0}×{h0} → {w1}×{h1}  {result.seconds:.2f}s"))
            if choice.kind != "clean":  # the default network needs no word; another one does
                err.write(_shown(f"note: {src}: {choice.reason}") + "\n")
            for note in result.notes:  # what was adapted to fit, or lost (16 → 8 bits)
                err.write(_shown(f"note: {src}: {note}") + "\n")
    return 1 if failures else 0


@dataclass(frozen=True)
class _KindChooser:
    """The network kind of each input (``--kind``), asked as its job comes up: under Auto a
    PNG's pixels are read to find an earlier JPEG life, which should not hold up the first job."""

    setting: str
    photo: bool  # photo weights are installed for the model and scale
    given: KindChoice | None = None  # one network for every input (``--weights``)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds that may be chosen: their engines are loaded before any job."""
        if self.given is not None:
            return (self.given.kind,)
        if self.setting == AUTO:
            return ("clean", "photo") if self.photo else ("clean",)
        return (self.setting,)

    def __call__(self, src: Path) -> KindChoice:
        return self.given or kind_for_file(src, self.setting, self.photo)


def _kind_chooser(args: argparse.Namespace, settings: EngineSettings) -> _KindChooser:
    """How inputs get their network kind. ``--weights`` names one network, so every input gets
    it. An explicit ``--kind photo`` without installed photo weights is an error, not a silent
    fall-back to the clean ones."""
    from fmen_gui.weights.registry import available, find_weights

    if args.weights is not None:
        if args.kind == "photo":
            build_parser().error("--kind photo picks the installed photo weights; drop --weights or --kind")
        return _KindChooser(args.kind, False, KindChoice("clean", f"the weights in {args.weights}"))
    key = (settings.model, settings.scale)
    if args.kind == "photo":
        find_weights(*key, "photo")  # MissingWeightsError: one line, exit 1
    return _KindChooser(args.kind, key in available("photo"))


def _tolerant_streams() -> None:
    """Never crash on a character the console's encoding lacks (latin-1, cp1252, ascii).

    Result lines hold ×, → and file names in any script; a strict non-UTF-8 stdout raised
    UnicodeEncodeError after the first image. Unencodable characters become ``\\uXXXX``.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``fmen-upscale`` entry point: signals, console encoding, then :func:`run`.

    Ctrl-C or SIGTERM before :func:`run` has its own handlers in place (while Python imports
    torch, say) still ends with one line and 130/143, never a traceback.
    """
    try:
        install_signal_handlers()
        _tolerant_streams()
        code = run(argv)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    except Terminated as exc:
        sys.stderr.write(f"terminated by {exc.name}\n")
        code = 128 + exc.signum
    try:
        sys.stdout.flush()
    except OSError:
        _silence(sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
