"""One upscale job, defined once: what it is, where its result goes, and how it runs.

The command line and the GUI's worker used to carry three copies of this (with three ways of
refusing to write onto an input and two folder scans that disagreed). Now both describe work
with :class:`EngineSettings` (which network) and :class:`Job` (one file), and run it with
:func:`run` (``Engine.run``). What differs between them is a *policy*, not code:

- an output name that is already taken: :class:`OnExisting` — the CLI fails (``FAIL``) or,
  with ``--overwrite``, replaces (``OVERWRITE``); the window takes the next number
  (``NUMBER``, ``photo_fmen-s_x4 (2).png``). The final step enforces it atomically, so a file
  that appears while the job runs is never replaced without the user's word;
- an output that would land on any input of the run is refused, under every policy (with
  ``NUMBER`` the name is numbered first, so it never is one);
- folder scans (:func:`walk_inputs`) skip hidden folders and the app's own results, recognised
  by the name template actually in use (:func:`own_output_pattern`), so rescanning a folder
  does not upscale its results again, whatever ``--name`` or the window's template says.

Torch-free (the engine object is passed in), so the GUI thread and the CLI's argument checks
can use the names and rules without loading the network.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fmen_gui.atomicfiles import numbered_names, sweep_stale
from fmen_gui.engine.images import (
    DEFAULT_BACKGROUND,
    ImageData,
    fills_transparency,
    is_supported,
    output_format_for,
    read_image,
    write_image,
)
from fmen_gui.engine.names import DEFAULT_TEMPLATE, MODEL_KEYS, OUTPUT_FORMATS, SCALES, format_key
from fmen_gui.errors import Cancelled, FmenError, ImageError

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
TileFn = Callable[[np.ndarray, tuple[int, int, int, int]], None]

MAX_SCAN = 10000  # files a window's folder drop looks at: a drop of "/" must not freeze it


@dataclass(frozen=True)
class EngineSettings:
    """Everything that selects and places a network; changing any field but tile and ensemble reloads it."""

    model: str = "fmen-s"
    scale: int = 4
    weights: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    tile: int | str = "auto"
    ensemble: bool = False  # geometric self-ensemble: eight passes, "best quality"
    kind: str = "clean"  # which registry kind of weights (see engine/kinds.py); ignored with weights


class OnExisting(enum.Enum):
    """What to do when the output name is taken (never about inputs: those are always refused)."""

    FAIL = "fail"  # the CLI's default: one line, nothing written
    OVERWRITE = "overwrite"  # the CLI's --overwrite: replace it atomically
    NUMBER = "number"  # the window's: take "name (2).ext", "name (3).ext"…


@dataclass(frozen=True)
class Job:
    """One file to upscale and how its result is written."""

    src: Path
    dst: Path | None = None  # an explicit output file; None: named by ``template``
    out_dir: Path | None = None  # None: beside the input
    fmt: str | None = None  # None: the input's format (BMP and GIF become PNG)
    quality: int = 95
    template: str = DEFAULT_TEMPLATE
    tile: int | str | None = None  # None: the engine's setting
    ensemble: bool | None = None  # None: the engine's setting
    background: tuple[int, int, int] = DEFAULT_BACKGROUND  # fills transparency in JPEG output


@dataclass(frozen=True)
class JobResult:
    src: Path
    dst: Path
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    seconds: float
    label: str
    notes: tuple[str, ...] = ()  # one-line remarks for the user (tiles shrunk, 16-bit read as 8...)
    filled: bool = False  # see-through pixels were filled with the job's background (JPEG)
    # The result itself, for a caller that shows it (the window); None unless asked for.
    image: ImageData | None = field(default=None, repr=False, compare=False)


class Runner(Protocol):
    """What :func:`run` needs of an engine (``pipeline.Engine``; the GUI tests' fake)."""

    label: str
    scale: int
    model_key: str

    def plan(self, data: ImageData, **kw: Any) -> Any: ...

    def upscale_data(self, data: ImageData, **kw: Any) -> ImageData: ...


# ------------------------------------------------------------------------------------ naming


NAME_FIELDS: tuple[str, ...] = ("stem", "model", "scale", "ext")


def check_name_template(template: str) -> None:
    """Refuse an output name template that is not plain text with ``{stem}``-style fields.

    ``str.format`` would also evaluate attribute and index look-ups (``{stem.__class__}``,
    ``{stem[0]}``) and conversions, which make odd names at best and read internals at worst,
    so only the bare field names in :data:`NAME_FIELDS` are allowed (a format spec such as
    ``{scale:02d}`` is fine). Raises ImageError with the reason, before anything is loaded.
    """
    fields = ", ".join(f"{{{name}}}" for name in NAME_FIELDS)
    bad = f"bad name template {template!r}"
    if not template or not template.strip():
        raise ImageError(f"{bad}: it is empty")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ImageError(f"{bad}: {exc} (use {fields}; write {{{{ and }}}} for braces)") from None
    for _text, name, _spec, conversion in parsed:
        if name is None:
            continue
        if name not in NAME_FIELDS or conversion is not None:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + "}"
            raise ImageError(f"{bad}: {shown} is not allowed (use {fields})")
    try:
        example = template.format(stem="a", model="fmen-s", scale=4, ext="png")
    except (ValueError, TypeError) as exc:
        raise ImageError(f"{bad}: {exc}") from None
    if "/" in example or "\\" in example or example in (".", ".."):
        raise ImageError(f"{bad}: it must give a plain file name")


def output_path(
    src: Path,
    *,
    model_key: str,
    scale: int,
    out_dir: Path | None = None,
    fmt: str | None = None,
    template: str = DEFAULT_TEMPLATE,
) -> Path:
    """Where an input's result goes: same folder (or ``out_dir``), named by ``template``.

    Without ``fmt`` the input's format is kept when it is an output format; BMP and GIF
    inputs become PNG.
    """
    if fmt:
        ext = format_key(fmt)
        if ext not in OUTPUT_FORMATS:
            raise ImageError(f"unknown output format {fmt!r}: use {', '.join(OUTPUT_FORMATS)}")
    else:
        ext = format_key(src.suffix)
        if ext not in OUTPUT_FORMATS:
            ext = "png"
    check_name_template(template)
    stem = template.format(stem=src.stem, model=model_key, scale=scale, ext=ext)
    if not stem or "/" in stem or "\\" in stem:
        raise ImageError(f"bad name template {template!r}: it must give a plain file name")
    return (out_dir if out_dir is not None else src.parent) / f"{stem}.{ext}"


def unique_path(path: Path) -> Path:
    """``name (2).png`` style alternative when ``path`` is taken (a first guess: the writer
    takes the next number again if this one is taken by the time it finishes)."""
    for candidate in numbered_names(path):
        if not candidate.exists():
            return candidate
    raise ImageError(f"no free name for the output beside {path}")


_FIELD_PATTERNS = {
    "stem": r".+",
    "model": "(?:" + "|".join(re.escape(k) for k in (*MODEL_KEYS, "custom")) + ")",
    "scale": "(?:" + "|".join(str(s) for s in SCALES) + ")",
    "ext": "(?:" + "|".join(OUTPUT_FORMATS) + ")",
}
_NUMBERED = r"(?: \(\d+\))?"  # the window's "name (2)"


def own_output_pattern(template: str = DEFAULT_TEMPLATE) -> re.Pattern[str] | None:
    """A pattern matching the stems of results named by ``template``, or None.

    None when the template cannot tell a result from an input (``{stem}`` alone): skipping
    then would skip every picture. A field with a format spec (``{scale:02d}``) matches
    anything, as the spec may pad or cut it.
    """
    check_name_template(template)
    parts = []
    for text, name, spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(text))
        if name is not None:
            parts.append(_FIELD_PATTERNS[name] if not spec else r".+")
    pattern = re.compile("^" + "".join(parts) + _NUMBERED + "$")
    return None if pattern.match("photo") else pattern


