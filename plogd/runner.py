"""Runners: move messages between the stages.

`run_single` follows the inputs and calls every stage in one loop, in one process (what
`plogd --single` runs; the outputs run on a thread of their own). `replay` computes the
windows of existing files, from start to end. The multi-process runner (plogd.supervisor)
builds the very same stage objects (plogd.pipeline).
"""
from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

from . import statedir, systemd
from .config import Config, InputConfig
from .formats.compiled import log_status as log_speedup_status
from .pipeline import (IDLE_SLEEP, OutputsThread, load_state, make_aggregator, make_parser,
                       make_reader, make_writer, spool_full)
from .spool import disk_full
from .stages.aggregate import AggregateStage
from .stages.parse import ParseStage
from .stages.read import read_file
from .stages.write import DISK_RETRY, log_disk_full, records

_log = logging.getLogger("plogd")

LOST = (", so plogd stops: the windows since the last checkpoint are not written, the next "
        "start reads their lines again")


class StopRequest:
    """Set by SIGTERM/SIGINT: the loops finish what they hold and return."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request)

    def _request(self, signum, frame):
        self.requested = True


def run_single(config: Config, on_records: Callable[[list[dict]], None] | None = None,
               stop: StopRequest | None = None, until: float | None = None,
               once: bool = False) -> None:
    """Follow every input until stopped (`until`: a monotonic deadline; `once`: stop when
    every input has been read to its end). Resumes from the checkpoint, saves it on exit."""
    stop = stop or StopRequest()
    state, config = load_state(config)
    read = make_reader(config, state)
    parse = make_parser(config)
    aggregate = make_aggregator(config, state, read.stats)
    write = make_writer(config)
    outputs = OutputsThread(config) if config.outputs else None
    _log.info("plogd --single: %d input(s), results in %s, %s", len(config.inputs),
              config.result_path, "outputs: " + ", ".join(
                  f"{o.name} ({o.type})" for o in config.outputs) if config.outputs
              else "no output configured")
    log_speedup_status(_log)

    refused = None         # a commit the full disk refused: tried again before reading on
    refused_at = 0.0
    unwritable = False     # the state dir refused a write, not for want of room: exit 2

    def commit(force: bool = False) -> None:
        nonlocal refused, refused_at, unwritable
        if unwritable or refused is not None and time.monotonic() - refused_at < DISK_RETRY:
            return
        due = refused or aggregate.take_commit(force)
        if due is None:
            return
        try:
            written = write.commit(*due)
        except OSError as e:
            if not disk_full(e):        # read-only (a disk error remounts it so), or denied
                unwritable = True
                raise statedir.unwritable(config.state_dir, e, LOST) from None
            if refused is None:
                log_disk_full(config.state_dir, e)
            refused, refused_at = due, time.monotonic()
            return
        if refused is not None:
            _log.warning("%s takes writes again: reading goes on", config.state_dir)
            refused = None
        if written and on_records is not None:
            on_records(written)

    full = False           # an output's backlog is full: reading pauses
    status = systemd.Status(config)
    systemd.notify("READY=1")          # Type=notify works with --single too
    try:
        while not stop.requested and (until is None or time.monotonic() < until):
            systemd.watchdog()
            status.update()
            batches = [] if full or refused else read.poll()
            for batch in batches:
                aggregate.handle(parse.handle(batch))
            if not batches and read.idle and not (full or refused):   # unread lines: no tick
                aggregate.tick(time.time())
            if outputs is not None:
                outputs.check()
            commit()
            if outputs is not None and (batches or full):   # each 1 MiB read, and while paused
                full = spool_full(config, full)
            if not batches:
                if once and read.idle and not (full or refused):
                    break
                time.sleep(IDLE_SLEEP)
    finally:
        systemd.notify("STOPPING=1")
        refused_at = 0.0
        commit()              # what the full disk refused, if anything, first
        commit(force=True)    # the open windows stay in the checkpoint for the next start
        if refused is not None:
            _log.error("%s is still full: the last windows are not written; the next start "
                       "reads their lines again from the last checkpoint", config.state_dir)
        read.close()
        write.close()
        if outputs is not None:
            outputs.stop()          # each output sends what is left once
        if not unwritable:
            _log.info("plogd stopped; %d open window(s) kept in the checkpoint",
                      aggregate.open_windows)


def replay(config: Config, spec: InputConfig, paths: list[str],
           progress: Callable[[int], None] | None = None) -> tuple[list[dict], AggregateStage]:
    """The value records of every window in the files, oldest window first.

    Windows stay open until the end of the input, so lines out of time order (Apache logs
    the request's start time, in completion order) are all counted in their window."""
    parse = ParseStage([spec], config.interval, config.max_line_length)
    aggregate = AggregateStage([spec], config.interval, replay=True)
    for path in paths:
        for batch in read_file(spec.name, path, config.max_line_length, progress):
            aggregate.handle(parse.handle(batch))
    closed = aggregate.flush()
    return [r for window in closed for r in records(window, config.host)], aggregate
