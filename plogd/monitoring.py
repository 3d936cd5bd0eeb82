"""Self-monitoring: plogd's own health as values, under the prefix `plogd.`, once per
interval beside the metrics (same host, same result file, same outputs).

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
  per output, from its runner's state file (plogd.outputs.runner):
    plogd.output.sent[OUTPUT]  plogd.output.refused[OUTPUT]  plogd.output.dropped[OUTPUT]
    plogd.output.backlog[OUTPUT]    bytes of results written but not yet taken by it
    plogd.output.up[OUTPUT]         1 when its last exchange succeeded, else 0
  with Zabbix configured, as before outputs were plugins:
    plogd.sent  plogd.refused  plogd.given_up    values accepted / refused / given up (totals)
    plogd.zabbix_up                 1 when the last send reached the server, else 0
    plogd.spool_backlog             bytes of results written but not yet accepted

A value per input carries "group": {"input": NAME}, one per output {"output": NAME}: the
Zabbix output announces them as the discovery sets INPUTS_DISCOVERY and OUTPUTS_DISCOVERY,
so that one template fits every host whatever its inputs and outputs are called.

Each set carries the start of the current interval as its clock, and the Zabbix output sends
one value per key and clock: a set taken again in the same interval (after a restart, with
other values) is not sent.
"""
from __future__ import annotations

from dataclasses import asdict
from collections.abc import Callable

from .messages import ClosedWindow
from .metrics import Value, zabbix_key_param
from .spool import output_status

PREFIX = "plogd"
INPUTS_DISCOVERY = "plogd.inputs.discovery"   # the inputs as {#INPUT}
OUTPUTS_DISCOVERY = "plogd.outputs.discovery"   # the outputs as {#OUTPUT}
COUNTERS = ("lines", "unmatched", "too_long", "late", "odd_time", "regex_timeout")
READER = ("bytes_behind", "rotations", "truncations", "missing", "malformed")  # malformed: syslog
SENDER = ("sent", "refused", "given_up")          # the Zabbix output's totals
OUTPUT = ("sent", "refused", "dropped", "backlog", "up")   # every output's


def _own(name: str, value, group: dict | None = None) -> Value:
    """plogd.NAME, or plogd.NAME[MEMBER] for a value per input or output."""
    key = f"{PREFIX}.{name}"
    if group:
        key += f"[{zabbix_key_param(next(iter(group.values())))}]"
    return Value(key, value, f"{PREFIX}.{name}", group)


def values(now: float, aggregators: dict, reader_stats: dict, restarts: int,
           outputs: tuple[str, str, list] | None = None) -> list[Value]:
    """The values of one set; `outputs` is (result file, state dir, config.outputs)."""
    own = [_own("heartbeat", int(now)), _own("restarts", restarts)]
    if outputs is not None:
        own += _output_values(*outputs)
    for name, aggregator in aggregators.items():
        group = {"input": name}
        counters = asdict(aggregator.counters)
        own += [_own(c, counters[c], group) for c in COUNTERS]
        if aggregator.newest is not None:
            own.append(_own("lag", round(now - aggregator.newest, 3), group))
        stats = reader_stats.get(name, {})
        own += [_own(s, stats[s], group) for s in READER if s in stats]
    return own


def _output_values(result_path: str, state_dir: str, outputs: list) -> list[Value]:
    own = []
    for output in outputs:
        status = output_status(result_path, state_dir, output.name)
        status["up"] = int(status["up"] is not False)
        own += [_own(f"output.{s}", status.get(s, 0), {"output": output.name}) for s in OUTPUT]
        if output.type == "zabbix":
            own += [_own(s, status.get(s, 0)) for s in SENDER]
            own += [_own("zabbix_up", status["up"]), _own("spool_backlog", status["backlog"])]
    return own


class Monitor:
    """Says when the next set is due (once per interval of the wall clock) and makes it."""

    def __init__(self, interval: int, reader_stats: Callable[[], dict], restarts: int = 0,
                 outputs: tuple[str, str, list] | None = None):
        self.interval = interval
        self.reader_stats = reader_stats     # asked only when a set is due
        self.restarts = restarts
        self.outputs = outputs
        self._last_slot: int | None = None

    def due(self, now: float, aggregators: dict) -> ClosedWindow | None:
        slot = int(now) // self.interval * self.interval
        if slot == self._last_slot:
            return None
        self._last_slot = slot
        return ClosedWindow(PREFIX, slot, values(now, aggregators, self.reader_stats(),
                                                 self.restarts, self.outputs))
