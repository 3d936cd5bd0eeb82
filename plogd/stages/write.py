"""write: append closed windows to the result file as Zabbix value records, durably.

The result file holds one JSON object per line, exactly what is sent to Zabbix:
    {"host": "web01", "key": "nginx.requests", "clock": 1795976400, "ns": 0, "value": 1234}
`clock` is the window's start and `ns` is fixed, so a value sent twice is stored once.
"""
from __future__ import annotations

import json
import os

from ..messages import ClosedWindow

WINDOW_NS = 0   # every value of a window carries the window's start and this ns


def records(window: ClosedWindow, host: str) -> list[dict]:
    return [{"host": host, "key": key, "clock": window.start, "ns": WINDOW_NS, "value": value}
            for key, value in window.values]


def encode(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n"


class ResultWriter:
    def __init__(self, path: str, host: str):
        self.path = path
        self.host = host
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "ab")

    def handle(self, windows: list[ClosedWindow]) -> list[dict]:
        """Append the windows' records and fsync; returns the records written."""
        written = [r for w in windows for r in records(w, self.host)]
        if written:
            self._file.write(b"".join(map(encode, written)))
            self._file.flush()
            os.fsync(self._file.fileno())
        return written

    def close(self) -> None:
        self._file.close()
