"""write: append closed windows to the result file as Zabbix value records, durably, then
commit the checkpoint.

The result file holds one JSON object per line, exactly what is sent to Zabbix:
    {"host": "web01", "key": "nginx.requests", "clock": 1795976400, "ns": 0, "value": 1234}
`clock` is the window's start and `ns` is fixed, so a value sent twice is stored once.

Order of a commit: the records are appended and fsynced, then the checkpoint (positions
and open windows) replaces the old one atomically. A crash between the two re-reads from the
older checkpoint and writes the same windows again, with the same values: a window is
identified by (host, key, clock), and a duplicate is harmless in Zabbix.
"""
from __future__ import annotations

import json
import os

from .. import checkpoint
from ..messages import ClosedWindow

WINDOW_NS = 0   # every value of a window carries the window's start and this ns


def records(window: ClosedWindow, host: str) -> list[dict]:
    return [{"host": host, "key": key, "clock": window.start, "ns": WINDOW_NS, "value": value}
            for key, value in window.values]


def encode(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": ")).encode() + b"\n"


class WriteStage:
    def __init__(self, result_path: str, checkpoint_path: str, host: str, inputs=(),
                 rotate_bytes: int = 0):
        from .send import LLDTagger
        self._lld = LLDTagger(inputs)   # by: metrics' records name their member for discovery
        self.rotate_bytes = rotate_bytes   # rename to results.jsonl.N past this size (0: never)
        self.result_path = result_path
        self.checkpoint_path = checkpoint_path
        self.host = host
        os.makedirs(os.path.dirname(os.path.abspath(result_path)), exist_ok=True)
        self._file = open(result_path, "ab")

    def commit(self, windows: list[ClosedWindow], state: dict | None) -> list[dict]:
        """Append the windows' records (fsync), then save `state` as the checkpoint;
        returns the records written."""
        written = [self._lld.tag(w.input, r) for w in windows for r in records(w, self.host)]
        if written:
            self._file.write(b"".join(map(encode, written)))
            self._file.flush()
            os.fsync(self._file.fileno())
            if self.rotate_bytes and self._file.tell() >= self.rotate_bytes:
                self._rotate()
        if state is not None:
            checkpoint.save(self.checkpoint_path, state)
        return written

    def _rotate(self) -> None:
        """results.jsonl -> results.jsonl.N (N: one more than the highest): the sender
        finishes the rotated files in order and removes each once Zabbix accepted it all."""
        from .send import result_files
        self._file.close()
        numbers = [int(p.rsplit(".", 1)[1]) for p, _ in result_files(self.result_path)
                   if p != self.result_path]
        os.rename(self.result_path, f"{self.result_path}.{max(numbers, default=0) + 1}")
        fd = os.open(os.path.dirname(os.path.abspath(self.result_path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._file = open(self.result_path, "ab")

    def close(self) -> None:
        self._file.close()
