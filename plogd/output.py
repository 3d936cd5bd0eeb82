"""What plogd prints for people and for other programs: the zabbix_sender input form of a
value record, and a progress bar for long replays."""
from __future__ import annotations

import sys
import time


def _sender_field(text: str) -> str:
    """zabbix_sender -i: a field with a space, a quote or a backslash is double-quoted, with
    its quotes and backslashes escaped."""
    if text and not any(c in text for c in ' "\\\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sender_line(record: dict) -> bytes:
    """`zabbix_sender -T -i FILE` input: host key clock value."""
    fields = (record["host"], record["key"], str(record["clock"]), str(record["value"]))
    return (" ".join(map(_sender_field, fields)) + "\n").encode()


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent when piped."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = max(total, 1)
        self.stream = stream
        self.enabled = stream.isatty()
        self.done_bytes = 0
        self._last = 0.0
        self._start = time.monotonic()

    def advance(self, nbytes: int) -> None:
        self.done_bytes += nbytes
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.2:
            self._last = now
            self.stream.write("\r" + self.line(now - self._start))
            self.stream.flush()

    def line(self, elapsed: float) -> str:
        """e.g. "[#########                     ]  31.0%    42.3 MB/s  ETA 0:12"."""
        share = min(self.done_bytes / self.total, 1.0)
        rate = self.done_bytes / max(elapsed, 1e-9)
        bar = "#" * int(share * 30)
        eta = "--:--"
        if rate > 0:
            minutes, seconds = divmod(int((self.total - min(self.done_bytes, self.total))
                                          / rate + 0.5), 60)
            eta = f"{minutes}:{seconds:02d}"
        return f"[{bar:<30}] {share:6.1%}  {rate / 1e6:6.1f} MB/s  ETA {eta}"

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()
