"""aggregate: merge partials into open windows and close them by event time.

Windows are [start, start + interval) with start a multiple of the interval, taken from the
lines' own timestamps. A window closes when the newest event time seen passes its end plus
the input's lateness, or, when the input is idle (the reader is at the end of its files),
when the wall clock does. Once a window is closed, lines that still arrive for it are late:
they are counted in the input's `late` counter and not added to any window (a value already
written and sent to Zabbix is never changed or sent twice).
"""
from __future__ import annotations

import logging

from ..messages import ClosedWindow, InputCounters, Partial
from ..metrics import Metric

_log = logging.getLogger("plogd.aggregate")

NEVER = None   # lateness for replays: keep every window open until the end of the input


class Aggregator:
    def __init__(self, input_name: str, metrics: list[Metric], interval: int,
                 lateness: int | None):
        self.input = input_name
        self.metrics = metrics
        self.interval = interval
        self.lateness = lateness
        self.open: dict[int, list] = {}        # window start -> metric states
        self.closed_before: int | None = None  # windows starting before this are closed
        self.newest: int | None = None         # newest event time seen
        self.counters = InputCounters()

    def handle(self, partial: Partial) -> list[ClosedWindow]:
        counters = self.counters
        counters.lines += partial.lines
        counters.unmatched += partial.unmatched
        counters.too_long += partial.too_long
        for start, (lines, states) in partial.windows.items():
            if self.closed_before is not None and start < self.closed_before:
                counters.late += lines
                continue
            current = self.open.get(start)
            if current is None:
                self.open[start] = states
            else:
                self.open[start] = [m.merge(a, b) for m, a, b in zip(self.metrics, current, states)]
        if partial.newest is not None and (self.newest is None or partial.newest > self.newest):
            self.newest = partial.newest
        return self._close_until(self.newest)

    def tick(self, now: float) -> list[ClosedWindow]:
        """The input is idle: close what the wall clock says is complete."""
        return self._close_until(int(now))

    def flush(self) -> list[ClosedWindow]:
        """End of input (replay, shutdown of a replay): close everything, oldest first."""
        return self._close(sorted(self.open))

    def _close_until(self, now: int | None) -> list[ClosedWindow]:
        if now is None or self.lateness is NEVER:
            return []
        boundary = (now - self.lateness) // self.interval * self.interval
        if self.closed_before is not None and boundary <= self.closed_before:
            return []
        self.closed_before = boundary
        return self._close(sorted(start for start in self.open if start < boundary))

    def _close(self, starts: list[int]) -> list[ClosedWindow]:
        closed = []
        for start in starts:
            states = self.open.pop(start)
            values = [pair for m, s in zip(self.metrics, states) for pair in m.values(s)]
            closed.append(ClosedWindow(self.input, start, values))
        self.counters.windows += len(closed)
        return closed
