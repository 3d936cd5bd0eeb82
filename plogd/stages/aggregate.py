"""aggregate: merge partials into open windows and close them by event time.

Windows are [start, start + interval) with start a multiple of the interval, taken from the
lines' own timestamps. A window closes when the newest event time seen passes its end plus
the input's lateness, or, when the input is idle (the reader is at the end of its files),
when the wall clock does. Once a window is closed, lines that still arrive for it are late:
they are counted in the input's `late` counter and, with `late: drop` (the default), not
added to any window (a value already written and sent to Zabbix is never changed or sent
twice); with `late: current` they are added to the oldest window still open (the one
starting at `closed_before`, the next to close), created if need be.

Odd timestamps: the parser sets aside lines without a time or before 1991; here, while
following, windows starting more than max_skew seconds after the wall clock are counted in
`odd_time` and dropped, and do not move the watermark (`newest`).

One line from the future, even within max_skew, must not close the present: a window that
starts more than `jump` (max(lateness, interval)) after the watermark (before the first
line, the wall clock) is held aside, per path, until the path's lines tell whether they
went there: the last line of a later batch (`Partial.last`) at or past it (less `jump`)
confirms it — it is merged and moves the watermark, as after a quiet hour; back in the
present, it refutes it — its lines are counted in `odd_time`, in no window. The last line
of its own batch may be the outlier itself, so it decides only the windows it has passed.
While the input is idle, a held window that the wall clock has reached is confirmed. Held
windows are in the checkpoint. A line less than `jump` ahead is indistinguishable from
traffic: it moves the watermark.

Partials are merged in the order of their batches (parsers may finish them out of order), so
that the open windows always hold exactly the lines up to each path's recorded position:
that pair is what the checkpoint stores, and what a restart resumes from.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict

from ..files import Position
from ..log import RateLimitedLog
from ..messages import ClosedWindow, InputCounters, Partial
from ..metrics import Metric
from ..monitoring import Monitor

_log = logging.getLogger("plogd.aggregate")
_odd_log = RateLimitedLog("plogd.aggregate")

NEVER = None   # lateness for replays: keep every window open until the end of the input


class Aggregator:
    """One input's open windows."""

    def __init__(self, input_name: str, metrics: list[Metric], interval: int,
                 lateness: int | None, late: str = "drop", max_skew: int | None = None,
                 clock=time.time):
        self.input = input_name
        self.metrics = metrics
        self.interval = interval
        self.lateness = lateness
        self.late = late                       # drop | current: what late lines become
        self.max_skew = max_skew               # following: windows further ahead are odd
        self.clock = clock
        self.open: dict[int, list] = {}        # window start -> metric states
        self.closed_before: int | None = None  # windows starting before this are closed
        self.newest: int | None = None         # newest event time seen
        self.counters = InputCounters()
        self.positions: dict[str, Position] = {}      # path -> end of the last merged batch
        self.jump = max(lateness or 0, interval)      # further ahead of the watermark: held
        self.held: dict[str, list[list]] = {}         # path -> [start, lines, newest, states]
        self._expected: dict[str, int] = {}           # path -> next batch number to merge
        self._early: dict[str, dict[int, Partial]] = {}   # batches that came before their turn
        self.file_switched = False

    def handle(self, partial: Partial) -> list[ClosedWindow]:
        expected = self._expected.get(partial.path, 1)
        if partial.seq != expected:
            self._early.setdefault(partial.path, {})[partial.seq] = partial
            return []
        closed = self._merge(partial)
        early = self._early.get(partial.path, {})
        expected += 1
        while expected in early:
            closed += self._merge(early.pop(expected))
            expected += 1
        self._expected[partial.path] = expected
        return closed

    def tick(self, now: float) -> list[ClosedWindow]:
        """The input is idle: confirm the held windows the wall clock has reached, and close
        what the wall clock says is complete."""
        for path, held in list(self.held.items()):
            for window in [w for w in held if w[0] <= now]:
                held.remove(window)
                self._add(window[0], window[1], window[3])
                self.newest = window[2] if self.newest is None else max(self.newest, window[2])
            if not held:
                del self.held[path]
        return self._close_until(int(now))

    def merged_up_to(self, path: str) -> int:
        """The number of the last batch of `path` merged."""
        return self._expected.get(path, 1) - 1

    def flush(self) -> list[ClosedWindow]:
        """End of input (replay): close everything, oldest first."""
        return self._close(sorted(self.open))

    # -- checkpoint
    def snapshot(self) -> dict:
        return {"metrics": [m.key for m in self.metrics], "types": _types(self.metrics),
                "open": [[start, [m.dump(s) for m, s in zip(self.metrics, states)]]
                         for start, states in self.open.items()],
                "held": {path: [[start, lines, newest, [m.dump(s) for m, s in
                                                        zip(self.metrics, states)]]
                                for start, lines, newest, states in held]
                         for path, held in self.held.items()},
                "closed_before": self.closed_before, "newest": self.newest,
                "counters": asdict(self.counters),
                "positions": {path: p.to_json() for path, p in self.positions.items()}}

    def restore(self, snap: dict) -> None:
        self.positions = {path: Position.from_json(p) for path, p in snap["positions"].items()}
        self.counters = InputCounters(**snap["counters"])
        changed = snap["metrics"] != [m.key for m in self.metrics] or \
            snap.get("types", _types(self.metrics)) != _types(self.metrics)
        if not changed:
            try:
                self.open = {start: [m.load(s) for m, s in zip(self.metrics, states)]
                             for start, states in snap["open"]}
                self.held = {path: [[start, lines, newest,
                                     [m.load(s) for m, s in zip(self.metrics, states)]]
                                    for start, lines, newest, states in held]
                             for path, held in snap.get("held", {}).items()}
            except (ValueError, TypeError, KeyError, IndexError):
                changed = True
        if changed:
            _log.warning("%s: the metrics changed since the checkpoint; the %d window(s) that "
                         "were open are dropped", self.input, len(snap["open"]))
            self.open = {}
            return
        self.closed_before, self.newest = snap["closed_before"], snap["newest"]

    # -- merging and closing
    def _merge(self, partial: Partial) -> list[ClosedWindow]:
        counters = self.counters
        counters.lines += partial.lines
        counters.unmatched += partial.unmatched
        counters.too_long += partial.too_long
        counters.odd_time += partial.odd_time
        counters.regex_timeout += partial.regex_timeout
        following = self.lateness is not NEVER
        ahead = None      # following: a window starting after this is in the future: odd
        if self.max_skew is not None and following:
            ahead = self.clock() + self.max_skew
        # the newest times of the windows merged: the watermark follows them
        merged: list[int] = []
        kept = self._decide(self.held.pop(partial.path, []), partial.last, merged, False)
        # None: no watermark yet (the first lines ever were held)
        newest = max(t for t in (*merged, self.newest) if t is not None) if merged \
            else self.newest
        if newest is None and following:   # the first lines ever: against the wall clock
            newest = int(self.clock())
        far = newest + self.jump if following and newest is not None else None
        fresh = []
        for start, (lines, states) in sorted(partial.windows.items()):
            newest = partial.window_newest[start] if partial.window_newest else partial.newest
            assert newest is not None           # a batch with windows has lines with times
            if ahead is not None and start > ahead:
                self._odd(lines, f"stamped more than {self.max_skew} s ahead of the wall clock")
            elif far is not None and start > far:
                fresh.append([start, lines, newest, states])
            else:
                self._add(start, lines, states)
                merged.append(newest)
        kept += self._decide(fresh, partial.last, merged, True)
        if kept:
            self.held[partial.path] = kept
        if partial.position is not None:
            previous = self.positions.get(partial.path)
            if previous is None or (previous.file, previous.upcoming) != (
                    partial.position.file, partial.position.upcoming):
                self.file_switched = True    # another file, or files queued: checkpoint now
            self.positions[partial.path] = partial.position
        if merged and (self.newest is None or max(merged) > self.newest):
            self.newest = max(merged)
        return self._close_until(self.newest)

    def _decide(self, held: list[list], last: int | None, merged: list[int],
                own_batch: bool) -> list[list]:
        """Merge the held windows the path's lines went to (their times into `merged`),
        count as odd those they stayed behind, return the others (not known yet). `last`:
        the time of the path's latest line; `own_batch`: it is from the windows' batch, so
        it may be the outlier itself, and decides only the windows it has passed."""
        kept = []
        for window in held:
            start, lines, newest, states = window
            if last is None or own_batch and start <= last < start + self.interval:
                kept.append(window)
            elif last >= start - self.jump:
                self._add(start, lines, states)
                merged.append(newest)
            else:
                self._odd(lines, f"stamped more than {self.jump} s ahead of the lines after "
                          "them")
        return kept

    def _add(self, start: int, lines: int, states: list) -> None:
        """A window's lines and states into the open windows (or counted late)."""
        if self.closed_before is not None and start < self.closed_before:
            self.counters.late += lines
            if self.late != "current":
                return
            start = self.closed_before      # the oldest window still open
        current = self.open.get(start)
        if current is None:
            self.open[start] = states
        else:
            self.open[start] = [m.merge(a, b) for m, a, b in zip(self.metrics, current, states)]

    def _odd(self, lines: int, why: str) -> None:
        self.counters.odd_time += lines
        _odd_log.warning("future", "%s: %d line(s) %s are counted in odd_time, in no window",
                         self.input, lines, why)

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
            values = [v for m, s in zip(self.metrics, states) for v in m.values(s, self.interval)]
            closed.append(ClosedWindow(self.input, start, values))
        self.counters.windows += len(closed)
        return closed


