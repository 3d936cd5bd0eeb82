"""Which file is which: identity (device, inode, and a fingerprint of the first bytes, so that
a reused inode is not taken for the old file) and the rotated siblings of a log path."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

FINGERPRINT_BYTES = 1024
COMPRESSED = re.compile(r"\.(gz|bz2|xz|zst|lz4|lzma|Z|zip)$")


@dataclass(frozen=True)
class FileId:
    dev: int
    ino: int
    fp_len: int        # how many leading bytes the fingerprint covers (up to 1024)
    fp: str            # sha1 of those bytes

    def to_json(self) -> dict:
        return {"dev": self.dev, "ino": self.ino, "fp_len": self.fp_len, "fp": self.fp}

    @classmethod
    def from_json(cls, data: dict) -> FileId:
        return cls(data["dev"], data["ino"], data["fp_len"], data["fp"])


def fingerprint(f, length: int = FINGERPRINT_BYTES) -> tuple[int, str]:
    """(bytes covered, sha1) of the first `length` bytes of an open binary file."""
    head = os.pread(f.fileno(), length, 0)
    return len(head), hashlib.sha1(head).hexdigest()


def identify(f) -> FileId:
    st = os.fstat(f.fileno())
    fp_len, fp = fingerprint(f)
    return FileId(st.st_dev, st.st_ino, fp_len, fp)


def same_file(f, known: FileId) -> bool:
    """Is the open file `f` the file `known` describes (same inode, same first bytes)?"""
    st = os.fstat(f.fileno())
    if (st.st_dev, st.st_ino) != (known.dev, known.ino):
        return False
    return starts_like(f, known)


def starts_like(f, known: FileId) -> bool:
    """Do the first bytes of `f` match `known`'s fingerprint (a copy, or the same file)?"""
    fp_len, fp = fingerprint(f, known.fp_len)
    return fp_len == known.fp_len and fp == known.fp


def rotated_siblings(path: str) -> list[str]:
    """Files next to `path` that rotation tools make from it (access.log.1, access.log-2024…,
    access.log_old), compressed ones excluded: they are never read as text."""
    directory, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names
                  if len(n) > len(base) + 1 and n.startswith(base) and n[len(base)] in ".-_"
                  and not COMPRESSED.search(n))


def mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


@dataclass
class Position:
    """Where reading an input path stands: the end of the last line taken from `file`."""
    file: FileId
    offset: int
    mtime_ns: int      # the file's mtime then: files rotated later are newer than this
    real_path: str     # where the file was (a symlink's target is no rotated sibling)
    upcoming: tuple = ()   # (FileId, real path) of the files queued after it
    # `offset` is inside a line longer than max_line_length, counted already as too long:
    # a restart skips the rest of it instead of counting its tail as one more line
    in_long_line: bool = False

    def to_json(self) -> dict:
        return {"file": self.file.to_json(), "offset": self.offset, "mtime_ns": self.mtime_ns,
                "real_path": self.real_path,
                "upcoming": [[f.to_json(), path] for f, path in self.upcoming],
                "in_long_line": self.in_long_line}

    @classmethod
    def from_json(cls, data: dict) -> Position:
        return cls(FileId.from_json(data["file"]), data["offset"], data["mtime_ns"],
                   data["real_path"],
                   tuple((FileId.from_json(f), path) for f, path in data["upcoming"]),
                   data.get("in_long_line", False))
