"""The checkpoint: one JSON file, replaced atomically (write a temp file, fsync, rename,
fsync the directory), so that after a crash it is either the old or the new one, whole.
The sender's state file is kept the same way."""
from __future__ import annotations

import json
import os
import time

from .statedir import FILE_MODE


class Damaged(ValueError):
    """A state file that is not a JSON object: truncated, empty, garbage (a disk or a hand
    did it; plogd replaces it atomically)."""


def save(path: str, state: dict) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with open(fd, "w", encoding="utf-8") as f:
        json.dump(state, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path: str) -> dict | None:
    """The saved state, None when there is none; Damaged when it is not a JSON object."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        state = json.loads(data)
    except ValueError as e:     # UnicodeDecodeError included
        raise Damaged(f"not JSON: {e}") from None
    if not isinstance(state, dict):
        raise Damaged(f"a JSON {type(state).__name__}, not an object")
    return state


def peek(path: str) -> dict:
    """For a process beside the file's writer (self-monitoring, the reader's spool check,
    plogd top): the file's JSON object, or {} when it is missing, being replaced or damaged
    (the writer itself deals with damage, see load)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def move_aside(path: str) -> str:
    """Rename a damaged state file to PATH.damaged-<time> (kept for a post-mortem)."""
    aside = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    os.replace(path, aside)
    return aside
