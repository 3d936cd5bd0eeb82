"""Runners: move messages between the stages.

`run_single` follows the inputs and calls every stage in one loop, in one process (what
`plogd --single` runs). `replay` computes the windows of existing files, from start to end.
The multi-process runner (plogd.supervisor) uses the very same stage objects.
"""
from __future__ import annotations

import glob
import logging
import os
import signal
import time
from dataclasses import replace
from typing import Callable

from . import checkpoint, statedir, systemd
from .config import Config, ConfigError, InputConfig
from .formats.compiled import log_status as log_speedup_status
from .monitoring import Monitor
from .stages.aggregate import AggregateStage
from .stages.parse import ParseStage
from .stages.read import ReadStage, read_file
from .stages.write import DISK_RETRY, WriteStage, disk_full, log_disk_full, records

_log = logging.getLogger("plogd")

IDLE_SLEEP = 0.2       # seconds between polls when no input has anything new
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


def load_state(config: Config) -> tuple[dict | None, Config]:
    """The checkpoint to resume from (None: there is none) and the configuration to resume
    with. The state dir is proven writable first (ConfigError). A damaged checkpoint is moved
    aside, and every input starts where `damaged_checkpoint` says: by default at the end of
    its files, so that nothing is counted twice."""
    statedir.prepare(config.state_dir)
    path = config.checkpoint_path
    try:
        state = checkpoint.load(path)
        if state is not None:       # the shape: what the reader and the aggregator take
            positions_of(state)
            AggregateStage(config.inputs, config.interval, state=state)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        return None, _after_damage(config, e)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the checkpoint: {e.strerror}") from None
    if state is not None:
        _log.info("resuming from the checkpoint %s", path)
    return state, config


def _after_damage(config: Config, error: Exception) -> Config:
    aside = checkpoint.move_aside(config.checkpoint_path)
    start = config.damaged_checkpoint
    if start == "end":
        cost = ("every input starts at the end of its files: the lines written since the "
                "last checkpoint and its open windows are not counted, nothing is counted twice")
    else:
        size = sum(os.path.getsize(p) for spec in config.inputs for p in glob.glob(spec.path)
                   if os.path.isfile(p))
        cost = (f"every input re-reads its files from the start, at most {size} bytes: what "
                "was counted before is counted again")
    _log.error("the checkpoint %s is damaged (%s: %s); it is kept as %s, and %s "
               "(damaged_checkpoint: %s)", config.checkpoint_path, type(error).__name__,
               error, aside, cost, start)
    return replace(config, inputs=[replace(spec, start=start) for spec in config.inputs])


def positions_of(state: dict | None) -> dict:
    from .files import Position
    return {name: {path: Position.from_json(p) for path, p in snap["positions"].items()}
            for name, snap in (state or {}).items()}


def spool_of(config: Config) -> tuple[str, str] | None:
    """(result file, the sender's state file) for self-monitoring, with Zabbix configured."""
    if config.zabbix is None:
        return None
    from .stages.send import send_state_path
    return config.result_path, send_state_path(config)


def make_sender(config: Config):
    """The send stage (None without `zabbix:`): it follows the result file on its own."""
    if config.zabbix is None:
        return None
    from .stages.send import make_send_stage   # zabbix-utils only where it is used
    return make_send_stage(config)


def spool_full(backlog: int, limit: int, was_full: bool) -> bool:
    """Whether reading pauses: the values not yet accepted by Zabbix reach `limit` bytes
    (the logs on disk are the buffer then; nothing is dropped). Logs each change."""
    full = bool(limit) and backlog >= limit
    if full and not was_full:
        _log.warning("the spool is full (%d bytes not yet accepted by Zabbix, zabbix."
                     "spool_max_bytes %d): reading pauses until Zabbix takes them", backlog, limit)
    elif was_full and not full:
        _log.warning("the spool has room again: reading goes on")
    return full


def run_single(config: Config, on_records: Callable[[list[dict]], None] | None = None,
               stop: StopRequest | None = None, until: float | None = None, once: bool = False) -> None:
    """Follow every input until stopped (`until`: a monotonic deadline; `once`: stop when
    every input has been read to its end). Resumes from the checkpoint, saves it on exit."""
    stop = stop or StopRequest()
    state, config = load_state(config)
    read = ReadStage(config.inputs, config.max_line_length, positions_of(state),
                     first_run=state is None)
    parse = ParseStage(config.inputs, config.interval, config.max_line_length)
    aggregate = AggregateStage(config.inputs, config.interval, state=state,
                               monitor=Monitor(config.interval, read.stats,
                                               spool=spool_of(config)))
    write = WriteStage(config.result_path, config.checkpoint_path, config.host, config.inputs,
                       rotate_bytes=config.zabbix.result_rotate_bytes if config.zabbix else 0)
    sender = make_sender(config)
    _log.info("plogd --single: %d input(s), results in %s, %s", len(config.inputs),
              config.result_path, f"sending to Zabbix {sender.address} as host {config.host!r}"
              if sender else "no Zabbix configured")
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

    spool_max = config.zabbix.spool_max_bytes if sender is not None else 0
    full = False           # the spool (result files not yet accepted) is full: reading pauses
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
            if sender is not None:
                sender.poll()       # what the result file gained, when the server can take it
            commit()
            if spool_max and (batches or full):    # each 1 MiB read, and while paused
                full = spool_full(sender.backlog_bytes(), spool_max, full)
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
        if sender is not None:
            sender.poll()
            sender.close()
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
