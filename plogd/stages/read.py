"""read: bytes of log files -> batches of complete lines. Knows nothing of formats.

`FileFollower` follows one path like `tail -F`, and never loses or repeats a line:
- rename + create (logrotate's default, nginx USR1), delete + recreate, a symlink or a hard
  link re-pointed: the old file is finished to its end (its unterminated tail counts as a
  line), then the files rotated in the meantime (next to the path, oldest first), then the
  new file from its start — including what was written to it before plogd noticed;
- copytruncate: when the file shrinks (or its first bytes change), what the copy
  (access.log.1 …, same first bytes) holds after our offset is read from the copy, then the
  truncated file from its start;
- a restart resumes from a checkpointed `Position`: the file is found again by identity among
  its rotated siblings, finished, and followed by every file rotated after it.
Compressed files are never read. Lines are cut at the last newline of each read; a line that
exceeds `max_line` is skipped (and counted) without being held in memory.
"""
from __future__ import annotations

import errno
import glob
import logging
import os
import stat
import time
from collections import deque
from typing import BinaryIO

from ..dirwatch import DirWatch
from ..heap import keep_batch_buffers
from ..files import (COMPRESSED, FINGERPRINT_BYTES, FileId, Position, identify, mtime_ns,
                     rotated_siblings, same_file, starts_like)
from ..messages import LineBatch
from ..sources import open_log
from ..syslog import SyslogListener

_log = logging.getLogger("plogd.read")

CHUNK = 1 << 20
# After a rotation, writers keep appending to the old file until they reopen (nginx workers
# on USR1, Apache on graceful restart): a file that is no longer the path's is left once it
# has not been written to for this long (by its mtime, so also after a restart).
ROTATE_WAIT = 1.0
# A file that cannot be read (EIO, a FIFO or a device at the path) is retried after 1 s, then
# twice as long each time up to RETRY_MAX: a failing disk is not hammered, and the other paths
# go on meanwhile. A path that does not exist yet, or is not readable by plogd, costs nothing
# to try again: it is retried at each poll, so that it is read as soon as it can be.
RETRY_MAX = 30.0
RETRY_AT_ONCE = {errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM}


class LineCutter:
    """Cuts a byte stream at its last newline; holds the unterminated tail; drops (and counts)
    a tail that grows past `max_line` until its newline comes."""

    def __init__(self, max_line: int):
        self.max_line = max_line
        self.tail = b""
        self.skipping = False     # inside a line already counted as too long
        self.too_long = 0

    def feed(self, data: bytes) -> bytes:
        """The complete lines (each with its newline) that `data` finishes."""
        cut = data.rfind(b"\n") + 1      # (the tail holds no newline)
        if not cut:
            complete, self.tail = b"", self.tail + data
        else:       # one copy of a 1 MiB read, not two (tail + data, then its slice)
            complete = b"".join((self.tail, memoryview(data)[:cut])) if self.tail \
                else data[:cut]
            self.tail = data[cut:]
        if self.skipping and cut:                 # the end of the over-long line
            complete = complete[complete.index(b"\n") + 1:]
            self.skipping = False
        if len(self.tail) > self.max_line:
            if not self.skipping:
                self.too_long += 1
            self.skipping = True
            self.tail = b""
        return complete

    def finish(self) -> bytes:
        """The unterminated last line, once its file is known to be complete."""
        tail, self.tail = self.tail, b""
        skipped, self.skipping = self.skipping, False
        return b"" if skipped else tail

    def take_too_long(self) -> int:
        count, self.too_long = self.too_long, 0
        return count


