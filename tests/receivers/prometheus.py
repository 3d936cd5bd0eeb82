"""A real Prometheus server for the tests (Debian's `prometheus`, 2.42 on bookworm; installed
by tests/receivers/install-prometheus.sh), scraping the given targets every second, with its
configuration, data and log in a directory of the test's own.

    with RealPrometheus(["127.0.0.1:9361"], tmp_path) as prom:
        prom.wait_for_target_up()
        result = prom.wait_for('nginx_requests{host="web01"}', lambda r: len(r) == 1)
        result[0]["metric"], result[0]["value"]    # {"__name__": ..., labels}, [time, "12"]

It fails, never skips, when the binary is missing or the server does not become ready.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

INSTALL = "bash tests/receivers/install-prometheus.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RealPrometheus:
    def __init__(self, targets: list[str], workdir: Path, scrape_interval: str = "1s",
                 timeout: float = 60):
        self.targets = targets
        self.workdir = Path(workdir)
        self.scrape_interval = scrape_interval
        self.timeout = timeout          # for readiness and for each wait_*
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen | None = None
        self.log = self.workdir / "prometheus.log"

    def __enter__(self) -> RealPrometheus:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        binary = shutil.which("prometheus")
        assert binary, f"no prometheus binary: install it with `{INSTALL}`"
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps({   # JSON is YAML
            "global": {"scrape_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_interval},
            "scrape_configs": [{"job_name": "plogd",
                                "static_configs": [{"targets": self.targets}]}]}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait(lambda: self._get("/-/ready") is not None, "it to be ready")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, expr: str) -> list[dict]:
        """An instant query at the present: the API's data.result (a vector: a list of
        {"metric": {labels}, "value": [time, "text"]})."""
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body is not None, f"query {expr!r} failed; log:\n{self.log_tail()}"
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for(self, expr: str, accept, what: str = "") -> list[dict]:
        """Query until `accept(result)` holds (each scrape may change the answer); returns
        that result, fails with the last one and the targets' state after `timeout`."""
        last: list = []

        def accepted():
            nonlocal last
            last = self.query(expr)
            return accept(last)
        self._wait(accepted, what or f"an accepted answer to {expr}",
                   lambda: f"last answer: {last}")
        return last

    def active_targets(self) -> list[dict]:
        body = self._get("/api/v1/targets")
        return json.loads(body)["data"]["activeTargets"] if body else []

    def wait_for_target_up(self) -> None:
        """Until every target has been scraped successfully once."""
        self._wait(lambda: (t := self.active_targets()) and all(x["health"] == "up" for x in t),
                   "the targets to be up", lambda: f"targets: {self.active_targets()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.read()
        except OSError:                 # not listening yet, or an HTTP error status
            return None

    def _wait(self, condition, what: str, detail=lambda: "") -> None:
        deadline = time.monotonic() + self.timeout
        while not condition():
            assert self.process.poll() is None, \
                f"prometheus exited ({self.process.returncode}); log:\n{self.log_tail()}"
            assert time.monotonic() < deadline, \
                f"prometheus: waited {self.timeout} s for {what}. {detail()}\n" \
                f"log:\n{self.log_tail()}"
            time.sleep(0.2)             # polling its HTTP API: it offers no event to wait on
