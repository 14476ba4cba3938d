"""The queue survives a quit or a crash: a small JSON file in the user's state folder.

Written after every change of the queue (debounced by the window) and atomically (through
the app's one atomic writer, :func:`fmen_gui.atomicfiles.atomic_file`), so a crash mid-write leaves
the previous queue, never a torn file. Only paths, states and result records are stored; the
pictures are read again from disk on restore, and results whose files are gone are dropped.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from fmen_gui import atomicfiles

log = logging.getLogger(__name__)

ENV_STATE_DIR = "FMEN_STATE_DIR"  # overrides the folder (tests, portable installs)
APP_NAME = "FMEN Upscaler"
FILE_NAME = "queue.json"
VERSION = 1


def state_dir() -> Path:
    """Per-user folder for state that is not a setting (the queue)."""
    override = os.environ.get(ENV_STATE_DIR)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def queue_file() -> Path:
    return state_dir() / FILE_NAME


def save_queue(items: list[dict[str, Any]], path: Path | None = None) -> None:
    """Write the queue atomically; an error is logged, never raised (the queue still works)."""
    path = path or queue_file()
    text = json.dumps({"version": VERSION, "items": items}, ensure_ascii=False, indent=1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomicfiles.atomic_file(path, overwrite=True) as out:
            out.file.write(text.encode("utf-8"))
    except OSError as exc:
        log.warning("could not save the queue to %s: %s", path, exc)


def load_queue(path: Path | None = None) -> list[dict[str, Any]]:
    """The saved items, or [] when there are none or the file is unreadable."""
    path = path or queue_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("ignoring the saved queue %s: %s", path, exc)
        return []
    if (
        not isinstance(data, dict)
        or data.get("version") != VERSION
        or not isinstance(data.get("items"), list)
    ):
        return []
    return [i for i in data["items"] if isinstance(i, dict) and isinstance(i.get("path"), str)]
