"""A real InfluxDB 1.x (Debian influxdb, 1.6) for tests: its own meta/data/wal directories
in a temporary directory, HTTP on 127.0.0.1 at a free port, and a UDP line-protocol listener
on 127.0.0.1 writing into the database `plogd` with precision "s" (timestamps in seconds,
as the line output writes them).

    with Influx(tmp_path) as influx:             # started, database created
        ... send to influx.udp_url (udp://127.0.0.1:PORT) in the influx format ...
        influx.wait_rows('SELECT * FROM "nginx.status" GROUP BY *', expected_rows)
        influx.query("SHOW SERIES")              # the /query answer's first result
"""
from __future__ import annotations

import json
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from .common import free_port, stop, wait_until

DATABASE = "plogd"


class Influx:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.http_port = free_port()
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.log = self.root / "influxd.log"
        self.process: subprocess.Popen | None = None

    @property
    def udp_url(self) -> str:
        return f"udp://127.0.0.1:{self.udp_port}"

    def start(self) -> Influx:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "influxdb.conf"
        conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{self.root}/meta"
[data]
  dir = "{self.root}/data"
  wal-dir = "{self.root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[[udp]]
  enabled = true
  bind-address = "127.0.0.1:{self.udp_port}"
  database = "{DATABASE}"
  precision = "s"
  batch-timeout = "100ms"
""")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(["influxd", "-config", str(conf)], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self._ping, "influxd answering /ping", process=self.process,
                   log=str(self.log))
        self.query(f'CREATE DATABASE "{DATABASE}"', method="POST")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def __enter__(self) -> Influx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/ping", timeout=2):
                return True
        except OSError:
            return False

    def query(self, q: str, method: str = "GET") -> dict:
        """The first result of `q` in the database `plogd` (InfluxQL, epoch=s): {} when
        there is nothing, else {"series": [{"name", "tags"?, "columns", "values"}]}."""
        params = urllib.parse.urlencode({"db": DATABASE, "q": q, "epoch": "s"})
        url = f"http://127.0.0.1:{self.http_port}/query"
        request = urllib.request.Request(f"{url}?{params}", method=method) if method == "GET" \
            else urllib.request.Request(url, data=params.encode(), method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            result = json.load(answer)["results"][0]
        if "error" in result:
            raise RuntimeError(f"influx {q!r}: {result['error']}")
        return result

    def rows(self, q: str) -> list[dict]:
        """The rows of `q` as dicts of column -> value, tags included (GROUP BY *)."""
        return [{**series.get("tags", {}), **dict(zip(series["columns"], values))}
                for series in self.query(q).get("series", [])
                for values in series["values"]]

    def wait_rows(self, q: str, expected: list[dict], deadline: float = 30.0) -> list[dict]:
        """The rows of `q` once their count reaches len(expected) (the UDP listener writes
        in batches), sorted as `expected` is; fails showing what is there if not in time."""
        try:
            wait_until(lambda: len(self.rows(q)) >= len(expected), f"influx rows of {q!r}",
                       deadline, self.process, str(self.log))
        except TimeoutError:
            raise AssertionError(f"{q}: rows {self.rows(q)}, expected {expected}") from None
        return self.rows(q)
