"""The output runner: what every output gets without writing it (plogd.outputs.base).

One `OutputRunner` per configured output owns its cursor in the spool, reads the records
after it in batches, hands each batch to the output, and moves the cursor on (saved in
`STATE_DIR/output.NAME.json`, with its totals) only once the output took it. A crash between
a send and the save sends that batch again at the next start: harmless, a record is
identified by its key and clock.

An output that is down (OutputDown) gets the same batch again after a capped exponential
backoff (1 s, 2 s ... 60 s), with one log line when it goes down and one when it is back.
Its records wait in the spool meanwhile. What happens when its backlog reaches
`max_backlog` is its `on_full`: `pause` (the reader pauses, see plogd.spool.full_outputs;
nothing is lost) or `drop_oldest` (its oldest records are skipped and counted as dropped, so
a dead metrics server never holds back the others).

`run_outputs` drives every runner concurrently as asyncio tasks in one process (the send
stage): a slow or dead output never delays another. It removes the rotated result files
that every output has passed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .. import checkpoint, spool
from ..heartbeat import beat
from .base import Output, OutputDown

_log = logging.getLogger("plogd.output")

BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
POLL = 0.5               # seconds between looks at the spool when there is nothing new
HOUSEKEEPING = 1.0       # seconds between removals of passed files (and heartbeats)
HOUSEKEEPING = 1.0       # seconds between removals of passed files (and heartbeats)
LOG_EVERY = 60.0         # seconds between two log lines about refused or dropped records


class OutputRunner:
    def __init__(self, output: Output, result_path: str, state_dir: str, *,
                 batch_size: int = 1000, max_backlog: int = 1 << 30, on_full: str = "pause",
                 clock: Callable[[], float] = time.monotonic):
        self.output = output
        self.name = output.name
        self.result_path = result_path
        self.batch_size = batch_size
        self.max_backlog = max_backlog
        self.on_full = on_full
        self._clock = clock
        self.state_path = spool.output_state_path(state_dir, self.name)
        state = self._load()
        totals = state.get("totals", {})
        self.sent = totals.get("sent", 0)          # records the output took
        self.refused = totals.get("refused", 0)    # records it refused (not sent again)
        self.dropped = totals.get("dropped", 0)    # records skipped by drop_oldest
        self.reader = spool.SpoolReader(result_path, self._cursor(state), self.name)
        self.opened = False
        self.up = True
        self._backoff = 0.0
        self._retry_at = 0.0
        self._down_since = 0.0
        self._logged = {"refused": -1e18, "dropped": -1e18}
        self._pending: tuple[list[dict], spool.Cursor] | None = None
        self._unsaved = False     # the last save failed (a full or read-only disk)

    # -- state -----------------------------------------------------------------------------
    def _load(self) -> dict:
        try:
            state = checkpoint.load(self.state_path)
            if state is not None:
                spool.Cursor.from_json(state.get("cursor", {}))
                if not isinstance(state.get("totals", {}), dict):
                    raise ValueError("'totals' is not an object")
            return state or {}
        except OSError as e:
            problem, aside = e.strerror, None
        except ValueError as e:          # damaged: kept aside for a post-mortem
            problem, aside = str(e), checkpoint.move_aside(self.state_path)
        _log.error("%s: cannot use the state file %s (%s)%s; sending the result files again "
                   "from their start, %d bytes (a value sent twice is stored once)", self.name,
                   self.state_path, problem, f", kept as {aside}" if aside else "",
                   spool.backlog(self.result_path, spool.Cursor()))
        return {}

    def _cursor(self, state: dict) -> spool.Cursor:
        if "cursor" in state:
            return spool.Cursor.from_json(state["cursor"])
        legacy = self.output.legacy_cursor()     # where an older plogd had got to
        try:
            return spool.Cursor.from_json(legacy) if legacy else spool.Cursor()
        except ValueError:
            return spool.Cursor()

    def save(self) -> None:
        """Save the cursor and totals. A disk that refuses (full, read-only) is logged once
        and tried again at the next save: meanwhile the output goes on, and a restart
        would send again what it took since (harmless: a value is stored once)."""
        totals = {"sent": self.sent, "refused": self.refused, "dropped": self.dropped}
        totals.update(self.output.stats())
        try:
            checkpoint.save(self.state_path, {"cursor": self.reader.cursor.to_json(),
                                              "totals": totals, "up": self.up,
                                              "type": self.output.type})
        except OSError as e:
            if not self._unsaved:
                _log.error("%s: cannot save its cursor in %s (%s); it goes on and tries again "
                           "at each batch (a restart meanwhile sends those batches again)",
                           self.name, self.state_path, e.strerror)
            self._unsaved = True
            return
        if self._unsaved:
            _log.warning("%s: its cursor is saved again in %s", self.name, self.state_path)
        self._unsaved = False

    def backlog(self) -> int:
        return spool.backlog(self.result_path, self.reader.cursor)

    # -- one step --------------------------------------------------------------------------
    async def step(self) -> bool:
        """Open if need be, then send one batch; True when it moved (more may be waiting).
        Never raises for a delivery problem."""
        if self._clock() < self._retry_at:
            return False
        try:
            opened_now = not self.opened
            if opened_now:
                await self.output.open()
                self.opened = True
            if self.on_full == "drop_oldest":
                self._drop_oldest()
            if self._pending is None:
                # nothing new costs one stat; a read lists the directory
                records, after = (([], self.reader.cursor) if self.reader.nothing_new()
                                  else self.reader.read(self.batch_size))
                if not records and after == self.reader.cursor:
                    await self.output.tick()
                    if opened_now:       # an exchange; nothing left to send (a drop) is none
                        self._went_up()
                    return False
                self._pending = records, after
            records, after = self._pending
            refused = await self.output.send(records) if records else []
            await self.output.tick()
        except OutputDown as e:
            self._went_down(e)
            return False
        except OSError as e:         # its own state (the Zabbix output's send.json) refused
            self._went_down(f"cannot save its state: {e.strerror or e}")
            return False
        except Exception as e:       # an output's own bug: retried like an outage, named
            self._went_down(f"{type(e).__name__}: {e} (a bug in the output)")
            return False
        self._went_up()
        self.sent += len(records) - len(refused)
        self.refused += len(refused)
        if refused:
            self._log_some("refused", "%s refused %d record(s), e.g. %s=%r at %s; they are not "
                           "sent again", self, len(refused), refused[0].get("key"),
                           refused[0].get("value"), refused[0].get("clock"))
        self.reader.advance(after)
        self._pending = None
        self.save()
        return True

    def _drop_oldest(self) -> None:
        if self.backlog() < self.max_backlog:
            return
        cursor, dropped = spool.skip_oldest(self.result_path, self.reader.cursor,
                                            self.max_backlog)
        self._pending = None
        self.reader.advance(cursor)
        self.dropped += dropped
        self.save()
        self._log_some("dropped", "%s: its backlog reached max_backlog %d bytes; dropped its "
                       "%d oldest record(s) (on_full: drop_oldest; %d in all)", self,
                       self.max_backlog, dropped, self.dropped)

    def _log_some(self, what: str, message: str, *args) -> None:
        now = self._clock()
        if now - self._logged[what] >= LOG_EVERY:
            self._logged[what] = now
            _log.warning(message, *args)

    def _went_down(self, error: object) -> None:
        now = self._clock()
        self._backoff = min(max(self._backoff * 2, BACKOFF_MIN), BACKOFF_MAX)
        self._retry_at = now + self._backoff
        if self.up:
            self.up = False
            self._down_since = now
            self.save()
            _log.warning("cannot send to %s: %s; values wait in %s (%d bytes behind), "
                         "retrying with backoff up to %d s", self.output, error,
                         self.result_path, self.backlog(), BACKOFF_MAX)

    def _went_up(self) -> None:
        if not self.up:
            _log.warning("%s reachable again after %.0f s", self.output,
                         self._clock() - self._down_since)
            self.up = True
            self.save()
        self._backoff = 0.0
        self._retry_at = 0.0

    def __str__(self) -> str:
        return str(self.output)


async def _run_one(runner: OutputRunner, stop: asyncio.Event, poll: float) -> None:
    while not stop.is_set():
        if not await runner.step():
            try:
                await asyncio.wait_for(stop.wait(), poll)
            except TimeoutError:
                pass
    if runner.opened:
        for _ in range(10):        # a last try at what is written; the spool keeps the rest
            if not await runner.step():
                break
    await runner.output.close()


async def run_outputs(runners: list[OutputRunner], result_path: str,
                      stop: asyncio.Event, poll: float = POLL) -> None:
    """Drive every runner until `stop` is set, then let each send what is left once."""

    def remove_passed() -> None:
        for path in spool.remove_passed(result_path, [r.reader.cursor for r in runners]):
            _log.info("removed %s: every output took every value in it", path)

    async def housekeeping() -> None:
        while not stop.is_set():
            beat()           # the loop moves: --multi's supervisor sees the stage alive
            remove_passed()
            try:
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING)
            except TimeoutError:
                pass

    await asyncio.gather(housekeeping(), *(_run_one(r, stop, poll) for r in runners))
    remove_passed()          # what the last tries passed (the stop's own writes rotate too)
