"""read: bytes of log files -> batches of complete lines. Knows nothing of formats.

`FileFollower` follows one path like `tail -F`: it reads what is appended, and when the path
is renamed away (logrotate's default, nginx USR1) it first finishes the old file to its end,
then reads the new file from its start, so the lines written during a rotation are not lost.
A file that shrinks under it (copytruncate) is read again from its start.
"""
from __future__ import annotations

import logging
import os

from ..messages import LineBatch

_log = logging.getLogger("plogd.read")

CHUNK = 1 << 20


class LineSplitter:
    """Cuts a byte stream into lines without their newline; holds an unterminated tail;
    skips (and counts) lines longer than `max_line` without keeping them in memory."""

    def __init__(self, max_line: int):
        self.max_line = max_line
        self.tail = b""
        self.skipping = False     # inside a line already counted as too long
        self.too_long = 0

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()
        if self.skipping and lines:       # the end of the over-long line
            lines.pop(0)
            self.skipping = False
        if len(self.tail) > self.max_line:
            if not self.skipping:
                self.too_long += 1
            self.skipping = True
            self.tail = b""
        if lines and max(map(len, lines)) > self.max_line:
            kept = [line for line in lines if len(line) <= self.max_line]
            self.too_long += len(lines) - len(kept)
            lines = kept
        return lines

    def finish(self) -> list[bytes]:
        """The unterminated last line, once the file is known to be complete."""
        tail, self.tail = self.tail, b""
        skipped, self.skipping = self.skipping, False
        return [tail] if tail and not skipped else []

    def take_too_long(self) -> int:
        count, self.too_long = self.too_long, 0
        return count


def read_file(input_name: str, path: str, max_line: int, progress=None):
    """A whole file, from start to end, as batches (for replays)."""
    splitter = LineSplitter(max_line)
    offset = 0
    with open(path, "rb") as f:
        while True:
            data = f.read(CHUNK)
            lines = splitter.feed(data) if data else splitter.finish()
            start = offset
            offset += len(data)
            if lines or splitter.too_long:
                yield LineBatch(input_name, path, lines, start, offset, splitter.take_too_long())
            if progress is not None:
                progress(len(data))
            if not data:
                return


class FileFollower:
    def __init__(self, input_name: str, path: str, start: str, max_line: int):
        self.input = input_name
        self.path = path
        self.max_line = max_line
        self._seek_end = start == "end"   # only for the file found at the first start
        self._file = None
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._splitter = LineSplitter(max_line)
        self.rotations = 0
        self.truncations = 0
        self._missing_reported = False

    def poll(self) -> list[LineBatch]:
        """What is new since the last call (an empty list: nothing new)."""
        if self._file is None and not self._open():
            return []
        data = self._file.read(CHUNK)
        if data:
            return self._batch(data)
        return self._check_replaced()

    def _open(self) -> bool:
        try:
            f = open(self.path, "rb")
        except OSError as e:
            self._seek_end = False   # a file that appears later holds only new lines
            if not self._missing_reported:
                _log.warning("%s: cannot open %s (%s); waiting for it", self.input, self.path,
                             e.strerror)
                self._missing_reported = True
            return False
        self._missing_reported = False
        st = os.fstat(f.fileno())
        self._file, self._identity = f, (st.st_dev, st.st_ino)
        self._offset = 0
        if self._seek_end:
            self._offset = f.seek(0, os.SEEK_END)
            self._seek_end = False
        _log.info("%s: following %s from byte %d", self.input, self.path, self._offset)
        return True

    def _batch(self, data: bytes) -> list[LineBatch]:
        start = self._offset - len(self._splitter.tail)
        lines = self._splitter.feed(data)
        self._offset += len(data)
        end = self._offset - len(self._splitter.tail)
        return [LineBatch(self.input, self.path, lines, start, end, self._splitter.take_too_long())]

    def _check_replaced(self) -> list[LineBatch]:
        """At the end of the open file: has the path been rotated or truncated?"""
        try:
            st = os.stat(self.path)
        except OSError:
            return []    # renamed away and not yet re-created: keep the old file open
        if (st.st_dev, st.st_ino) != self._identity:
            # Rotated: the old file has been read to its end; its unterminated tail is a line.
            lines = self._splitter.finish()
            self._file.close()
            self._file = None
            self.rotations += 1
            _log.info("%s: %s was rotated; reading the new file from its start", self.input,
                      self.path)
            if lines:
                return [LineBatch(self.input, self.path, lines, self._offset - len(lines[0]),
                                  self._offset)]
            return []
        if st.st_size < self._offset:
            self.truncations += 1
            _log.info("%s: %s was truncated; reading it again from its start", self.input,
                      self.path)
            self._file.seek(0)
            self._offset = 0
            self._splitter = LineSplitter(self.max_line)
        return []

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