def split_lines(data: bytes) -> list[bytes]:
    """Lines of a batch, without their newlines."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def read_file(input_name: str, path: str, max_line: int, progress=None):
    """A whole file, from start to end, as batches (for replays): `-` is standard input,
    compressed files are decompressed (plogd.sources). `progress` is told the bytes taken
    from the file (compressed ones for a compressed file)."""
    keep_batch_buffers()
    cutter = LineCutter(max_line)
    offset = seq = consumed = 0
    with open_log(path) as source:
        while True:
            data = source.stream.read(CHUNK)
            complete = cutter.feed(data) if data else cutter.finish()
            start = offset
            offset += len(data)
            if complete or cutter.too_long:
                seq += 1
                yield LineBatch(input_name, seq, path, source.file_id, complete, start,
                                offset - len(cutter.tail), 0, cutter.take_too_long(), path)
            if progress is not None:
                now = source.consumed() or offset
                progress(now - consumed)
                consumed = now
            if not data:
                return


class _Open:
    """One open file being read."""

    def __init__(self, f: BinaryIO, path: str, offset: int = 0):
        self.f = f
        self.path = path
        self.real_path = os.path.realpath(path)
        self.id = identify(f)
        self.read_to = f.seek(offset)

    def mtime_ns(self) -> int:
        return os.fstat(self.f.fileno()).st_mtime_ns


class FileFollower:
    def __init__(self, input_name: str, path: str, start: str, max_line: int,
                 resume: Position | None = None, rotate_wait: float = ROTATE_WAIT):
        self.input = input_name
        self.rotate_wait = rotate_wait
        self.path = path
        self.max_line = max_line
        self.rotations = 0
        self.truncations = 0
        self.missing = 0            # times the path was found missing or unreadable
        self._seq = 0
        self._problems: dict[str, OSError] = {}    # path -> the error last reported
        self._retry_at = 0.0                   # monotonic time of the next try after an error
        self._retry_delay = 0.0
        self._cur: _Open | None = None
        self._next: deque[_Open] = deque()      # rotated files to read after the current one
        self._cutter = LineCutter(max_line)
        self._seek_end = start == "end" and resume is None
        self._resume = resume
        self._rotated = False       # the path names another file; finishing the current one
        self._announced: tuple | None = None    # (file, queued files) the batches last told

    # -- the stage interface
    def poll(self) -> list[LineBatch]:
        """What is new since the last call (an empty list: nothing new). A read error is
        reported once and the file retried later: it never reaches the other inputs."""
        if time.monotonic() < self._retry_at:
            return []
        try:
            batches = self._poll()
        except OSError as e:     # EIO on a file that could be opened: retried from where it was
            self._report(self._cur.path if self._cur is not None else self.path, e)
            self._back_off()
            return []
        if batches and self._retry_delay:
            self._retry_delay = 0.0
            if self._cur is not None and self._problems.pop(self._cur.path, None) is not None:
                _log.info("%s: %s can be read again", self.input, self._cur.path)
        cur = self._cur
        if cur is not None and (cur, self._upcoming()) != self._announced:
            # Another file, or other files queued after it: say so at once (an empty batch
            # if need be), so that the checkpoint knows them before they have lines — a
            # restart could not find a flipped symlink's old target otherwise.
            self._announced = (cur, self._upcoming())
            if not batches or batches[-1].file != cur.id:
                self._seq += 1
                batches.append(LineBatch(self.input, self._seq, self.path, cur.id, b"",
                                         cur.read_to - len(self._cutter.tail),
                                         cur.read_to - len(self._cutter.tail), cur.mtime_ns(),
                                         0, cur.real_path, self._upcoming(),
                                         in_long_line=self._cutter.skipping))
        return batches

    def _poll(self) -> list[LineBatch]:
        if self._cur is None:
            if self._resume is not None:
                self._start_from(self._resume)
                self._resume = None
            elif not self._open_path(seek_end=self._seek_end):
                return []
        if self._cur is None:     # resumed, but neither that file nor the path is there
            return []
        cur = self._cur
        if cur.path == self.path and not starts_like(cur.f, cur.id):
            # rewritten from its start since we identified it (maybe past our offset, maybe
            # while it waited in the queue): copytruncate
            return self._truncated()
        data = cur.f.read(CHUNK)
        if data:
            self._queue_new_path_file(cur)
            return [self._batch(data)]
        return self._at_end()

    def _queue_new_path_file(self, cur: _Open) -> None:
        """While behind (the current file not read to its end): a new file at the path is
        queued at once, not only at the end of the current one. Else a symlink flipped
        twice meanwhile would skip its middle target (no rotated sibling, no longer at the
        path), and a restart would not know it either."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if any((o.id.dev, o.id.ino) == (st.st_dev, st.st_ino) for o in [cur, *self._next]):
            return
        if cur.path == self.path and not self._rotated:
            self.rotations += 1
            _log.info("%s: %s was rotated; finishing the old file first", self.input, self.path)
            self._rotated = True
        self._queue_newer(cur.mtime_ns())

    @property
    def pending(self) -> bool:
        """Lines may be waiting that a poll did not return yet (the new file after a
        rotation, or rotated files queued): the input is not idle."""
        return self._rotated or bool(self._next) or (
            self._cur is not None and self._cur.path != self.path)

    def quiet_paths(self) -> tuple[str, ...]:
        """At the end of its one file, nothing wrong, no rotation under way: nothing can
        change for this follower but through its path or its file, whose paths these are
        (for plogd.dirwatch). Empty: it has to be polled each time."""
        cur = self._cur
        if cur is None or self.pending or self._retry_delay or self.path in self._problems:
            return ()
        return self.path, cur.real_path

    def bytes_behind(self) -> int:
        """Bytes written but not read yet (self-observation)."""
        behind = sum(os.fstat(o.f.fileno()).st_size - o.read_to for o in self._next)
        if self._cur is not None:
            behind += max(os.fstat(self._cur.f.fileno()).st_size - self._cur.read_to, 0)
        return behind

    def close(self) -> None:
        for o in [self._cur, *self._next]:
            if o is not None:
                o.f.close()
        self._cur, self._next = None, deque()

    def _current(self) -> _Open:
        """The file being read, where the caller knows there is one."""
        assert self._cur is not None
        return self._cur

    # -- opening
    def _open(self, path: str) -> BinaryIO | None:
        """The regular file at `path`, open, or None (the problem reported once). Opened
        without blocking: a FIFO would block open() until a writer comes, forever."""
        try:
            f = open(path, "rb", opener=_nonblocking)
        except OSError as e:
            self._report(path, e)
            return None
        try:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):   # a FIFO blocks, /dev/zero never ends: not a log
                raise OSError(errno.EINVAL, "not a regular file but a " + _kind(mode) +
                              "; only regular files are read")
            os.pread(f.fileno(), 1, 0)   # /proc/self/mem opens, then fails with EIO
        except OSError as e:
            f.close()
            self._report(path, e)
            return None
        if self._problems.pop(path, None) is not None:
            _log.info("%s: %s can be read again", self.input, path)
        return f

    def _report(self, path: str, error: OSError) -> None:
        """Once per path and error."""
        known = self._problems.get(path)
        if known is None or known.strerror != error.strerror:
            self.missing += 1
            _log.warning("%s: cannot read %s (%s); retrying, the other files go on",
                         self.input, path, error.strerror)
        self._problems[path] = error

    def _back_off(self) -> None:
        self._retry_delay = min(max(2 * self._retry_delay, 1.0), RETRY_MAX)
        self._retry_at = time.monotonic() + self._retry_delay

    def _open_path(self, seek_end: bool) -> bool:
        f = self._open(self.path)
        if f is None:
            self._seek_end = False   # a file that appears later holds only new lines
            if self._problems[self.path].errno not in RETRY_AT_ONCE:
                self._back_off()
            return False
        self._retry_delay = 0.0
        cur = self._cur = _Open(f, self.path)
        if seek_end:
            cur.read_to = f.seek(0, os.SEEK_END)
        self._seek_end = False
        _log.info("%s: following %s from byte %d", self.input, self.path, cur.read_to)
        return True

    def _start_from(self, position: Position) -> None:
        """After a restart: find the checkpointed file again (or, after a copytruncate, its
        copy) and resume there; then the files that were queued after it, then what was
        rotated after it, then the path's file."""
        found = self._find(position.file, position.real_path, position.offset)
        if found is None:
            _log.warning("%s: the file checkpointed at byte %d is gone; the lines it had after "
                         "that were lost while plogd was stopped", self.input, position.offset)
        else:
            _log.info("%s: resuming %s at byte %d", self.input, found.path, position.offset)
            self._cutter.skipping = position.in_long_line    # its rest is not a line
        self._cur = found
        for file_id, real_path in position.upcoming:
            upcoming = self._find(file_id, real_path, 0)
            if upcoming is not None and not self._known(upcoming.id):
                self._next.append(upcoming)
            elif upcoming is not None:
                upcoming.f.close()
        self._queue_newer(position.mtime_ns)
        if found is None and not self._advance():
            self._open_path(seek_end=False)

    def _find(self, file_id: FileId, real_path: str, offset: int) -> _Open | None:
        """The file `file_id` — or a copy of it (same first bytes) — at least `offset` long,
        looked for where it was, among the path's rotated siblings and at the path."""
        exact = copy = None
        siblings = _newest_first(rotated_siblings(self.path))   # a copy: the newest that fits
        for path in dict.fromkeys([real_path, *siblings, self.path]):
            f = self._open(path)
            if f is None:
                continue
            if os.fstat(f.fileno()).st_size >= offset:
                if exact is None and same_file(f, file_id):
                    exact = f
                    continue
                if copy is None and starts_like(f, file_id):
                    copy = f
                    continue
            f.close()
        if exact is not None and copy is not None:
            copy.close()
        f = exact or copy
        if f is None:
            return None
        st = os.fstat(f.fileno())
        # the path's own file keeps the path's name: it is followed, not finished
        return _Open(f, self.path if self._is_path_file(st) else f.name, offset)

    def _is_path_file(self, st) -> bool:
        try:
            at_path = os.stat(self.path)
        except OSError:
            return False
        return (at_path.st_dev, at_path.st_ino) == (st.st_dev, st.st_ino)

    def _known(self, file_id: FileId) -> bool:
        """Is it the current file or one already queued?"""
        known = [o.id for o in [self._cur, *self._next] if o is not None]
        return any((k.dev, k.ino) == (file_id.dev, file_id.ino) for k in known)

    # -- reading
    def _upcoming(self) -> tuple:
        """The queued files, for the checkpoint: a restart finds them again."""
        return tuple((o.id, o.real_path) for o in self._next)

    def _batch(self, data: bytes) -> LineBatch:
        cur = self._current()
        if cur.id.fp_len < FINGERPRINT_BYTES:    # the file has grown: a fuller fingerprint
            cur.id = identify(cur.f)
        start = cur.read_to - len(self._cutter.tail)
        cur.read_to += len(data)
        complete = self._cutter.feed(data)
        end = cur.read_to - len(self._cutter.tail)
        self._seq += 1
        return LineBatch(self.input, self._seq, self.path, cur.id, complete, start, end,
                         cur.mtime_ns(), self._cutter.take_too_long(), cur.real_path,
                         self._upcoming(), in_long_line=self._cutter.skipping)

    def _final_line(self) -> list[LineBatch]:
        """The unterminated tail of a file that will not grow any more is a line."""
        tail = self._cutter.finish()
        if not tail:
            return []
        cur = self._current()
        self._seq += 1
        return [LineBatch(self.input, self._seq, self.path, cur.id, tail,
                          cur.read_to - len(tail), cur.read_to, cur.mtime_ns(), 0, cur.real_path,
                          self._upcoming())]

    def _at_end(self) -> list[LineBatch]:
        """At the end of the current file: rotated? truncated? or just nothing new."""
        cur = self._current()
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == (cur.id.dev, cur.id.ino):
            if st.st_size < cur.read_to:
                return self._truncated()
            return []
        if cur.path == self.path and not self._rotated:
            if st is None and not self._next:
                return []             # renamed or deleted, nothing new yet: keep reading it
            self.rotations += 1
            _log.info("%s: %s was rotated; finishing the old file first", self.input, self.path)
            self._queue_newer(cur.mtime_ns())
            self._rotated = True
        if time.time() - cur.mtime_ns() / 1e9 < self.rotate_wait:
            return []                 # written to a moment ago: the writer may not be done
        self._rotated = False
        return self._leave_current()

    def _leave_current(self) -> list[LineBatch]:
        batches = self._final_line()
        self._current().f.close()
        self._cur = None
        if not self._advance():
            self._open_path(seek_end=False)
        return batches

    def _advance(self) -> bool:
        if not self._next:
            return False
        cur = self._cur = self._next.popleft()
        _log.info("%s: reading %s from byte %d", self.input, cur.path, cur.read_to)
        return True

    def _queue_newer(self, after_mtime_ns: int) -> None:
        """Queue the rotated siblings written after `after_mtime_ns`, oldest first, then the
        file now at the path: opened at once, so that nothing that happens to the path
        while the current file is finished can take it away. It is opened before the
        siblings are listed: renamed to a sibling in between (logrotate at work during a
        restart), it is seen under one name or the other, never under neither."""
        f = self._open(self.path)
        at_path = _Open(f, self.path) if f is not None else None
        found = []
        for path in rotated_siblings(self.path):
            mtime = mtime_ns(path)
            if mtime is None or mtime <= after_mtime_ns:
                continue
            f = self._open(path)
            if f is None:
                continue
            o = _Open(f, path)
            if self._known(o.id) or (at_path is not None and
                                     (o.id.dev, o.id.ino) == (at_path.id.dev, at_path.id.ino)):
                f.close()
                continue
            found.append((mtime, o))
        found.sort(key=lambda item: item[0])
        self._next.extend(o for _, o in found)
        if at_path is None:
            return
        if self._known(at_path.id):
            at_path.f.close()
        else:
            self._next.append(at_path)

    def _truncated(self) -> list[LineBatch]:
        """copytruncate: take what the copy holds after our offset, then start over."""
        self.truncations += 1
        cur = self._current()
        _log.info("%s: %s was truncated (copytruncate?)", self.input, self.path)
        for path in _newest_first(rotated_siblings(self.path)):   # the copy is the newest
            f = self._open(path)
            if f is None:
                continue
            if os.fstat(f.fileno()).st_size > cur.read_to and starts_like(f, cur.id):
                _log.info("%s: reading the rest from the copy %s", self.input, path)
                self._cur = _Open(f, path, cur.read_to)
                self._next.appendleft(cur)    # then the truncated file, from its start
                break
            f.close()
        else:   # no copy: the bytes after our offset are gone
            self._cutter = LineCutter(self.max_line)
        cur.f.seek(0)
        cur.read_to = 0
        cur.id = identify(cur.f)
        return []


