"""Reasons to look at a followed file again: inotify on the directories of the files.

Polling fifty idle files five times a second cost more than all the rest of an idle plogd.
The kernel says when something happens in a directory: a file in it written to, created,
renamed, deleted, its mode or links changed. So the reader polls a quiet file only when its
directory had news, and every file every FULL_POLL_EVERY seconds regardless: a network file
system sends no event for another host's writes, a directory that does not exist yet cannot
be watched, and a full event queue loses events. An event is only a reason to look; what
is read is still decided by polling, as without inotify. Where inotify cannot be had (no
kernel support, the per-user limit on instances reached), every file is polled each time.
"""
from __future__ import annotations

import ctypes
import io
import logging
import os
import time

_log = logging.getLogger("plogd.read")

FULL_POLL_EVERY = 2.0      # seconds: every file is looked at this often, news or not

# inotify(7)'s IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE,
# IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF
NEWS = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800


class Inotify:
    """The two calls of inotify(7) plogd needs, and whether events came. Not inotify_simple:
    it finds libc with ctypes.util.find_library, which runs `ldconfig -p` in a subprocess
    (tens of milliseconds of the reader's start-up, before its first read); and what the
    events say does not matter here, only that there were some."""

    def __init__(self):
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._checked(self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        self._events = io.FileIO(fd, "r")      # closed with it, or when collected
        self.fd = fd

    def add_watch(self, directory: str, mask: int) -> int:
        return self._checked(self._libc.inotify_add_watch(self.fd, os.fsencode(directory),
                                                          mask))

    def had_events(self) -> bool:
        """Were there events since the last call? (It reads them all.)"""
        had = False
        while self._events.read(65536):       # None: none waiting (non-blocking)
            had = True
        return had

    def close(self) -> None:
        self._events.close()

    @staticmethod
    def _checked(result: int) -> int:
        if result < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return result


class DirWatch:
    def __init__(self, full_poll_every: float = FULL_POLL_EVERY):
        self.full_poll_every = full_poll_every
        self._full_at = float("-inf")       # monotonic time of the next look at every file
        # directory -> watched? since the last look. A watch is asked for again at each look
        # (inotify gives back the same one): a directory deleted and made again is another
        # one, and its old watch would say nothing.
        self._asked: dict[str, bool] = {}
        try:
            self._inotify: Inotify | None = Inotify()
        except (OSError, AttributeError) as e:    # no inotify in this libc, or no more
            self._inotify = None
            _log.info("no inotify (%s): every followed file is polled at each look",
                      getattr(e, "strerror", None) or e)

    def look_at_all(self) -> bool:
        """Should every file be polled now: news from a watched directory since the last
        call, or FULL_POLL_EVERY seconds since every file was? (Once per look.)"""
        self._asked.clear()
        if self._inotify is None:
            return True
        news = self._inotify.had_events()
        now = time.monotonic()
        if not news and now < self._full_at:
            return False
        self._full_at = now + self.full_poll_every
        return True

    def watch(self, path: str) -> bool:
        """Watch the directory of `path` for news; False if it cannot be (the file has to be
        polled every time)."""
        if self._inotify is None:
            return False
        directory = os.path.dirname(path) or "."
        watched = self._asked.get(directory)
        if watched is None:
            try:
                self._inotify.add_watch(directory, NEWS)
                watched = True
            except OSError:        # not there (yet), not searchable, or out of watches
                watched = False
            self._asked[directory] = watched
        return watched

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
