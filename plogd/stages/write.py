"""write: append closed windows to the result file (the spool) as value records, durably,
then commit the checkpoint.

A record, one JSON object per line (the full shape: plogd.outputs.base):
    {"host": "web01", "key": "nginx.status[200]", "clock": 1795976400, "ns": 0, "value": 12,
     "input": "nginx", "metric": "nginx.status", "group": {"status": 200}}
`clock` is the window's start and `ns` is fixed, so a value sent twice is stored once.

Order of a commit: the records are appended and fsynced, then the checkpoint (positions
and open windows) replaces the old one atomically. A crash between the two re-reads from the
older checkpoint and writes the same windows again, with the same values: a window is
identified by (host, key, clock), and a duplicate is harmless to every output.

A record is never left cut short (plogd.spool.SpoolWriter): an append the disk refuses is
undone, and a tail cut by a crash is removed when the file is opened.
"""
from __future__ import annotations

import logging

from .. import checkpoint
from ..messages import ClosedWindow
from ..spool import SpoolWriter

_log = logging.getLogger("plogd.write")

WINDOW_NS = 0   # every value of a window carries the window's start and this ns
DISK_RETRY = 1.0       # seconds between tries while the disk is full


def log_disk_full(path: str, error: OSError) -> None:
    _log.error("cannot write %s: %s. Reading waits; the write is tried again every %g s "
               "(nothing is lost: the logs hold what is not read yet)", path, error.strerror,
               DISK_RETRY)


def records(window: ClosedWindow, host: str) -> list[dict]:
    out = []
    for v in window.values:
        record = {"host": host, "key": v.key, "clock": window.start, "ns": WINDOW_NS,
                  "value": v.value, "input": window.input, "metric": v.metric}
        if v.group is not None:
            record["group"] = v.group
        if v.q is not None:
            record["q"] = v.q
        out.append(record)
    return out


class WriteStage:
    def __init__(self, result_path: str, checkpoint_path: str, host: str,
                 rotate_bytes: int = 0):
        self.result_path = result_path
        self.checkpoint_path = checkpoint_path
        self.host = host
        self._spool = SpoolWriter(result_path, rotate_bytes)
        self._appended: tuple | None = None   # (windows, records) appended, checkpoint not saved

    def commit(self, windows: list[ClosedWindow], state: dict | None) -> list[dict]:
        """Append the windows' records (fsync), then save `state` as the checkpoint;
        returns the records written. When the disk refuses (OSError), the result file is as
        it was or holds the whole commit: call again with the same arguments, and what was
        appended already is not appended twice."""
        if self._appended is None or self._appended[0] is not windows:
            written = [r for w in windows for r in records(w, self.host)]
            if written:
                self._spool.append(written)
            self._appended = (windows, written)
        written = self._appended[1]
        if state is not None:
            checkpoint.save(self.checkpoint_path, state)
        self._appended = None
        return written

    def close(self) -> None:
        self._spool.close()
