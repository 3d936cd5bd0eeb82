"""What the stages pass to each other. Plain data, picklable, no behaviour."""
from __future__ import annotations

from dataclasses import dataclass

from .files import FileId, Position


@dataclass
class LineBatch:
    """reader -> parser: complete lines of one file, as the bytes read (the parser splits
    them: the reader's work stays small and the splitting happens in parallel)."""
    input: str
    seq: int                   # 1, 2, 3 … per followed path: aggregated in this order
    path: str                  # the followed path (the file read may be a rotated sibling)
    file: FileId
    data: bytes                # complete lines, each with its b"\n" (a final one may lack it)
    start: int                 # byte offset of the first line in the file
    end: int                   # byte offset just past the last line
    mtime_ns: int = 0          # the file's mtime when read (for the checkpoint)
    too_long: int = 0          # lines the reader skipped because they exceeded the cap
    real_path: str = ""        # the file's real path when opened (for the checkpoint)
    upcoming: tuple = ()       # (FileId, real path) of the files queued to be read after it
    slot: tuple | None = None  # --multi: (slot, length) of the bytes in shared memory
    in_long_line: bool = False  # `end` is inside an over-long line, already counted too long


@dataclass
class Partial:
    """parser -> aggregator: the states of every window a batch touched, its counters, and
    where the batch ended in its file (what the checkpoint records once it is merged)."""
    input: str
    path: str
    seq: int
    windows: dict[int, tuple[int, list]]   # window start (epoch s) -> (lines, metric states)
    newest: int | None = None              # newest event time in the batch
    lines: int = 0
    unmatched: int = 0
    too_long: int = 0
    position: Position | None = None       # the end of the batch in its file
    odd_time: int = 0                      # lines set aside for an absurd or no timestamp
    window_newest: dict | None = None      # window -> its newest time, when several
    regex_timeout: int = 0                 # lines over a user regex's time bound
    last: int | None = None                # the time of the batch's last line (its order)


@dataclass
class ClosedWindow:
    """aggregator -> writer: one window that will not change any more."""
    input: str
    start: int
    values: list           # plogd.metrics.Value


@dataclass
class InputCounters:
    """Per-input totals for the log and for self-monitoring."""
    lines: int = 0
    unmatched: int = 0
    too_long: int = 0
    late: int = 0
    windows: int = 0
    odd_time: int = 0          # lines whose time is absurd (max_skew) or absent: in no window
    regex_timeout: int = 0     # lines a user regex could not decide within its time bound


@dataclass
class Tick:
    """reader -> aggregator (through a parser): idle since `now`; `sent` is the last batch
    number sent per (input, path), so the aggregator closes windows only once all is merged."""
    now: float
    sent: dict


@dataclass
class ReaderStats:
    """reader -> aggregator (through a parser), every second: for self-monitoring."""
    stats: dict


class Stop:
    """Passed down the pipeline: finish what you hold, pass it on, exit."""
