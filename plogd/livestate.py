"""What a running plogd is doing, read from its state directory — read-only: the files are
read whole or from their end and never locked or written, so the daemon is not disturbed.

    checkpoint.json   per input: counters (lines, unmatched, late …) and the newest event time
    send.json         the sender's offset in the result file, its totals and whether Zabbix is up
    results.jsonl     the values of the last windows (its tail)

For `plogd top` (plogd.top) and for the one-line status both modes give systemd
(`systemctl status`: STATUS=).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from .checkpoint import peek
from .config import Config
from .metrics import Metric
from .monitoring import COUNTERS
from .spool import output_status

TAIL_BYTES = 1 << 20          # of the result file: the last windows' values


@dataclass
class Snapshot:
    at: float                                      # when it was read (epoch seconds)
    inputs: dict[str, dict] = field(default_factory=dict)   # name -> counters and "newest"
    sender: dict | None = None       # with Zabbix: up, backlog (bytes), sent, refused, given_up
    outputs: dict = field(default_factory=dict)   # name -> type, up, backlog and totals


def take(config: Config, now: float | None = None) -> Snapshot:
    snapshot = Snapshot(time.time() if now is None else now)
    checkpoint = peek(config.checkpoint_path)
    for spec in config.inputs:
        entry = checkpoint.get(spec.name)
        saved: dict = entry if isinstance(entry, dict) else {}
        counters: dict = saved["counters"] if isinstance(saved.get("counters"), dict) else {}
        snapshot.inputs[spec.name] = {**{c: counters.get(c, 0) for c in COUNTERS},
                                      "newest": saved.get("newest")}
    for output in config.outputs:
        status = output_status(config.result_path, config.state_dir, output.name)
        snapshot.outputs[output.name] = {"type": output.type, **status}
        if output.type == "zabbix":
            snapshot.sender = {"up": status["up"], "backlog": status["backlog"],
                               **{n: status.get(n, 0) for n in ("sent", "refused", "given_up")}}
    return snapshot


def rates(previous: Snapshot | None, current: Snapshot) -> dict[str, float | None]:
    """Lines per second of each input between two snapshots (None: not known yet)."""
    elapsed = current.at - previous.at if previous is not None else 0
    if previous is None or elapsed <= 0:
        return dict.fromkeys(current.inputs)
    return {name: max(0, c["lines"] - previous.inputs.get(name, {}).get("lines", 0)) / elapsed
            for name, c in current.inputs.items()}


def lag(counters: dict, now: float) -> float | None:
    """Seconds between now and the newest line's time."""
    newest = counters.get("newest")
    return now - newest if isinstance(newest, (int, float)) else None


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def sender_state(sender: dict) -> str:
    return {True: "up", False: "DOWN"}.get(sender["up"], "not reached yet")


def status_line(previous: Snapshot | None, current: Snapshot) -> str:
    """One line for `systemctl status`, e.g. "2 inputs, 1234 lines/s, lag 3 s, Zabbix up,
    backlog 0 B"."""
    per_second = rates(previous, current)
    known = [r for r in per_second.values() if r is not None]
    lags = [l for l in (lag(c, current.at) for c in current.inputs.values()) if l is not None]
    count = len(current.inputs)
    parts = [f"{count} input{'s' if count != 1 else ''}"]
    if known:
        parts.append(f"{sum(known):.0f} lines/s")
    parts.append(f"lag {human_seconds(max(lags))}" if lags else "no line yet")
    sender = current.sender
    if sender is None:
        parts.append("no Zabbix (results written only)")
    else:
        parts.append(f"Zabbix {sender_state(sender)}, backlog {human_bytes(sender['backlog'])}")
    return ", ".join(parts)


# -- the last windows, from the result file ------------------------------------------------

def _owners(config: Config) -> dict[tuple[str, str], Metric]:
    """(input, metric name) -> the metric."""
    return {(spec.name, m.name): m for spec in config.inputs for m in spec.metrics}


def recent_windows(config: Config, tail_bytes: int = TAIL_BYTES) -> dict[str, dict[int, list]]:
    """input -> {window start -> [(metric, record)]}, from the end of the result file."""
    try:
        with open(config.result_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail_bytes))
            data = f.read(tail_bytes)
    except OSError:
        return {}
    lines = data.split(b"\n")
    if size > tail_bytes:
        lines = lines[1:]                   # the first one is cut
    owners = _owners(config)
    found: dict[str, dict[int, list]] = {}
    for line in lines:
        try:
            record = json.loads(line)
            metric = owners.get((record["input"], record["metric"]))
            clock = int(record["clock"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue                         # a torn or foreign line: not ours to judge
        if metric is not None:
            found.setdefault(record["input"], {}).setdefault(clock, []).append((metric, record))
    return found