def looks_like_own_output(path: Path, template: str = DEFAULT_TEMPLATE) -> bool:
    """Whether a file is named like a result of ``template`` (``photo_fmen-s_x4 (2).png``)."""
    pattern = own_output_pattern(template)
    return bool(pattern and pattern.match(Path(path).stem))


def walk_inputs(
    paths: Iterable[Path], template: str = DEFAULT_TEMPLATE, *, cap: int | None = None
) -> Iterator[tuple[Path, Path | None, bool]]:
    """The one folder scan: ``(path, folder it was found under or None, is an own result)``.

    Given files come back as given (whatever they are: the caller says what is wrong with
    them). Folders are walked recursively in name order, hidden folders (``.git``,
    ``.thumbnails``) skipped, and yield their images only, each flagged when its name is one
    of this template's results. ``cap`` bounds the files looked at per folder.
    """
    pattern = own_output_pattern(template)
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path, None, False
            continue
        count = 0
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                count += 1
                if cap is not None and count > cap:
                    break
                found = Path(root) / name
                if is_supported(found) and found.is_file():
                    yield found, path, bool(pattern and pattern.match(found.stem))
            if cap is not None and count > cap:
                break


# ------------------------------------------------------------------------------------ running


@dataclass
class Batch:
    """What the jobs of one run share: its inputs, the folders it made and swept, its outputs.

    ``inputs`` are never written onto; two jobs of a batch never claim one output name (with
    ``--overwrite`` too, which is about files of earlier runs only; under ``NUMBER`` the second
    takes the next number); each output folder is
    swept once for temp files of killed runs; ``created`` lists the folders the batch made, so
    the CLI can remove those left empty.
    """

    inputs: frozenset[Path] = frozenset()  # resolved paths
    swept: set[Path] = field(default_factory=set)
    created: list[Path] = field(default_factory=list)
    written: dict[str, Path] = field(default_factory=dict)  # output key -> its input
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, sources: Iterable[Path]) -> Batch:
        return cls(inputs=frozenset(p.resolve() for p in sources if p.exists()))

    def prepare_folder(self, folder: Path) -> None:
        """Create ``folder`` (recording what was made) and sweep it once."""
        missing = []
        probe = folder
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        for made in reversed(missing):
            try:
                made.mkdir(exist_ok=True)
            except OSError as exc:
                raise FmenError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None
            with self.lock:
                self.created.append(made)
        self.sweep(folder)

    def sweep(self, folder: Path) -> None:
        """Remove the temp files killed runs of this app left in ``folder``, once per batch.

        Never a live run's (see :func:`fmen_gui.atomicfiles.sweep_stale`).
        """
        key = folder.absolute()
        with self.lock:
            if key in self.swept:
                return
            self.swept.add(key)
        for path in sweep_stale(folder):
            log.info("removed %s, left behind by an earlier run that was killed", path)


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def destination(job: Job, runner: Runner, on_existing: OnExisting, batch: Batch | None = None) -> Path:
    """The output path of ``job`` under the rules, checked before any work is done.

    The existence checks here only save the work when the name is already taken; the
    guarantee is the final step's own (:func:`~fmen_gui.engine.images.write_image`).
    """
    dst = job.dst or output_path(
        job.src,
        model_key=runner.model_key,
        scale=runner.scale,
        out_dir=job.out_dir,
        fmt=job.fmt,
        template=job.template,
    )
    if on_existing is OnExisting.NUMBER:
        dst = unique_path(dst)
    inputs = batch.inputs if batch is not None else frozenset()
    if _same_file(dst, job.src) or dst.resolve() in inputs:
        raise ImageError("refusing to write the output onto an input file")
    if batch is not None and on_existing is not OnExisting.NUMBER and _key(dst) in batch.written:
        raise ImageError(
            f"output {dst} is also the output of {batch.written[_key(dst)]} in this run "
            "(use --name or separate folders to tell them apart)"
        )
    if on_existing is OnExisting.FAIL and dst.exists():
        raise ImageError(f"output already exists: {dst} (use --overwrite to replace it)")
    return dst


