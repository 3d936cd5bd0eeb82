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

import logging
import os
import time

from inotify_simple import INotify, flags

_log = logging.getLogger("plogd.read")

FULL_POLL_EVERY = 2.0      # seconds: every file is looked at this often, news or not

NEWS = (flags.MODIFY | flags.ATTRIB | flags.CLOSE_WRITE | flags.CREATE | flags.DELETE
        | flags.MOVED_FROM | flags.MOVED_TO | flags.DELETE_SELF | flags.MOVE_SELF)


class DirWatch:
    def __init__(self, full_poll_every: float = FULL_POLL_EVERY):
        self.full_poll_every = full_poll_every
        self._full_at = float("-inf")       # monotonic time of the next look at every file
        # directory -> watched? since the last look. A watch is asked for again at each look
        # (inotify gives back the same one): a directory deleted and made again is another
        # one, and its old watch would say nothing.
        self._asked: dict[str, bool] = {}
        try:
            self._inotify: INotify | None = INotify(nonblocking=True)
        except OSError as e:
            self._inotify = None
            _log.info("no inotify (%s): every followed file is polled at each look",
                      e.strerror)

    def look_at_all(self) -> bool:
        """Should every file be polled now: news from a watched directory since the last
        call, or FULL_POLL_EVERY seconds since every file was? (Once per look.)"""
        self._asked.clear()
        if self._inotify is None:
            return True
        news = self._inotify.read(timeout=0)
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
