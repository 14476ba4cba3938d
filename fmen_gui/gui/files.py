"""Turning dropped, opened or pasted things into a list of images to queue.

Folders are scanned recursively; anything that is not a supported image is reported back
(to become one status-bar line), never raised: a drop of mixed files must queue the good ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fmen_gui.engine import images

MAX_SCAN = 10000  # a drop of "/" must not freeze the window forever


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


def collect_images(paths: Iterable[Path]) -> Collected:
    """Expand folders (recursively, sorted) and split supported images from the rest."""
    out = Collected()
    seen: set[Path] = set()

    def add(p: Path, from_folder: bool) -> None:
        key = p.resolve() if p.exists() else p
        if key in seen:
            return
        seen.add(key)
        if images.is_supported(p) and p.is_file():
            if from_folder and images.looks_like_own_output(p):
                out.skipped_outputs += 1
            else:
                out.images.append(p)
        elif not from_folder:
            # A vanished file (or a broken link) is not "unsupported": say what is wrong with it.
            (out.rejected if p.exists() else out.missing).append(p)
        # Unsupported files met while scanning a folder are silently passed over: a folder of
        # photos usually also holds sidecar files, and listing them would only be noise.

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            count = 0
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    count += 1
                    if count > MAX_SCAN:
                        break
                    add(Path(root) / name, True)
                if count > MAX_SCAN:
                    break
        else:
            add(path, False)
    return out