def next_tick(inputs, interval: int, now: float) -> float:
    """The first wall-clock second after `now` at which an idle tick can change anything:
    a window's end plus an input's lateness (a window closes) or a window's start (a held
    window is confirmed). Between them an idle reader need not tick."""
    second = int(now)
    return min((second - lateness) // interval * interval + interval + lateness
               for lateness in {0, *(spec.lateness for spec in inputs)})


def _types(metrics: list[Metric]) -> list[str]:
    """What a metric's state is made of: its type and whether it is grouped."""
    return [m.kind + (" by" if m.by else "") for m in metrics]


class AggregateStage:
    """The aggregate stage: each input's open windows, restored from the checkpoint. It
    gathers what closes and says when a commit (windows + checkpoint) is due: at once when
    windows closed or an input moved to another file, else every COMMIT_EVERY seconds while
    lines flow."""

    COMMIT_EVERY = 0.5

    def __init__(self, inputs, interval: int, replay: bool = False, state: dict | None = None,
                 monitor: Monitor | None = None):
        self.monitor = monitor     # self-monitoring values, once per interval (not in replays)
        self.aggregators = {
            spec.name: Aggregator(spec.name, spec.metrics, interval,
                                  NEVER if replay else spec.lateness,
                                  getattr(spec, "late", "drop"), getattr(spec, "max_skew", None))
            for spec in inputs}
        for name, snap in (state or {}).items():
            if name in self.aggregators:
                self.aggregators[name].restore(snap)
        self._closed: list[ClosedWindow] = []
        self._dirty = False
        self._committed_at = time.monotonic()
        self._tick: tuple[float, dict] | None = None   # an idle tick waiting for its batches

    def handle(self, partial: Partial) -> None:
        self._closed += self.aggregators[partial.input].handle(partial)
        self._dirty = True
        if self._tick is not None:
            self.tick(*self._tick)

    def tick(self, now: float, sent: dict | None = None) -> None:
        """The reader is idle: close what the wall clock says is complete — once every batch
        it had sent (`sent`: {(input, path): last batch number}) has been merged."""
        if sent and any(self.aggregators[name].merged_up_to(path) < seq
                        for (name, path), seq in sent.items()):
            self._tick = (now, sent)
            return
        self._tick = None
        for a in self.aggregators.values():
            self._closed += a.tick(now)

    def commit_due_in(self) -> float:
        """Seconds until a commit is due with no more news (COMMIT_EVERY when nothing
        waits): how long the stage may wait for a message."""
        if not self._dirty:
            return self.COMMIT_EVERY
        return max(self._committed_at + self.COMMIT_EVERY - time.monotonic(), 0.0)

    def flush(self) -> list[ClosedWindow]:
        """End of a replay: every window, oldest first."""
        return [w for a in self.aggregators.values() for w in a.flush()]

    def take_commit(self, force: bool = False) -> tuple[list[ClosedWindow], dict] | None:
        """(closed windows, checkpoint state) when a commit is due, else None."""
        if self.monitor is not None:
            health = self.monitor.due(time.time(), self.aggregators)
            if health is not None:
                self._closed.append(health)
        switched = any(a.file_switched for a in self.aggregators.values())
        due = self._closed or switched or (
            self._dirty and time.monotonic() - self._committed_at >= self.COMMIT_EVERY)
        if not (due or force):
            return None
        for a in self.aggregators.values():
            a.file_switched = False
        closed, self._closed, self._dirty = self._closed, [], False
        self._committed_at = time.monotonic()
        return closed, {name: a.snapshot() for name, a in self.aggregators.items()}

    @property
    def open_windows(self) -> int:
        return sum(len(a.open) for a in self.aggregators.values())
