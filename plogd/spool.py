"""The spool: the result file, where the writer appends every closed window's records, and
the cursors of the outputs that read it.

The result file holds one JSON object per line (see plogd.outputs.base for the record). The
writer appends with fsync and never leaves a record cut short (`SpoolWriter`); past
`rotate_bytes` it renames the file to `results.jsonl.N` and starts a new one. Each output
reads the files in order from its own `Cursor` (the inode of the file it is in and an offset
in it), persisted in `STATE_DIR/output.NAME.json` by the output runner, and advanced only
once the output took a batch. A rotated file is removed once every configured output's
cursor has passed it (`remove_passed`), so a second reader never loses data to the first.

The backlog of an output is what lies after its cursor (`backlog`): the reader pauses when
the backlog of an output marked `on_full: pause` reaches its bound (`full_outputs`); an
output marked `drop_oldest` skips its oldest records instead (`skip_oldest`), counted.
"""
from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import dataclass

from . import checkpoint
from .statedir import DIR_MODE, FILE_MODE

_log = logging.getLogger("plogd.spool")

TAIL_CHUNK = 1 << 16   # read backwards in these steps to find the last complete record
RECORD_BOUND = 1024    # bytes: more than a record's line takes (about 150 to 300)


def disk_full(error: OSError) -> bool:
    """The disk or the quota is full: wait for room (an operator, the outputs' clean-up)."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def encode(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n"


# -- the files ---------------------------------------------------------------------------

def result_files(result_path: str) -> list[tuple[str, os.stat_result]]:
    """The rotated result files `results.jsonl.N` (N a number; lowest first) then
    `results.jsonl` itself, with their stat, those that exist.

    The writer (another process in --multi) may rotate meanwhile. The result file is looked
    at before the directory is listed, so that a file rotated in between is seen under one
    name or the other, never missed (a reader would take that for a file removed, and go
    on elsewhere); seen under both, it is listed once, as the rotated file."""
    directory, base = os.path.split(os.path.abspath(result_path))
    try:
        live = os.stat(result_path)
    except FileNotFoundError:
        live = None
    rotated = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        suffix = name[len(base) + 1:]
        if name.startswith(base + ".") and suffix.isdigit():
            rotated.append((int(suffix), os.path.join(directory, name)))
    out = []
    for _, path in sorted(rotated):
        try:
            out.append((path, os.stat(path)))
        except FileNotFoundError:
            pass
    if live is not None and all(st.st_ino != live.st_ino for _, st in out):
        out.append((result_path, live))
    return out


class SpoolWriter:
    """Appends records durably: all of an append, fsynced, or nothing of it."""

    def __init__(self, result_path: str, rotate_bytes: int = 0):
        self.result_path = result_path
        self.rotate_bytes = rotate_bytes   # rename to results.jsonl.N past this size (0: never)
        os.makedirs(os.path.dirname(os.path.abspath(result_path)), mode=DIR_MODE, exist_ok=True)
        self._fd = self._open()

    def _open(self) -> int:
        fd = os.open(self.result_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     FILE_MODE)
        _cut_torn_tail(fd, self.result_path)
        return fd

    def append(self, records: list[dict]) -> None:
        """All of the records, fsynced, or (OSError) nothing of them."""
        data = b"".join(map(encode, records))
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
        """results.jsonl -> results.jsonl.N (N: one more than the highest)."""
        os.close(self._fd)
        numbers = [int(p.rsplit(".", 1)[1]) for p, _ in result_files(self.result_path)
                   if p != self.result_path]
        os.rename(self.result_path, f"{self.result_path}.{max(numbers, default=0) + 1}")
        _fsync_dir(self.result_path)
        self._fd = self._open()

    def close(self) -> None:
        os.close(self._fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(fd: int, path: str) -> None:
    """Remove the bytes after the last newline: a record a crash or a full disk cut short
    (the next record would be glued to it, and readers would skip both)."""
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


# -- cursors -----------------------------------------------------------------------------

@dataclass
class Cursor:
    """Where an output is in the spool: the file (by inode; None: the result file itself,
    or nothing read yet) and the offset of the first record it has not taken."""
    offset: int = 0
    inode: int | None = None

    @classmethod
    def from_json(cls, data) -> Cursor:
        """ValueError for anything but {"offset": int >= 0, "inode": int | null}."""
        if not isinstance(data, dict):
            raise ValueError("the cursor is not an object")
        offset, inode = data.get("offset", 0), data.get("inode")
        if type(offset) is not int or offset < 0 or not (inode is None or type(inode) is int):
            raise ValueError(f"the cursor holds offset {offset!r}, inode {inode!r}")
        return cls(offset, inode)

    def to_json(self) -> dict:
        return {"offset": self.offset, "inode": self.inode}


def output_state_path(state_dir: str, name: str) -> str:
    """The output runner's state file of the output NAME: its cursor, totals and state."""
    return os.path.join(state_dir, f"output.{name}.json")


def peek_cursor(state_dir: str, name: str) -> Cursor:
    """From another process: the output's saved cursor (the start when there is none)."""
    try:
        return Cursor.from_json(checkpoint.peek(output_state_path(state_dir, name))
                                .get("cursor", {}))
    except ValueError:
        return Cursor()


def _position(files: list, cursor: Cursor) -> int | None:
    """The index in `files` of the file the cursor is in (None: not among them)."""
    for i, (_, st) in enumerate(files):
        if st.st_ino == cursor.inode:
            return i
    return None


