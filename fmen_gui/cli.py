"""``fmen-upscale``: the command line over the same engine the desktop app uses.

Exit status: 0 when every input succeeded, 1 when some failed (one ``error: PATH: reason`` line
each, the others still processed), 2 for usage errors, 130 when interrupted. Expected errors
never print a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from fmen_gui.errors import Cancelled, FmenError

MODELS = ("fmen-s", "fmen")
SCALES = (2, 3, 4)
FORMATS = ("png", "jpg", "webp", "tiff")


class UsageError(Exception):
    """Bad arguments: exit status 2."""


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
    p.add_argument("--model", choices=MODELS, default=None, help="fmen-s (speed, default) or fmen (quality)")
    p.add_argument("--scale", type=int, choices=SCALES, default=None, help="2, 3 or 4 (default 4)")
    p.add_argument("--weights", type=Path, help="any FMEN-family checkpoint (its scale comes from the file)")
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
        "--format", choices=FORMATS, help="output format (default: the input's, BMP/GIF become PNG)"
    )
    p.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument("--name", default="{stem}_{model}_x{scale}", help="output name template (no extension)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.add_argument("--quiet", action="store_true", help="print errors only")
    p.add_argument("--list-models", action="store_true", help="show installed weights and where they are")
    p.add_argument("--fetch-official", action="store_true", help="download the authors' FMEN-S ×4 weights")
    return p


def _expand_inputs(inputs: Sequence[Path]) -> Iterator[tuple[Path, Path | None]]:
    """Yield (file, folder it was found under); explicit files are yielded as given."""
    from fmen_gui.engine.images import is_supported, looks_like_own_output

    for item in inputs:
        if item.is_dir():
            found = sorted(
                p for p in item.rglob("*") if p.is_file() and is_supported(p) and not looks_like_own_output(p)
            )
            for path in found:
                yield path, item
        else:
            yield item, None


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
    from fmen_gui.weights.registry import installed_weights, project_weights_dir, user_weights_dir

    entries = installed_weights()
    out.write("Installed weights:\n")
    if not entries:
        out.write("  (none)  run `fmen-upscale --fetch-official` for FMEN-S ×4, or pass --weights FILE\n")
    for e in entries:
        psnr = ", ".join(f"{k} {v:.2f} dB" for k, v in sorted(e.psnr.items())) if e.psnr else ""
        out.write(f"  {e.model:7} ×{e.scale}  {e.source:9} {e.path}  {psnr}\n")
    out.write(f"Bundled weights folder: {project_weights_dir()}\n")
    out.write(f"User weights folder:    {user_weights_dir()}\n")


def _resolve_output(
    args: argparse.Namespace, files: list[tuple[Path, Path | None]]
) -> tuple[Path | None, Path | None]:
    """Return (output folder, single output file) from -o."""
    from fmen_gui.engine.images import is_supported

    if args.output is None:
        return None, None
    single = len(files) == 1 and files[0][1] is None
    if single and is_supported(args.output) and not args.output.is_dir():
        return None, args.output
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"-o {args.output}: exists and is not a folder")
    return args.output, None


def run(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    quiet = args.quiet

    if args.fetch_official:
        from fmen_gui.weights.fetch import fetch_official

        try:
            path = fetch_official(progress=_download_progress(err, not quiet and err.isatty()))  # type: ignore[arg-type]
        except FmenError as exc:
            err.write(f"\nerror: download failed: {exc}\n")
            return 1
        if not quiet:
            err.write(f"\rsaved official FMEN-S ×4 weights to {path}\x1b[K\n")
    if args.list_models:
        list_models(out)
    if not args.inputs:
        if args.fetch_official or args.list_models:
            return 0
        build_parser().error("no INPUT given (or use --list-models / --fetch-official)")

    files = list(_expand_inputs(args.inputs))
    if not files:
        err.write("error: no supported images found in the given folders\n")
        return 1
    try:
        out_dir, out_file = _resolve_output(args, files)
    except UsageError as exc:
        build_parser().error(str(exc))

    from fmen_gui.engine.pipeline import Engine, EngineSettings, output_path

    settings = EngineSettings(
        model=args.model or "fmen-s",
        scale=args.scale or 4,
        weights=args.weights,
        device=args.device,
        precision=args.precision,
        tile=args.tile,
    )
    try:
        engine = Engine(settings)
    except FmenError as exc:
        where = f"{args.weights}: " if args.weights else ""
        err.write(_shown(f"error: {where}{exc}") + "\n")
        return 1
    if args.weights and args.scale and args.scale != engine.scale:
        build_parser().error(
            f"--scale {args.scale} conflicts with {args.weights}, which is a ×{engine.scale} model"
        )

    inputs_resolved = {p.resolve() for p, _ in files if p.exists()}
    progress = _Progress(err, not quiet)
    cancel = threading.Event()
    failures = 0
    for index, (src, root) in enumerate(files, 1):
        try:
            if out_file is not None:
                dst = out_file
            else:
                folder = out_dir
                if out_dir is not None and root is not None:
                    folder = out_dir / src.parent.relative_to(root)
                dst = output_path(
                    src,
                    model_key=engine.model_key,
                    scale=engine.scale,
                    out_dir=folder,
                    fmt=args.format,
                    template=args.name,
                )
            if dst.resolve() in inputs_resolved:
                raise FmenError("refusing to write the output onto an input file")
            if dst.exists() and not args.overwrite:
                raise FmenError(f"output already exists: {dst} (use --overwrite to replace it)")
            if not src.exists():
                raise FmenError("file not found")
            if out_dir is not None:
                dst.parent.mkdir(parents=True, exist_ok=True)
            progress.begin(f"[{index}/{len(files)}] {src.name}")
            result = engine.upscale_file(
                src,
                dst,
                fmt=args.format,
                quality=args.quality,
                overwrite=args.overwrite,
                progress=progress,
                cancel=cancel,
            )
            progress.end()
            if not quiet:
                (w0, h0), (w1, h1) = result.in_size, result.out_size
                out.write(_shown(f"{src} -> {dst}  {w0}×{h0} → {w1}×{h1}  {result.seconds:.2f}s") + "\n")
                for note in result.notes:  # what was adapted to fit, or lost (16 → 8 bits)
                    err.write(_shown(f"note: {src}: {note}") + "\n")
        except KeyboardInterrupt:
            cancel.set()
            progress.end()
            err.write("interrupted: the current output was not written\n")
            return 130
        except Cancelled:
            progress.end()
            return 130
        except (FmenError, OSError) as exc:
            progress.end()
            failures += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            err.write(_shown(f"error: {src}: {reason}") + "\n")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
