"""Which weights are installed, where they live, and which one to use for a model and scale.

Two folders hold weights, each with a ``manifest.json`` that lists its files:

* the *project* folder shipped with the app (``weights/`` in the repository, or inside the
  PyInstaller bundle): read-only, entries have source ``"bundled"``;
* the *user* folder (``<user data dir>/weights``): files fetched with ``--fetch-official``
  (source ``"official"``) or imported by the user (source ``"imported"``): FMEN-family
  checkpoints and models of the other architectures spandrel knows (ESRGAN, SPAN, SwinIR…).

Each entry is selected by its key ``(model, scale)``. FMEN files use the preset keys
``fmen-s``/``fmen`` (an import replaces the bundled default of its key) or ``custom``; every
other import gets a key of its own, a slug of its original file name (``4x-ultrasharp``), so
several ×4 models can sit side by side and be picked by name (``--model 4x-ultrasharp``).

This module must stay torch-free, directly and indirectly: the GUI calls it while the window
is first painted, before torch (seconds to import) has loaded. The one function that needs to
read a checkpoint, :func:`import_weights`, imports the loader inside its body.

Manifest format (both folders)::

    {"version": 1, "weights": [{"file": "fmen_s_x2.safetensors", "model": "fmen-s", "scale": 2,
      "sha256": "...", "params": 341066, "psnr": {"Set5": 37.1}, "training": {...}}]}

Imports add ``"source"``, ``"original_name"`` and, for any architecture, ``"arch"`` (spandrel's
name, e.g. ``"ESRGAN"``), ``"name"`` (the original stem, shown in menus) and ``"purpose"``
(``"SR"`` or ``"Restoration"``); all three are optional when read, a missing arch meaning FMEN.

Listing trusts the manifests (hashing every file at start-up would be slow); the hash is
checked when a file is fetched or imported.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

import fmen_gui
from fmen_gui.engine.names import MODEL_NAMES, model_display_name
from fmen_gui.errors import MissingWeightsError, WeightsError
from fmen_gui.weights.files import atomic_write_bytes, copy_atomically, sha256_file

log = logging.getLogger(__name__)

APP_NAME = "fmen-upscaler"
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

ENV_WEIGHTS_DIR = "FMEN_WEIGHTS_DIR"
ENV_DATA_DIR = "FMEN_DATA_DIR"

SOURCES = ("official", "imported", "bundled")
# Lower rank wins in available(): the user's own choices beat what ships with the app, and the
# authors' official file beats an arbitrary import of the same model.
_SOURCE_RANK = {source: rank for rank, source in enumerate(SOURCES)}
# What inputs a network was trained for: "clean" (bicubic-reduced images, the default) or
# "photo" (JPEG-compressed, noisy, blurred: see fmen_gui/training/degrade.py). A manifest
# entry without "kind" is clean; only clean weights are ever the default for a model.
KINDS = ("clean", "photo")

FETCH_HINT_KEY = ("fmen-s", 4)
FMEN_ARCH = "FMEN"  # the architecture of the presets and of "custom" (spandrel's id for it)
# Keys an import of another architecture never gets: the presets and the FMEN-family "custom".
RESERVED_KEYS = frozenset(MODEL_NAMES)
_SLUG_BAD = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class WeightsEntry:
    """One installed weights file, as described by its folder's manifest."""

    path: Path
    model: str  # "fmen-s", "fmen", "custom", or the slug key of an import of another architecture
    scale: int
    source: str  # "bundled", "official" or "imported"
    sha256: str
    params: int | None = None
    psnr: dict[str, float] = field(default_factory=dict, hash=False)  # a dict cannot be hashed
    kind: str = "clean"  # one of KINDS
    arch: str = FMEN_ARCH  # spandrel's architecture name: "FMEN", "ESRGAN", "SPAN", "SwinIR"…
    name: str = ""  # an import of another architecture: its original file's stem ("4x-UltraSharp")
    purpose: str = "SR"  # "SR" or "Restoration" (a 1× model)

    @property
    def key(self) -> tuple[str, int]:
        return (self.model, self.scale)

    @property
    def is_fmen(self) -> bool:
        """FMEN-family weights: the engine's exact tiles and fast paths apply."""
        return self.arch == FMEN_ARCH

    @property
    def display_name(self) -> str:
        """What a person calls it: the imported file's name, else ``FMEN-S``/``FMEN``."""
        return self.name or model_display_name(self.model)

    @property
    def label(self) -> str:
        """Menu text: ``FMEN-S ×4 (official)``, ``FMEN-S ×4 photo (bundled)``, or for another
        architecture ``4x-UltraSharp ×4 (ESRGAN, 16.7 M params, imported)``."""
        kind = "" if self.kind == "clean" else f" {self.kind}"
        if self.is_fmen:
            return f"{self.display_name} ×{self.scale}{kind} ({self.source})"
        details = [self.arch]
        if self.params is not None:
            details.append(f"{params_text(self.params)} params")
        details.append(self.source)
        return f"{self.display_name} ×{self.scale}{kind} ({', '.join(details)})"


