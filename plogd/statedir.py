"""The state directory (results, checkpoint, the sender's state): made private to plogd and
its group, and proven writable before a pipeline starts, so that a read-only or full
directory is one clear error (exit 2), not a stage that dies and restarts for ever."""
from __future__ import annotations

import os

from .errors import ConfigError

DIR_MODE = 0o750      # the numbers of the logs are for plogd and its group (e.g. zabbix)
FILE_MODE = 0o640     # results and checkpoints (umask may take more away, never add)
PROBE_BYTES = 4096    # a file system with less than a block free is full


def prepare(path: str) -> None:
    """Create `path` (DIR_MODE) if needed and write, fsync and remove a probe file in it;
    ConfigError saying what to do when it cannot."""
    probe = os.path.join(path, ".plogd-write-test")
    try:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            os.write(fd, bytes(PROBE_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise unwritable(path, e) from None


def unwritable(path: str, error: OSError, cost: str = "") -> ConfigError:
    """The error (exit 2) for a state dir that refused a write; `cost`: what was lost."""
    return ConfigError(f"state_dir {path}: cannot write there ({error.strerror}){cost}; plogd "
                       "keeps its results and checkpoint in it: make it writable by plogd and "
                       "free some space, or set another state_dir")
