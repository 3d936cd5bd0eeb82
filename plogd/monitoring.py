"""Self-monitoring: plogd's own health as Zabbix values, under the prefix `plogd.`, once
per interval beside the metrics (same host, same result file, same sending).

    plogd.heartbeat                 epoch seconds when the values were taken
    plogd.restarts                  pipeline restarts since the daemon started (--multi)
    plogd.lines[INPUT]              lines read (counters are totals: use Zabbix's
    plogd.unmatched[INPUT]          "change per second" preprocessing for rates)
    plogd.too_long[INPUT]  plogd.late[INPUT]  plogd.odd_time[INPUT]
    plogd.regex_timeout[INPUT]      lines a user regex could not decide in its time bound
    plogd.lag[INPUT]                seconds between now and the newest line's time
    plogd.bytes_behind[INPUT]       written to the log but not read yet
    plogd.rotations[INPUT]  plogd.truncations[INPUT]  plogd.missing[INPUT]
    plogd.malformed[INPUT] (syslog inputs: messages without a syslog header)
  with Zabbix configured, from the sender's state file:
    plogd.sent  plogd.refused  plogd.given_up    values accepted / refused / given up (totals)
    plogd.zabbix_up                 1 when the last send reached the server, else 0
    plogd.spool_backlog             bytes of results written but not yet accepted

The per-input values are discovered: the writer tags them (LLDTagger) and the sender sends
the inputs as the discovery set INPUTS_DISCOVERY, macro {#INPUT}, before their first values,
so that one template (a discovery rule and prototypes plogd.lines[{#INPUT}] ...) fits every
host whatever its inputs are called.

Each set carries the start of the current interval as its clock, and the sender sends one
value per key and clock: a set taken again in the same interval (after a restart, with other
values) is not sent.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Callable

from .checkpoint import peek
from .messages import ClosedWindow
from .metrics import zabbix_key_param

PREFIX = "plogd"
INPUTS_DISCOVERY = "plogd.inputs.discovery"   # the inputs as {#INPUT}, sent by the sender
COUNTERS = ("lines", "unmatched", "too_long", "late", "odd_time", "regex_timeout")
READER = ("bytes_behind", "rotations", "truncations", "missing", "malformed")  # malformed: syslog
SENDER = ("sent", "refused", "given_up")          # the sender's totals


def values(now: float, aggregators: dict, reader_stats: dict, restarts: int,
           spool: tuple[str, str] | None = None) -> list:
    """(key, value) pairs of one set; `spool` is (result file, the sender's state file)."""
    pairs = [(f"{PREFIX}.heartbeat", int(now)), (f"{PREFIX}.restarts", restarts)]
    if spool is not None:
        pairs += _sender_values(*spool)
    for name, aggregator in aggregators.items():
        param = zabbix_key_param(name)
        counters = asdict(aggregator.counters)
        pairs += [(f"{PREFIX}.{c}[{param}]", counters[c]) for c in COUNTERS]
        if aggregator.newest is not None:
            pairs.append((f"{PREFIX}.lag[{param}]", round(now - aggregator.newest, 3)))
        stats = reader_stats.get(name, {})
        pairs += [(f"{PREFIX}.{s}[{param}]", stats[s]) for s in READER if s in stats]
    return pairs


def _sender_values(result_path: str, state_path: str) -> list:
    from .stages.send import spool_backlog
    state = peek(state_path)
    totals = state.get("totals") if isinstance(state.get("totals"), dict) else {}
    pairs = [(f"{PREFIX}.{name}", totals.get(name, 0)) for name in SENDER]
    pairs.append((f"{PREFIX}.zabbix_up", int(state.get("up", True))))
    pairs.append((f"{PREFIX}.spool_backlog", spool_backlog(result_path, state_path=state_path)))
    return pairs


class Monitor:
    """Says when the next set is due (once per interval of the wall clock) and makes it."""

    def __init__(self, interval: int, reader_stats: Callable[[], dict], restarts: int = 0,
                 spool: tuple[str, str] | None = None):
        self.interval = interval
        self.reader_stats = reader_stats     # asked only when a set is due
        self.restarts = restarts
        self.spool = spool
        self._last_slot: int | None = None

    def due(self, now: float, aggregators: dict) -> ClosedWindow | None:
        slot = int(now) // self.interval * self.interval
        if slot == self._last_slot:
            return None
        self._last_slot = slot
        return ClosedWindow(PREFIX, slot, values(now, aggregators, self.reader_stats(),
                                                 self.restarts, self.spool))