def params_text(count: int) -> str:
    """``16697987`` → ``"16.7 M"``, ``25344`` → ``"25.3 k"``: parameter counts for people."""
    if count >= 1_000_000:
        return f"{count / 1e6:.1f} M"
    if count >= 1_000:
        return f"{count / 1e3:.1f} k"
    return str(count)


# --------------------------------------------------------------------------- folders


def project_weights_dir() -> Path:
    """The read-only weights shipped with the app.

    ``FMEN_WEIGHTS_DIR`` wins (tests, packagers); a PyInstaller bundle unpacks data under
    ``sys._MEIPASS``; otherwise it is the repository's top-level ``weights/`` folder.
    """
    override = os.environ.get(ENV_WEIGHTS_DIR)
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "weights"
    return Path(fmen_gui.__file__).resolve().parents[1] / "weights"


def user_data_dir() -> Path:
    """Per-user writable data folder; ``FMEN_DATA_DIR`` overrides it (tests point it at tmp)."""
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_weights_dir() -> Path:
    """Where fetched and imported weights are stored."""
    return user_data_dir() / "weights"


# --------------------------------------------------------------------------- manifests


def read_manifest(folder: Path) -> list[dict[str, Any]]:
    """Return the raw entries of ``folder/manifest.json``; no manifest means no entries.

    A manifest that exists but cannot be parsed raises :class:`WeightsError` rather than being
    treated as empty: silently ignoring it would hide installed weights, and the next import
    would overwrite the user's records.
    """
    path = folder / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"cannot read the weights manifest {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WeightsError(f"the weights manifest {path} is corrupt ({exc.msg}): fix or delete it") from None
    if not isinstance(data, dict) or not isinstance(data.get("weights"), list):
        raise WeightsError(f'the weights manifest {path} has no "weights" list: fix or delete it')
    if data.get("version") != MANIFEST_VERSION:
        raise WeightsError(
            f"the weights manifest {path} has version {data.get('version')!r}; "
            f"this app reads version {MANIFEST_VERSION}"
        )
    return [e for e in data["weights"] if isinstance(e, dict)]


def write_manifest(folder: Path, entries: list[dict[str, Any]]) -> None:
    """Replace ``folder/manifest.json`` atomically, so readers never see half a file."""
    text = json.dumps({"version": MANIFEST_VERSION, "weights": entries}, indent=2, ensure_ascii=False)
    try:
        atomic_write_bytes(folder / MANIFEST_NAME, (text + "\n").encode("utf-8"))
    except OSError as exc:
        raise WeightsError(f"cannot write the weights manifest in {folder}: {exc.strerror or exc}") from None


def record_entry(folder: Path, record: Mapping[str, Any]) -> None:
    """Add ``record`` to ``folder``'s manifest, replacing any entry for the same file."""
    entries = [e for e in read_manifest(folder) if e.get("file") != record["file"]]
    entries.append(dict(record))
    write_manifest(folder, entries)


