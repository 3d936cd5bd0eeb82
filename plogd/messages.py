"""What the stages pass to each other. Plain data, picklable, no behaviour."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LineBatch:
    """reader -> parser: complete lines (without their newline) of one file."""
    input: str
    path: str
    lines: list[bytes]
    start_offset: int          # byte offset of the first line in the file
    end_offset: int            # byte offset just past the last line
    too_long: int = 0          # lines skipped because they exceeded the length cap


@dataclass
class Partial:
    """parser -> aggregator: the states of every window a batch touched, and its counters."""
    input: str
    windows: dict[int, tuple[int, list]]   # window start (epoch s) -> (lines, metric states)
    newest: int | None = None              # newest event time in the batch
    lines: int = 0
    unmatched: int = 0
    too_long: int = 0


@dataclass
class ClosedWindow:
    """aggregator -> writer: one window that will not change any more, as Zabbix values."""
    input: str
    start: int
    values: list[tuple[str, object]]


@dataclass
class InputCounters:
    """Per-input totals for the log and for self-monitoring."""
    lines: int = 0
    unmatched: int = 0
    too_long: int = 0
    late: int = 0
    windows: int = 0
