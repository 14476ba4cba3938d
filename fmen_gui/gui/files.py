"""Turning dropped, opened or pasted things into a list of images to queue.

Folders are scanned by the engine's one scan (:func:`fmen_gui.engine.jobs.walk_inputs`):
recursively, hidden folders skipped, unsupported files met in folders passed over (a folder of
photos also holds sidecar files); anything given directly that is not a supported image is
reported back (to become one status-bar line), never raised: a drop of mixed files must queue
the good ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fmen_gui.engine import images, jobs


@dataclass
class Collected:
    """Images found and the names of what was turned away."""

    images: list[Path] = field(default_factory=list)
    rejected: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    skipped_outputs: int = 0

    def summary(self) -> str:
        """One status-bar line about what was not queued, or "" when everything was."""
        parts = []
        if self.missing:
            parts.append(f"Not found: {_names(self.missing)}")
        if self.rejected:
            exts = ", ".join(sorted(images.SUPPORTED_EXTENSIONS))
            parts.append(f"Not a supported image: {_names(self.rejected)} (supported: {exts})")
        if self.skipped_outputs:
            parts.append(f"skipped {self.skipped_outputs} earlier result(s) in the folder")
        return "; ".join(parts)


def _names(paths: list[Path]) -> str:
    shown = ", ".join(p.name for p in paths[:3])
    return f"{shown} and {len(paths) - 3} more" if len(paths) > 3 else shown


def collect_images(paths: Iterable[Path], template: str = jobs.DEFAULT_TEMPLATE) -> Collected:
    """Expand folders (the engine's one scan, capped) and split supported images from the rest.

    ``template`` is the output name template in use: files named like its results are not
    queued again from a folder.
    """
    out = Collected()
    seen: set[Path] = set()
    for p, root, own in jobs.walk_inputs(paths, template, cap=jobs.MAX_SCAN):
        from_folder = root is not None
        key = p.resolve() if p.exists() else p
        if key in seen:
            continue
        seen.add(key)
        if images.is_supported(p) and p.is_file():
            if own:
                out.skipped_outputs += 1
            else:
                out.images.append(p)
        elif not from_folder:
            # A vanished file (or a broken link) is not "unsupported": say what is wrong with it.
            (out.rejected if p.exists() else out.missing).append(p)
    return out