def _entry_from_record(folder: Path, record: Mapping[str, Any], default_source: str) -> WeightsEntry | None:
    """Turn one manifest record into an entry, or ``None`` (with a log line) if unusable."""
    name = record.get("file")
    model = record.get("model")
    scale = record.get("scale")
    if not isinstance(name, str) or not isinstance(model, str) or type(scale) is not int:
        log.warning("ignoring malformed entry in %s: %r", folder / MANIFEST_NAME, record)
        return None
    # Manifest entries name files in their own folder only; "../x" or an absolute path would
    # let a tampered manifest point the app anywhere on disk.
    if Path(name).name != name or name in {"", ".", ".."}:
        log.warning("ignoring entry outside its folder in %s: %r", folder / MANIFEST_NAME, name)
        return None
    path = folder / name
    if not path.is_file():
        return None
    source = default_source if default_source == "bundled" else record.get("source", "imported")
    if source not in _SOURCE_RANK:
        source = "imported"
    kind = record.get("kind", "clean")
    if kind not in KINDS:
        log.warning("ignoring entry of unknown kind in %s: %r", folder / MANIFEST_NAME, record)
        return None
    arch = record.get("arch", FMEN_ARCH)
    if not isinstance(arch, str) or not arch:
        arch = FMEN_ARCH
    if arch != FMEN_ARCH and model in RESERVED_KEYS:
        # Only FMEN files may take a preset's key (and with it the preset's place as default).
        log.warning("ignoring %s entry under a preset key in %s: %r", arch, folder / MANIFEST_NAME, record)
        return None
    display = record.get("name")
    purpose = record.get("purpose")
    params = record.get("params")
    psnr_raw = record.get("psnr")
    psnr = (
        {str(k): float(v) for k, v in psnr_raw.items() if isinstance(v, int | float)}
        if isinstance(psnr_raw, dict)
        else {}
    )
    return WeightsEntry(
        path=path,
        model=model,
        scale=scale,
        source=source,
        sha256=str(record.get("sha256", "")),
        params=params if type(params) is int else None,
        psnr=psnr,
        kind=kind,
        arch=arch,
        name=display if isinstance(display, str) else "",
        purpose=purpose if isinstance(purpose, str) and purpose else "SR",
    )


def _entries_in(folder: Path, default_source: str) -> list[WeightsEntry]:
    entries = (_entry_from_record(folder, r, default_source) for r in read_manifest(folder))
    return [e for e in entries if e is not None]


def installed_weights() -> list[WeightsEntry]:
    """Every usable entry: the user folder's first, then the bundled ones.

    Entries whose file has gone missing are skipped, so deleting a file by hand is harmless.
    """
    return _entries_in(user_weights_dir(), "imported") + _entries_in(project_weights_dir(), "bundled")


def available(kind: str = "clean") -> dict[tuple[str, int], WeightsEntry]:
    """The entry of ``kind`` to use for each ``(model, scale)``.

    Priority: official > imported > bundled; among equals the later manifest entry (the more
    recent import) wins.
    """
    best: dict[tuple[str, int], WeightsEntry] = {}
    for entry in installed_weights():
        if entry.kind != kind:
            continue
        current = best.get(entry.key)
        if current is None or _SOURCE_RANK[entry.source] <= _SOURCE_RANK[current.source]:
            best[entry.key] = entry
    return best


def missing_message(model: str, scale: int) -> str:
    """One line saying what is missing and every way to get it."""
    ways = ["pass --weights FILE", "import a model file"]
    if (model, scale) == FETCH_HINT_KEY:
        ways.append("run `fmen-upscale --fetch-official`")
    how = f"{', '.join(ways[:-1])} or {ways[-1]}"
    return f"no weights installed for {model_display_name(model)} ×{scale}: {how}"


def find_weights(model: str, scale: int, kind: str = "clean") -> WeightsEntry:
    """The ``kind`` weights to use for ``model`` at ``scale``, or :class:`MissingWeightsError`."""
    model = model.lower()
    entry = available(kind).get((model, scale))
    if entry is None and kind != "clean":
        raise MissingWeightsError(
            f"no {kind} weights installed for {model_display_name(model)} ×{scale}: use the clean ones"
        )
    if entry is None:
        raise MissingWeightsError(missing_message(model, scale))
    return entry


# --------------------------------------------------------------------------- import


def imported_models() -> list[WeightsEntry]:
    """The installed entries that are not the FMEN presets, for the model menus.

    That is every import of another architecture plus FMEN-family files of another size
    (``custom``); imports of FMEN-S/FMEN weights simply replace the preset of their key.
    """
    return [e for e in installed_weights() if not e.is_fmen or e.model == "custom"]


