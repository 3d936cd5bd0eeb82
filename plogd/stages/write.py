"""write: append closed windows to the result file as Zabbix value records, durably, then
commit the checkpoint.

The result file holds one JSON object per line, exactly what is sent to Zabbix:
    {"host": "web01", "key": "nginx.requests", "clock": 1795976400, "ns": 0, "value": 1234}
`clock` is the window's start and `ns` is fixed, so a value sent twice is stored once.

Order of a commit: the records are appended and fsynced, then the checkpoint (positions
and open windows) replaces the old one atomically. A crash between the two re-reads from the
older checkpoint and writes the same windows again, with the same values: a window is
identified by (host, key, clock), and a duplicate is harmless in Zabbix.

A record is never left cut short: an append the disk refuses is undone, and a tail cut by a
crash is removed when the file is opened (the checkpoint was not saved after it, so its window
is written again). Otherwise the next record would be glued to the fragment, and the sender
would skip both.
"""
from __future__ import annotations

import errno
import json
import logging
import os

from .. import checkpoint
from ..messages import ClosedWindow
from ..statedir import DIR_MODE, FILE_MODE

_log = logging.getLogger("plogd.write")

WINDOW_NS = 0   # every value of a window carries the window's start and this ns
TAIL_CHUNK = 1 << 16   # read backwards in these steps to find the last complete record
DISK_RETRY = 1.0       # seconds between tries while the disk is full


def disk_full(error: OSError) -> bool:
    """The disk or the quota is full: wait for room (an operator, the sender's clean-up)."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def log_disk_full(path: str, error: OSError) -> None:
    _log.error("cannot write %s: %s. Reading waits; the write is tried again every %g s "
               "(nothing is lost: the logs hold what is not read yet)", path, error.strerror,
               DISK_RETRY)


def records(window: ClosedWindow, host: str) -> list[dict]:
    return [{"host": host, "key": key, "clock": window.start, "ns": WINDOW_NS, "value": value}
            for key, value in window.values]


def encode(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n"


class WriteStage:
    def __init__(self, result_path: str, checkpoint_path: str, host: str, inputs=(),
                 rotate_bytes: int = 0):
        from .send import LLDTagger
        self._lld = LLDTagger(inputs)   # by: metrics' records name their member for discovery
        self.rotate_bytes = rotate_bytes   # rename to results.jsonl.N past this size (0: never)
        self.result_path = result_path
        self.checkpoint_path = checkpoint_path
        self.host = host
        os.makedirs(os.path.dirname(os.path.abspath(result_path)), mode=DIR_MODE, exist_ok=True)
        self._fd = self._open()
        self._appended: tuple | None = None   # (windows, records) appended, checkpoint not saved

    def _open(self) -> int:
        fd = os.open(self.result_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     FILE_MODE)
        _cut_torn_tail(fd, self.result_path)
        return fd

    def commit(self, windows: list[ClosedWindow], state: dict | None) -> list[dict]:
        """Append the windows' records (fsync), then save `state` as the checkpoint;
        returns the records written. When the disk refuses (OSError), the result file is as
        it was or holds the whole commit: call again with the same arguments, and what was
        appended already is not appended twice."""
        if self._appended is None or self._appended[0] is not windows:
            written = [self._lld.tag(w.input, r) for w in windows for r in records(w, self.host)]
            if written:
                self._append(b"".join(map(encode, written)))
            self._appended = (windows, written)
        written = self._appended[1]
        if state is not None:
            checkpoint.save(self.checkpoint_path, state)
        self._appended = None
        return written

    def _append(self, data: bytes) -> None:
        """All of `data`, fsynced, or (OSError) nothing of it."""
        size = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, size)
            raise
        if self.rotate_bytes and size + len(data) >= self.rotate_bytes:
            self._rotate()

    def _rotate(self) -> None:
        """results.jsonl -> results.jsonl.N (N: one more than the highest): the sender
        finishes the rotated files in order and removes each once Zabbix accepted it all."""
        from .send import result_files
        os.close(self._fd)
        numbers = [int(p.rsplit(".", 1)[1]) for p, _ in result_files(self.result_path)
                   if p != self.result_path]
        os.rename(self.result_path, f"{self.result_path}.{max(numbers, default=0) + 1}")
        fd = os.open(os.path.dirname(os.path.abspath(self.result_path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._fd = self._open()

    def close(self) -> None:
        os.close(self._fd)


def _cut_torn_tail(fd: int, path: str) -> None:
    """Remove the bytes after the last newline: a record a crash or a full disk cut short."""
    size = end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline != -1:
            end = start + newline + 1
            break
        end = start
    if end < size:
        os.ftruncate(fd, end)
        _log.warning("%s: removed a record cut short at its end (%d bytes, from a crash or a "
                     "full disk); its window is written again from the checkpoint",
                     path, size - end)