def run(
    runner: Runner,
    job: Job,
    *,
    on_existing: OnExisting = OnExisting.FAIL,
    batch: Batch | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_tile: TileFn | None = None,
    keep_image: bool = False,
) -> JobResult:
    """Name, read, plan, upscale and atomically write one image; inputs are never touched.

    The plan (memory, the format's size limits) comes before any network work; a cancel
    after the last tile still writes nothing.
    """
    start = time.perf_counter()
    batch = batch if batch is not None else Batch()
    dst = destination(job, runner, on_existing, batch)
    if not job.src.exists():
        raise ImageError("file not found")
    batch.prepare_folder(dst.parent)
    data = read_image(job.src)
    plan = runner.plan(
        data, pillow_format=output_format_for(dst, job.fmt), tile=job.tile, ensemble=job.ensemble
    )
    result = runner.upscale_data(
        data,
        tile=job.tile,
        ensemble=job.ensemble,
        progress=progress,
        cancel=cancel,
        on_tile=on_tile,
        plan=plan,
    )
    in_size = data.size
    del data  # the input is not needed while encoding
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    filled = fills_transparency(result, dst, job.fmt)
    dst = write_image(
        dst,
        result,
        fmt=job.fmt,
        quality=job.quality,
        overwrite=on_existing is OnExisting.OVERWRITE,
        numbered=on_existing is OnExisting.NUMBER,
        optimize=plan.optimize,
        background=job.background,
    )
    if on_existing is not OnExisting.NUMBER:  # a numbered name never collides: nothing to keep
        with batch.lock:
            batch.written[_key(dst)] = job.src
    return JobResult(
        job.src,
        dst,
        in_size,
        result.size,
        time.perf_counter() - start,
        str(runner.label),
        tuple(result.notes),
        filled,
        result if keep_image else None,
    )
