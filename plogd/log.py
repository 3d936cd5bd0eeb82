"""Logging set-up and a rate limit, so that a flood of bad lines cannot flood the log."""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# the journal stamps each line itself and reads its priority from a "<N>" prefix (sd-daemon)
JOURNAL_FORMAT = "<%(priority)d>%(name)s: %(message)s"
PRIORITIES = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
              logging.DEBUG: 7}


class JournalFormatter(logging.Formatter):
    def __init__(self):
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        priority = PRIORITIES.get(record.levelno, 6)
        record.priority = priority      # for the format's %(priority)s
        text = super().format(record)
        # a traceback's lines would be read as lines of their own, at the default priority
        return text.replace("\n", f"\n<{priority}>")


def under_journald(stream=sys.stderr) -> bool:
    """Whether `stream` is the journal: systemd sets JOURNAL_STREAM to its device:inode."""
    try:
        device, inode = map(int, os.environ.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def setup(level: str = "INFO") -> None:
    """To stderr: the journal under systemd (priorities, no timestamp of ours), the terminal
    otherwise."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter() if under_journald() else logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def setup_file(path: str, level: str = "INFO") -> None:
    """To a file (--daemon mode), replacing any handler set up before. The file is reopened
    when logrotate moves it away (WatchedFileHandler), whatever its postrotate does."""
    handler = logging.handlers.WatchedFileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class RateLimitedLog:
    """At most `burst` messages per `period` seconds for each kind of event; the number
    suppressed is said with the next message that gets through."""

    def __init__(self, name: str, burst: int = 5, period: float = 60.0):
        self.logger = logging.getLogger(name)
        self.burst = burst
        self.period = period
        self._windows: dict[str, list] = {}   # kind -> [period start, sent, suppressed]

    def warning(self, kind: str, message: str, *args) -> None:
        suppressed = self.admit(kind)
        if suppressed is None:
            return
        if suppressed:
            message += " (%d similar messages suppressed)"
            args += (suppressed,)
        self.logger.warning(message, *args)

    def admit(self, kind: str) -> int | None:
        """None when a message of this kind is to be suppressed; else the number suppressed
        since the last one let through (for a caller that builds costly messages only when
        they will be logged)."""
        now = time.monotonic()
        state = self._windows.setdefault(kind, [now, 0, 0])
        if now - state[0] >= self.period:
            state[0], state[1] = now, 0
        if state[1] >= self.burst:
            state[2] += 1
            return None
        state[1] += 1
        suppressed, state[2] = state[2], 0
        return suppressed
