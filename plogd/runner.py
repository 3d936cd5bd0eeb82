"""Runners: move messages between the stages.

`run_single` follows the inputs and calls every stage in one loop, in one process (what
`plogd --single` runs). `replay` computes the windows of existing files, from start to end.
Both use the very same stage objects.
"""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from typing import Callable

from .config import Config, InputConfig
from .messages import ClosedWindow
from .stages.aggregate import NEVER, Aggregator
from .stages.parse import Parser
from .stages.read import FileFollower, read_file
from .stages.write import ResultWriter, records

_log = logging.getLogger("plogd")

IDLE_SLEEP = 0.2   # seconds between polls when no input has anything new


@dataclass
class Chain:
    """parse -> aggregate for one input."""
    parser: Parser
    aggregator: Aggregator

    @classmethod
    def build(cls, config: Config, spec: InputConfig, lateness: int | None) -> "Chain":
        return cls(Parser(spec.name, spec.format, spec.metrics, config.interval),
                   Aggregator(spec.name, spec.metrics, config.interval, lateness))

    def handle(self, batch) -> list[ClosedWindow]:
        return self.aggregator.handle(self.parser.handle(batch))


class Stop:
    """Set by SIGTERM/SIGINT: the loops finish what they hold and return."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request)

    def _request(self, signum, frame):
        self.requested = True


def run_single(config: Config, on_records: Callable[[list[dict]], None] | None = None,
               stop: Stop | None = None, until: float | None = None) -> None:
    """Follow every input until stopped; `until` (monotonic time) ends the run early."""
    stop = stop or Stop()
    readers = [FileFollower(i.name, i.path, i.start, config.max_line_length) for i in config.inputs]
    chains = {i.name: Chain.build(config, i, i.lateness) for i in config.inputs}
    writer = ResultWriter(config.result_path, config.host)
    sender = None
    if config.zabbix:
        from .stages.send import ZabbixSender   # zabbix-utils only where it is used
        sender = ZabbixSender(config.zabbix.server, config.zabbix.port)
    _log.info("plogd --single: %d input(s), results in %s, %s", len(readers), config.result_path,
              f"sending to Zabbix {sender.address} as host {config.host!r}" if sender
              else "no Zabbix configured")

    def deliver(windows: list[ClosedWindow]) -> None:
        written = writer.handle(windows)
        if written:
            if sender is not None:
                sender.handle(written)
            if on_records is not None:
                on_records(written)

    try:
        while not stop.requested and (until is None or time.monotonic() < until):
            busy = False
            for reader in readers:
                for batch in reader.poll():
                    busy = True
                    deliver(chains[batch.input].handle(batch))
            if not busy:
                now = time.time()
                for chain in chains.values():
                    deliver(chain.aggregator.tick(now))
                if sender is not None:
                    sender.tick()
                time.sleep(IDLE_SLEEP)
    finally:
        for reader in readers:
            reader.close()
        writer.close()
        still_open = sum(len(c.aggregator.open) for c in chains.values())
        _log.info("plogd stopped; %d window(s) still open were not written", still_open)


def replay(config: Config, spec: InputConfig, paths: list[str],
           progress: Callable[[int], None] | None = None) -> tuple[list[dict], Chain]:
    """The value records of every window in the files, oldest window first.

    Windows stay open until the end of the input, so lines out of time order (Apache logs
    the request's start time, in completion order) are all counted in their window."""
    chain = Chain.build(config, spec, NEVER)
    for path in paths:
        for batch in read_file(spec.name, path, config.max_line_length, progress):
            chain.handle(batch)
    closed = chain.aggregator.flush()
    return [r for window in closed for r in records(window, config.host)], chain
