"""What the torture run keeps beside plogd, surviving its kills: a listener per `line`
output that appends every line it receives to a file, and an archive of the result files,
which plogd removes once every output has passed them.

The listener keeps only whole lines: a kill in the middle of a batch leaves a line cut
short at the end of its connection (counted as `cut`); the runner sends that batch again
from its saved cursor after the restart.

The archive hard-links each result file (by inode) as soon as it appears, every few
milliseconds, so that the files plogd removes stay readable for the final check: a file
lives at least from its creation to its rotation (`result_rotate_bytes` of appends) and
then until both outputs have read it, far longer than a poll.
"""
from __future__ import annotations

import json
import os
import socketserver
import threading
from collections import Counter
from pathlib import Path


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        listener: LineListener = self.server.listener      # type: ignore[attr-defined]
        try:
            for line in self.rfile:
                listener.take(line)
        except ConnectionError:
            pass      # reset by a kill: the lines before are taken, the batch is sent again


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class LineListener:
    """Listens on tcp://127.0.0.1:PORT (a free port), or unix://`unix_path` when given, and
    appends each received line to `out`."""

    def __init__(self, out: Path, unix_path: Path | None = None):
        self.out = out
        self.cut = 0           # lines cut short by a kill (not written to `out`)
        self.lines = 0
        self._lock = threading.Lock()
        self._file = open(out, "ab")
        if unix_path is None:
            self._server: socketserver.BaseServer = _TCPServer(("127.0.0.1", 0), _Handler)
            self.url = "tcp://127.0.0.1:%d" % self._server.server_address[1]
        else:
            self._server = _UnixServer(str(unix_path), _Handler)
            self.url = f"unix://{unix_path}"
        self._server.listener = self                         # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def take(self, line: bytes) -> None:
        with self._lock:
            if not line.endswith(b"\n"):
                self.cut += bool(line)
                return
            self._file.write(line)
            self._file.flush()
            self.lines += 1

    def start(self) -> LineListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            self._file.close()


def windows(lines, skip_prefix: str = "plogd.") -> tuple[dict, int, int]:
    """From JSON records: ({(key, clock): first value}, repeats, repeats with another
    value); plogd's own values (keys starting with `skip_prefix`) left out."""
    seen: dict[tuple[str, int], object] = {}
    repeats = conflicts = 0
    for line in lines:
        r = json.loads(line)
        if r["key"].startswith(skip_prefix):
            continue
        window = (r["key"], r["clock"])
        if window in seen:
            repeats += 1
            conflicts += seen[window] != r["value"]
            continue
        seen[window] = r["value"]
    return seen, repeats, conflicts


def totals(seen: dict) -> dict:
    """The sum per key over distinct windows."""
    out: Counter = Counter()
    for (key, _), value in seen.items():
        out[key] += value
    return dict(out)


class SpoolArchive(threading.Thread):
    """Hard-links every result file `results.jsonl*` under `state_dir` into `archive` by
    inode, so that what plogd removes stays readable."""

    def __init__(self, state_dir: Path, archive: Path, poll: float = 0.005):
        super().__init__(daemon=True)
        self.state_dir, self.archive, self.poll = state_dir, archive, poll
        self.stopping = threading.Event()
        archive.mkdir(parents=True, exist_ok=True)

    def run(self) -> None:
        while not self.stopping.wait(self.poll):
            self.sweep()
        self.sweep()

    def sweep(self) -> None:
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            return
        for name in names:
            if not name.startswith("results.jsonl"):
                continue
            try:
                if (self.archive / str(os.stat(self.state_dir / name).st_ino)).exists():
                    continue
                # linked first, named after the inode it got: the name may have moved on
                # to another file (a rotation) between the stat and the link
                fresh = self.archive / "fresh"
                os.link(self.state_dir / name, fresh)
                target = self.archive / str(os.stat(fresh).st_ino)
                if target.exists():
                    fresh.unlink()
                else:
                    fresh.rename(target)
            except FileNotFoundError:
                pass         # removed or renamed meanwhile: seen under its new name next

    def stop(self) -> None:
        self.stopping.set()
        self.join()

    def lines(self):
        """Every line of every archived result file (each file once)."""
        for path in sorted(self.archive.iterdir()):
            yield from path.read_bytes().splitlines()
