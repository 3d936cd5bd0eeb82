"""A real carbon-cache (Debian graphite-carbon) for tests: its own config and whisper storage
in a temporary directory, the plaintext line receiver on 127.0.0.1 at a free port, series
of 60 s points kept a day. Stored series are read back with whisper-fetch (python3-whisper).

    with Carbon(tmp_path) as carbon:            # started, listening
        ... send to carbon.url (tcp://127.0.0.1:PORT) ...
        carbon.wait_series("web.nginx.status.200", {1795976400: 12.0})   # {clock: value}
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .common import accepts, free_port, stop, wait_until


class Carbon:
    def __init__(self, root: Path, step: int = 60):
        self.root = Path(root)
        self.step = step                 # seconds per stored point: the windows' interval
        self.port = free_port()
        self.whisper_dir = self.root / "whisper"
        self.log = self.root / "log" / "console.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> Carbon:
        (self.root / "log").mkdir(parents=True, exist_ok=True)
        self.whisper_dir.mkdir(exist_ok=True)
        (self.root / "carbon.conf").write_text(f"""[cache]
STORAGE_DIR = {self.root}/
LOCAL_DATA_DIR = {self.whisper_dir}/
LOG_DIR = {self.root}/log/
PID_DIR = {self.root}/
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {self.port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {free_port()}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {free_port()}
WHISPER_AUTOFLUSH = True
""")
        # one point per window, kept a day: a value lands unchanged at its window's clock
        (self.root / "storage-schemas.conf").write_text(
            f"[all]\npattern = .*\nretentions = {self.step}s:1d\n")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["carbon-cache", f"--config={self.root}/carbon.conf", "--nodaemon",
                 f"--pidfile={self.root}/carbon.pid", f"--logdir={self.root}/log", "start"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: accepts(self.port), "carbon-cache listening",
                   process=self.process, log=str(self.log))
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def __enter__(self) -> Carbon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def file(self, path: str) -> Path:
        return self.whisper_dir.joinpath(*path.split(".")).with_suffix(".wsp")

    def series(self, path: str, since: int, until: int) -> dict[int, float]:
        """The points stored for `path` with clocks in [since, until]; {} when no file."""
        file = self.file(path)
        if not file.exists():
            return {}
        out = subprocess.run(["whisper-fetch", "--json", f"--from={since - 1}",
                              f"--until={until}", str(file)],
                             capture_output=True, text=True, check=True).stdout
        data = json.loads(out)
        return {data["start"] + i * data["step"]: value
                for i, value in enumerate(data["values"]) if value is not None}

    def wait_series(self, path: str, expected: dict[int, float], deadline: float = 30.0
                    ) -> dict[int, float]:
        """The stored points of `path` once they equal `expected` (carbon writes them
        asynchronously); fails with what is stored when they do not within `deadline`."""
        since, until = min(expected), max(expected)

        def stored() -> dict[int, float] | None:
            points = self.series(path, since, until)
            return points if points == expected else None
        try:
            return wait_until(stored, f"carbon series {path}", deadline, self.process,
                              str(self.log))
        except TimeoutError:
            raise AssertionError(f"{path}: stored {self.series(path, since, until)}, "
                                 f"expected {expected}; files: {self.paths()}") from None

    def paths(self) -> list[str]:
        """Every stored series' path (carbon's own carbon.* included)."""
        return sorted(os.path.relpath(p, self.whisper_dir)[:-4].replace(os.sep, ".")
                      for p in map(str, self.whisper_dir.rglob("*.wsp")))
