"""Log files as `replay` and `parse` read them, once from start to end: standard input (`-`)
and pipes, which cannot seek; compressed files, decompressed as a stream (gzip, bzip2, xz,
zstd, known by their first bytes, whatever their name); a rotation set put in the order it
was written. (Followed files are read by plogd.stages.read, never compressed.)"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from .files import COMPRESSED, FileId, identify

STDIN = "-"
CHUNK = 1 << 20

# first bytes -> how to decompress
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
          (b"\x28\xb5\x2f\xfd", "zstd"))


def _zstd_reader(raw: io.BufferedReader) -> io.BufferedIOBase:
    import zstandard    # Python 3.11 has no zstd of its own (compression.zstd is 3.14)
    # logrotate's zstd and `zstd` append frames: read them all
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(
        raw, read_across_frames=True, closefd=False), CHUNK)


_DECOMPRESS: dict[str, Callable[[io.BufferedReader], io.BufferedIOBase]] = {
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "bzip2": lambda raw: bz2.BZ2File(raw, "rb"),
    "xz": lambda raw: lzma.LZMAFile(raw, "rb"),
    "zstd": _zstd_reader}


@dataclass
class LogSource:
    """An open log: `stream` gives its text bytes, `raw` is the file (or pipe) under it."""
    path: str
    raw: io.BufferedReader
    stream: io.BufferedIOBase
    file_id: FileId
    compression: str | None

    def consumed(self) -> int:
        """Bytes taken from the file so far (compressed bytes, for a compressed file)."""
        try:
            return self.raw.tell()
        except OSError:        # a pipe: what was read is all that is known
            return 0

    def close(self) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        if self.path != STDIN:
            self.raw.close()

    def __enter__(self) -> LogSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_log(path: str) -> LogSource:
    """Open `path` (`-`: standard input) for one read from start to end. Raises OSError
    (with the path as its filename) when it cannot be read, a directory included."""
    # stdin's buffer is a BufferedReader as open()'s file is: both can peek
    raw = cast(io.BufferedReader, sys.stdin.buffer) if path == STDIN else open(path, "rb")
    try:
        st = os.fstat(raw.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", path)
        if stat.S_ISREG(st.st_mode):
            file_id = identify(raw)
        else:           # a pipe or a terminal: no first bytes to read again
            file_id = FileId(st.st_dev, st.st_ino, 0, "")
        head = raw.peek(6)[:6]
        compression = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
        stream = _DECOMPRESS[compression](raw) if compression else raw
    except BaseException:
        if path != STDIN:
            raw.close()
        raise
    return LogSource(path, raw, stream, file_id, compression)


def check_readable(path: str) -> None:
    """Raise OSError (filename set) unless `path` is `-` or a file that can be opened."""
    if path != STDIN:
        open_log(path).close()


def size_of(path: str) -> int:
    """The bytes to take from `path` (0 for standard input: not known)."""
    return 0 if path == STDIN else os.path.getsize(path)


# access.log.2 / access.log-20240101 / access.log_old-3: a base name and a rotation suffix
_ROTATED = re.compile(r"^(?P<base>.+?)[._-](?P<n>\d+)$")
_DATE_DIGITS = 6     # a suffix this long is a date or an epoch (dateext): larger is newer


def _rotation_key(path: str) -> tuple[str, tuple]:
    """(the file the rotation set is named after, rank: smaller is older)."""
    name = COMPRESSED.sub("", path)
    m = _ROTATED.match(name)
    if m is None:
        return name, (1, 0)                          # the live file: the newest
    n = int(m["n"])
    if len(m["n"]) >= _DATE_DIGITS:
        return m["base"], (0, n)                     # dated: older dates first
    return m["base"], (0, -n)                        # numbered: .3 before .2 before .1


def replay_order(paths: list[str]) -> list[str]:
    """The files in the order they were written: within each rotation set (access.log.3.gz
    access.log.2.gz access.log.1 access.log, in any order) the oldest first; the sets in
    the order they were named. A file named twice is read once."""
    seen: set[str] = set()
    by_set: dict[str, list[str]] = {}
    for path in paths:
        real = path if path == STDIN else os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            by_set.setdefault(_rotation_key(path)[0], []).append(path)
    return [path for members in by_set.values()
            for path in sorted(members, key=lambda p: _rotation_key(p)[1])]