class ReadStage:
    """The read stage: a follower for every input path (for a glob, every file it matches;
    new matches are picked up every RESCAN seconds), polled in turn — but a follower quiet at
    the end of its file only when its directory had news or every FULL_POLL_EVERY seconds
    (plogd.dirwatch): idle files cost next to nothing. While an input is far
    behind (a first run from the beginning, a restart after a long stop), it says so every
    PROGRESS_EVERY seconds: how much is left, how fast it shrinks, when it should be done."""

    RESCAN = 5.0
    PROGRESS_EVERY = 10.0
    FAR_BEHIND = 64_000_000    # bytes not read yet: worth telling the operator about

    def __init__(self, inputs, max_line: int, positions: dict[str, dict[str, Position]],
                 first_run: bool):
        self.inputs = inputs
        self.max_line = max_line
        self.positions = positions          # input -> path -> checkpointed position
        self.first_run = first_run
        self.followers: dict[tuple[str, str], FileFollower | SyslogListener] = {}
        self._scanned_at = float("-inf")
        self._started = False
        self._progress_at = 0.0
        self._behind: dict[str, tuple[int, float]] = {}   # input -> (bytes, when) reported
        self._empty_globs: set[str] = set()    # globs that matched nothing at the last scan
        self._watch = DirWatch()
        keep_batch_buffers()
        self._busy: list = []        # the followers polled even without news

    def poll(self) -> list[LineBatch]:
        if time.monotonic() - self._scanned_at >= self.RESCAN:
            self._scan()
        polled = self.followers.values() if self._watch.look_at_all() else self._busy
        batches: list[LineBatch] = []
        self._busy = []
        for follower in polled:
            got = follower.poll()
            batches += got
            if got or not self._quiet(follower):
                self._busy.append(follower)
        if time.monotonic() >= self._progress_at:
            self._report_progress()
        return batches

    def _quiet(self, follower) -> bool:
        """Can the follower wait for news of its directories? (A syslog listener cannot.)"""
        paths: tuple[str, ...] = getattr(follower, "quiet_paths", tuple)()
        return bool(paths) and all([self._watch.watch(path) for path in paths])

    def _report_progress(self) -> None:
        now = time.monotonic()
        self._progress_at = now + self.PROGRESS_EVERY
        for name, stats in self.stats().items():
            behind, before = stats["bytes_behind"], self._behind.get(name)
            if behind < self.FAR_BEHIND:
                if before is not None:
                    del self._behind[name]
                    _log.info("%s: caught up", name)
                continue
            self._behind[name] = (behind, now)
            if before is None:
                _log.info("%s: catching up, %.0f MB behind", name, behind / 1e6)
                continue
            rate = (before[0] - behind) / max(now - before[1], 1e-9)   # net of new writes
            _log.info("%s: catching up, %.0f MB behind, %s", name, behind / 1e6,
                      f"-{rate / 1e6:.1f} MB/s, done in ~{behind / rate:.0f} s" if rate > 0
                      else "not gaining: the logs grow as fast as they are read")

    def _scan(self) -> None:
        self._scanned_at = time.monotonic()
        for spec in self.inputs:
            if getattr(spec, "listen", None):     # a syslog input: a socket, no files
                if (spec.name, spec.path) not in self.followers:
                    self.followers[spec.name, spec.path] = SyslogListener(
                        spec.name, spec.path, self.max_line)
                    self._busy.append(self.followers[spec.name, spec.path])
                continue
            paths = _expand(spec.path)
            self._tell_empty_glob(spec, paths)
            for path in paths:
                if (spec.name, path) in self.followers:
                    continue
                resume = self.positions.get(spec.name, {}).get(path)
                # `start` applies to what exists at the first start; later files are new
                start = spec.start if (self.first_run or not self.positions.get(spec.name)) \
                    and not self._started else "beginning"
                self.followers[spec.name, path] = FileFollower(
                    spec.name, path, start, self.max_line, resume=resume)
                self._busy.append(self.followers[spec.name, path])
        self._started = True

    def _tell_empty_glob(self, spec, paths: list[str]) -> None:
        """A glob that matches nothing is most likely a typo: said at start-up, and again
        when it starts matching."""
        if not glob.has_magic(spec.path):
            return
        if not paths and spec.path not in self._empty_globs:
            self._empty_globs.add(spec.path)
            _log.warning("%s: %s matches no file; plogd reads the files it matches once they "
                         "appear", spec.name, spec.path)
        elif paths and spec.path in self._empty_globs:
            self._empty_globs.discard(spec.path)
            _log.warning("%s: %s now matches %d file(s)", spec.name, spec.path, len(paths))

    @property
    def idle(self) -> bool:
        """Every file has been read to its end: the wall clock may close windows. (A quiet
        follower is not pending: only the busy ones can be.)"""
        return not any(f.pending for f in self._busy)

    def stats(self) -> dict[str, dict[str, int]]:
        """Self-observation per input: files followed, rotations and truncations seen, times
        a file was missing or unreadable, bytes written but not read yet. (Lines read, too
        long, unmatched and late are counted by the aggregate stage.)"""
        stats: dict[str, dict[str, int]] = {}
        for (name, _), f in self.followers.items():
            s = stats.setdefault(name, {"files": 0, "rotations": 0, "truncations": 0,
                                        "missing": 0, "bytes_behind": 0})
            s["files"] += 1
            s["rotations"] += f.rotations
            s["truncations"] += f.truncations
            s["missing"] += f.missing
            s["bytes_behind"] += f.bytes_behind()
            if isinstance(f, SyslogListener):
                s["malformed"] = s.get("malformed", 0) + f.malformed
        return stats

    def close(self) -> None:
        for follower in self.followers.values():
            follower.close()
        self._watch.close()


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def _kind(mode: int) -> str:
    return ("FIFO" if stat.S_ISFIFO(mode) else "character device" if stat.S_ISCHR(mode) else
            "block device" if stat.S_ISBLK(mode) else "socket" if stat.S_ISSOCK(mode) else
            "directory" if stat.S_ISDIR(mode) else "special file")


def _newest_first(paths: list[str]) -> list[str]:
    return sorted(paths, key=lambda p: mtime_ns(p) or 0, reverse=True)


def _expand(pattern: str) -> list[str]:
    """A plain path as it is (it may not exist yet); a glob as its current matches."""
    if not glob.has_magic(pattern):
        return [pattern]
    return sorted(p for p in glob.glob(pattern) if not COMPRESSED.search(p))