def model_slug(stem: str) -> str:
    """A model key from a file's stem: lower-case ``[a-z0-9._-]``, e.g. ``"4x-ultrasharp"``.

    It must survive a command line (``--model KEY``, so no leading ``-``) and a file name.
    """
    slug = _SLUG_BAD.sub("-", stem.lower()).strip("-._")
    return re.sub(r"-{2,}", "-", slug) or "model"


def _unique_key(stem: str, sha: str, taken: set[str]) -> str:
    """``model_slug(stem)``, with ``-<sha6>`` added when another entry (or a preset) has it."""
    slug = model_slug(stem)
    if slug not in taken and slug not in RESERVED_KEYS:
        return slug
    for n in range(6, len(sha) + 1, 2):
        candidate = f"{slug}-{sha[:n]}"
        if candidate not in taken:
            return candidate
    raise WeightsError(f"cannot find a free model key for {stem!r}")  # only with 64-hex collisions


def import_weights(path: Path) -> WeightsEntry:
    """Validate a model file by loading it, then copy it into the user folder and register it.

    Any architecture :func:`fmen_gui.weights.models.load_file` accepts is taken (FMEN, ESRGAN,
    SPAN, SwinIR…: super-resolution or 1× restoration, RGB or one channel). The file is stored
    as ``<key>_x<scale>_<sha8>.<ext>``: importing the same file twice returns the entry already
    there, and two different files never collide. The copy and the manifest are each written
    atomically (the manifest last), so an interrupted import leaves at most an unlisted file.
    An invalid file raises :class:`WeightsError` and nothing is copied or recorded.
    """
    from fmen_gui.weights.models import load_file  # torch: only when actually importing

    path = Path(path)
    loaded = load_file(path)
    arch, scale, params, purpose = loaded.arch, loaded.scale, loaded.params, loaded.purpose
    fmen_key = loaded.fmen.key if loaded.fmen is not None else None
    del loaded
    try:
        sha = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"cannot read the file: {exc.strerror or exc}") from None
    folder = user_weights_dir()
    for existing in _entries_in(folder, "imported"):
        if existing.sha256 == sha:
            return existing
    if fmen_key is not None:
        key, name = fmen_key, ""
    else:
        key = _unique_key(path.stem, sha, {e.model for e in installed_weights()})
        name = path.stem
    suffix = path.suffix.lower()
    dest = folder / f"{key}_x{scale}_{sha[:8]}{suffix}"
    try:
        copied_sha = copy_atomically(path, dest)
    except OSError as exc:
        raise WeightsError(f"cannot copy the weights into {folder}: {exc.strerror or exc}") from None
    if copied_sha != sha:
        dest.unlink(missing_ok=True)
        raise WeightsError("the file changed while it was being imported; try again")
    record: dict[str, Any] = {
        "file": dest.name,
        "model": key,
        "scale": scale,
        "sha256": sha,
        "params": params,
        "psnr": {},
        "source": "imported",
        "original_name": path.name,
        "arch": arch,
        "name": name,
        "purpose": purpose,
    }
    try:
        record_entry(folder, record)
    except WeightsError:
        dest.unlink(missing_ok=True)
        raise
    return WeightsEntry(
        path=dest,
        model=key,
        scale=scale,
        source="imported",
        sha256=sha,
        params=params,
        arch=arch,
        name=name,
        purpose=purpose,
    )


def remove_weights(entry: WeightsEntry) -> None:
    """Remove an imported or fetched entry: its manifest record first, then its file.

    In that order so that a failure half-way leaves an unlisted file (harmless: nothing
    lists it, and importing the same file again replaces it) rather than a record pointing at
    nothing. Bundled
    weights ship with the app and are refused with :class:`WeightsError`.
    """
    if entry.source == "bundled":
        raise WeightsError(f"{entry.label} ships with the app and cannot be removed")
    folder = user_weights_dir()
    if entry.path.parent != folder:
        raise WeightsError(f"{entry.path} is not in the user weights folder {folder}")
    records = read_manifest(folder)
    kept = [r for r in records if r.get("file") != entry.path.name]
    if len(kept) == len(records):
        raise WeightsError(f"{entry.label} is not installed (already removed?)")
    write_manifest(folder, kept)
    try:
        entry.path.unlink(missing_ok=True)
    except OSError as exc:
        raise WeightsError(
            f"{entry.label} is no longer listed, but its file could not be deleted: {exc.strerror or exc}"
        ) from None
