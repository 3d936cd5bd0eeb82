"""Logging set-up and a rate limit, so that a flood of bad lines cannot flood the log."""
from __future__ import annotations

import logging
import sys
import time


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: str = "INFO") -> None:
    """To stderr: the journal under systemd, the terminal otherwise."""
    logging.basicConfig(stream=sys.stderr, level=level, format=FORMAT)


def setup_file(path: str, level: str = "INFO") -> None:
    """To a file (--daemon mode), replacing any handler set up before."""
    logging.basicConfig(filename=path, level=level, format=FORMAT, force=True)


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