def backlog(result_path: str, cursor: Cursor) -> int:
    """Bytes written after the cursor: what the output has not taken yet."""
    files = result_files(result_path)
    i = _position(files, cursor)
    if i is not None:
        return (max(0, files[i][1].st_size - cursor.offset)
                + sum(st.st_size for _, st in files[i + 1:]))
    if cursor.inode is None:       # no file yet: the offset is the result file's
        return max(0, sum(st.st_size for _, st in files) - cursor.offset)
    return sum(st.st_size for _, st in files)


class SpoolReader:
    """Reads records from a cursor, file after file; the caller moves the cursor on
    (`advance`) once the records are taken."""

    def __init__(self, result_path: str, cursor: Cursor, name: str = ""):
        self.result_path = result_path
        self.cursor = cursor
        self.name = name             # the reading output, for the log
        self.malformed = 0           # lines that are not a record (skipped, logged)

    def _current(self, files: list) -> int:
        """The index in `files` (not empty) of the file the cursor is in; the first file's
        when its file is gone."""
        i = _position(files, self.cursor)
        if i is not None:
            return i
        if self.cursor.inode is not None:
            _log.warning("%s: the result file it was reading is gone; going on with %s from "
                         "its start", self.name, files[0][0])
        elif self.cursor.offset:     # no inode yet: the offset is the result file's
            return len(files) - 1
        self.cursor.offset = 0
        return 0

    def nothing_new(self) -> bool:
        """The cursor is at the end of the live result file: one stat, where `read` lists
        the directory (an idle output looks twice a second)."""
        try:
            st = os.stat(self.result_path)
        except OSError:
            return False
        return st.st_ino == self.cursor.inode and st.st_size == self.cursor.offset

    def read(self, max_records: int) -> tuple[list[dict], Cursor]:
        """Up to max_records complete records after the cursor, oldest clock first, and the
        cursor after them; ([], cursor) when there is nothing new."""
        files = result_files(self.result_path)    # one look: the writer may rotate meanwhile
        if not files:
            return [], self.cursor
        i = self._current(files)
        path, st = files[i]
        if st.st_size < self.cursor.offset:
            _log.warning("%s: the result file %s was truncated; reading it from its start",
                         self.name, path)
            self.cursor.offset = 0
        self.cursor.inode = st.st_ino
        if st.st_size <= self.cursor.offset:
            if path != self.result_path and i + 1 < len(files):
                # a rotated file (no longer written: its size is final), all taken: on to
                # the next one
                return [], Cursor(0, files[i + 1][1].st_ino)
            return [], self.cursor
        records: list[dict] = []
        end = self.cursor.offset
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_ino != st.st_ino:
                return [], self.cursor     # rotated since the look: found by name next time
            f.seek(end)
            while len(records) < max_records:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break              # incomplete: the writer is still appending it
                end += len(line)
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict) or "key" not in record or "host" not in record:
                        raise ValueError("not a value record")
                except ValueError:
                    self.malformed += 1
                    _log.error("%s: skipping a line that is not a value record at offset %d: "
                               "%r", path, end - len(line), line[:200])
                    continue
                records.append(record)
        records.sort(key=lambda r: (r.get("clock", 0), r.get("ns", 0)))   # oldest first
        return records, Cursor(end, st.st_ino)

    def advance(self, cursor: Cursor) -> None:
        self.cursor = cursor


def skip_oldest(result_path: str, cursor: Cursor, bound: int) -> tuple[Cursor, int]:
    """For a `drop_oldest` output over its bound: the cursor past the oldest records so
    that at most about bound/2 bytes stay behind it, and the number of records skipped."""
    dropped = 0
    reader = SpoolReader(result_path, Cursor(cursor.offset, cursor.inode))
    while (excess := backlog(result_path, reader.cursor) - bound // 2) > 0:
        # no more records at a time than fit in the excess (a record is far shorter than
        # RECORD_BOUND): a small bound keeps its newest half instead of losing everything
        records, after = reader.read(max(1, min(1000, excess // RECORD_BOUND)))
        if after == reader.cursor:
            break
        dropped += len(records)
        reader.advance(after)
    return reader.cursor, dropped


def remove_passed(result_path: str, cursors: list[Cursor]) -> list[str]:
    """Remove the rotated files that every cursor has passed; returns their paths."""
    files = result_files(result_path)
    positions = [p for p in (_position(files, c) for c in cursors) if p is not None]
    if not cursors or len(positions) < len(cursors):
        return []            # a cursor not in any file yet holds everything back
    removed = []
    for path, _ in files[:min(positions)]:
        if path != result_path:
            os.unlink(path)
            removed.append(path)
    return removed


def output_status(result_path: str, state_dir: str, name: str) -> dict:
    """From any process: an output's state as its runner last saved it: "up" (None: no
    exchange yet), "backlog" (bytes), and its totals ("sent", "refused", "dropped" and
    the output's own)."""
    state = checkpoint.peek(output_state_path(state_dir, name))
    totals = state.get("totals")
    totals = totals if isinstance(totals, dict) else {}
    return {"up": state.get("up"), "backlog": backlog(result_path, peek_cursor(state_dir, name)),
            **{k: v for k, v in totals.items() if isinstance(v, (int, float))}}


def full_outputs(result_path: str, state_dir: str, outputs) -> list[str]:
    """The outputs (config.outputs) marked `on_full: pause` whose backlog reached their
    `max_backlog`: reading pauses while there is one."""
    return [o.name for o in outputs if o.on_full == "pause" and o.max_backlog
            and backlog(result_path, peek_cursor(state_dir, o.name)) >= o.max_backlog]
