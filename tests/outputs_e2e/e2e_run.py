"""What the outputs' end-to-end scenarios share: a log written live (lines stamped with the
wall clock as they are appended) and its truth, a config with `outputs:`, the real daemon
(`python -m plogd --multi` or `--single`), line receivers in the test (TCP and UDP), and
reading back the result file and an output's state file.

The truth is computed here from the lines written, independently of plogd: per window of
INTERVAL seconds, the request count, the count per status (200, 404, 500), the sum of the
bytes sent and the longest request time, under the keys of METRICS."""
from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from helpers import ROOT

from plogd.formats import get_format
from plogd.outputs.runner import BACKOFF_MAX
from plogd.outputs.line.tests.receivers.common import free_port, wait_until
from plogd.traffic import generate

INTERVAL = 5
LATENESS = 2
HOST = "e2e-outputs-web01"      # the records' host; the Zabbix host of the scenarios
METRICS = """
      - {key: e2e.requests, type: count}
      - {key: "e2e.status[{status}]", type: count, by: status, where: "status in [200, 404, 500]"}
      - {key: e2e.bytes, type: sum, field: body_bytes_sent}
      - {key: e2e.rt.max, type: max, field: request_time}"""
ZABBIX_ITEMS = {"e2e.requests": "uint", "e2e.status[200]": "uint", "e2e.status[404]": "uint",
                "e2e.status[500]": "uint", "e2e.bytes": "uint", "e2e.rt.max": "float"}


# -- the log and its truth ---------------------------------------------------------------

class LiveLog:
    """Appends realistic nginx_timed lines to `path`, a burst of 4 every 0.1 s (about 40 a
    second), each stamped with the wall clock when it is written, until `stop()`."""

    def __init__(self, path: Path):
        self.path = path
        self.lines: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-log", daemon=True)
        path.write_bytes(b"")

    def start(self) -> LiveLog:
        self._thread.start()
        return self

    def _run(self) -> None:
        source = generate(10**7, seed=12, start=time.time(), rate=40)
        with open(self.path, "ab", buffering=0) as out:
            while not self._stop.is_set():
                stamp = time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime()).encode()
                burst = [line[:line.index(b"[")] + stamp + line[line.index(b"]") + 1:]
                         for line in islice(source, 4)]
                out.write(b"".join(burst))
                self.lines += burst
                self._stop.wait(0.1)

    def stop(self) -> list[bytes]:
        """Stops writing; returns every line written."""
        self._stop.set()
        self._thread.join()
        return self.lines


def truth(lines: list[bytes]) -> dict[tuple[str, int], int | float]:
    """{(key, window clock): value} of METRICS over `lines`."""
    fmt = get_format("nginx_timed")
    out: dict[tuple[str, int], int | float] = Counter()
    for line in lines:
        rec = fmt.parse(line.rstrip(b"\n"))
        clock = rec["timestamp"] - rec["timestamp"] % INTERVAL
        out["e2e.requests", clock] += 1
        out["e2e.bytes", clock] += rec["body_bytes_sent"]
        if rec["status"] in (200, 404, 500):
            out[f"e2e.status[{rec['status']}]", clock] += 1
        if rec["request_time"] is not None:
            out["e2e.rt.max", clock] = max(out.get(("e2e.rt.max", clock), 0),
                                           rec["request_time"])
    return dict(out)


# -- the daemon ------------------------------------------------------------------------------

def write_config(workdir: Path, log: Path, outputs: str, zabbix=None) -> Path:
    """A config following `log` with METRICS, the `outputs:` list given as YAML (indented
    by two spaces) and, given the zabbix testbed, a `zabbix:` section to it."""
    section = f"zabbix: {{server: {zabbix.server}, port: {zabbix.port}, host: {HOST}}}" \
        if zabbix is not None else ""
    config = workdir / "plogd.yaml"
    config.write_text(f"""
interval: {INTERVAL}
state_dir: {workdir / 'state'}
{section}
outputs:
{outputs}
inputs:
  - name: web
    path: {log}
    format: nginx_timed
    start: beginning
    lateness: {LATENESS}
    metrics:{METRICS}
""")
    return config


class Daemon:
    """`python -m plogd MODE -c CONFIG`, its output in plogd.log beside the config."""

    def __init__(self, config: Path, mode: str):
        self.config = config
        self.state = config.parent / "state"
        self.log = config.parent / "plogd.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "plogd", mode, "-c", str(config)],
                env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=log)
        # running its pipeline (signal handlers set) once it says so
        wait_until(lambda: f"plogd {mode}:" in self.text(), f"plogd {mode} started", 30,
                   self.process, str(self.log))

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def records(self) -> list[dict]:
        """The result file's records, in the order written."""
        path = self.state / "results.jsonl"
        return [json.loads(line) for line in path.read_bytes().splitlines()] \
            if path.exists() else []

    def windows(self) -> dict[tuple[str, int], int | float]:
        """{(key, clock): value} of the metrics in the result file (plogd's own left out)."""
        return {(r["key"], r["clock"]): r["value"] for r in self.records()
                if r["key"].startswith("e2e.")}

    def wait_traffic(self, windows: int = 2) -> None:
        """Until `windows` windows with lines in them are closed and written."""
        wait_until(lambda: len({c for k, c in self.windows() if k == "e2e.requests"})
                   >= windows, f"{windows} windows closed", 40, self.process, str(self.log))

    def wait_windows(self, expected: dict) -> None:
        """Until the result file holds every window of `expected` (the daemon closes each
        LATENESS after its end; given 20 s more)."""
        closes = max(clock for _, clock in expected) + INTERVAL + LATENESS
        try:
            wait_until(lambda: expected.items() <= self.windows().items(),
                       "the result file holding the truth", closes + 20 - time.time(),
                       self.process, str(self.log))
        except TimeoutError:
            got = self.windows()
            raise AssertionError(f"result file: {sorted(set(got.items()) - set(expected.items()))}"
                                 f" vs truth {sorted(set(expected.items()) - set(got.items()))}"
                                 ) from None

    def output_state(self, name: str) -> dict:
        """The output's state file as its runner last saved it: cursor, totals, up."""
        path = self.state / f"output.{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def taken(self, name: str) -> list[dict]:
        """The result file's records before the output's cursor: those it has taken."""
        cursor = self.output_state(name)["cursor"]
        path = self.state / "results.jsonl"
        assert cursor["inode"] == path.stat().st_ino, "the result file was rotated"
        return [json.loads(line)
                for line in path.read_bytes()[:cursor["offset"]].splitlines()]

    def stop(self) -> str:
        """SIGTERM, then the daemon's log; fails when it does not exit cleanly."""
        self.process.terminate()
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"plogd did not stop on SIGTERM:\n{self.text()[-3000:]}") \
                from None
        text = self.text()
        assert code == 0, f"plogd exited {code}:\n{text[-3000:]}"
        assert "Traceback" not in text, text
        return text


# -- receivers in the test -----------------------------------------------------------------

class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True        # started again on the same port after an outage
    daemon_threads = True
    block_on_close = False


class _UDPServer(socketserver.UDPServer):
    allow_reuse_address = True


class LineReceiver:
    """A receiver of text lines on 127.0.0.1, TCP or UDP, keeping every line it got.

    `stop()` (TCP) stops it as a server shutting down cleanly does: no new connection is
    accepted, the open ones are half-closed (FIN) and read to their end, so what plogd wrote
    before it noticed is still received; `start()` again listens on the same port."""

    def __init__(self, kind: str = "tcp"):
        self.kind = kind
        self.port = free_port(socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.port}"

    def lines(self) -> list[bytes]:
        with self._lock:
            return list(self._lines)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines()]

    def _got(self, data: list[bytes]) -> None:
        with self._lock:
            self._lines += data

    def start(self) -> LineReceiver:
        receiver = self

        class Stream(socketserver.StreamRequestHandler):
            def handle(self):
                receiver._connections.add(self.connection)
                try:
                    for line in self.rfile:
                        receiver._got([line.rstrip(b"\n")])
                except ConnectionResetError:
                    pass              # plogd gave the connection up (after our FIN)
                finally:
                    receiver._connections.discard(self.connection)

        class Datagram(socketserver.BaseRequestHandler):
            def handle(self):
                receiver._got(self.request[0].splitlines())

        self._server = _TCPServer(("127.0.0.1", self.port), Stream) if self.kind == "tcp" \
            else _UDPServer(("127.0.0.1", self.port), Datagram)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        for connection in list(self._connections):
            try:
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self._server = None

    def drained(self, deadline: float = 10) -> None:
        """Until every connection is read to its end (plogd closed it)."""
        wait_until(lambda: not self._connections, f"{self.url}: connections closed", deadline)

    def __enter__(self) -> LineReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.drained()


def canonical(records: list[dict]) -> list[str]:
    """Records as sorted JSON texts: two lists are equal as multisets when these are."""
    return sorted(json.dumps(r, sort_keys=True) for r in records)


# -- an outage of one output -----------------------------------------------------------------

OUTAGE = 30.0            # seconds a receiver is stopped: the figure


@dataclass
class Outage:
    """What an outage scenario leaves to check."""
    daemon: Daemon
    receiver: LineReceiver
    expected: dict           # the truth of the whole run
    zabbix: dict             # {(key, clock): value} in Zabbix history, for the truth's keys


def zabbix_windows(zabbix, keys: dict[str, str], expected: dict) -> dict:
    """Zabbix history of `keys` once it holds as many values as the truth has windows."""
    stored = {}
    for key, kind in keys.items():
        count = sum(1 for k, _ in expected if k == key)
        stored.update({(key, clock): value for clock, _, value
                       in zabbix.wait_history(HOST, key, kind, count, timeout=30)})
    return stored


def run_outage(tmp_path: Path, zabbix, mode: str, output: str, name: str) -> Outage:
    """plogd MODE with Zabbix and the line output `output` (YAML, its url `{url}`, named
    `name`) sending json to a receiver in the test: the receiver is stopped for OUTAGE
    seconds in the middle of a live run, then started again.

    At the end of the outage, with the receiver still down, Zabbix must hold every window
    closed 3 s or more before, equal to the truth: a dead line receiver does not hold Zabbix
    back. The run ends when the receiver has got a window newer than the outage, the result
    file holds every window of the log and the output's cursor has passed them all; Zabbix
    history is then read for the truth's keys."""
    receiver = LineReceiver("tcp").start()
    config = write_config(tmp_path, tmp_path / "access.log",
                          "  - " + output.replace("{url}", receiver.url), zabbix)
    log = LiveLog(tmp_path / "access.log")
    daemon = Daemon(config, mode)
    try:
        log.start()
        wait_until(lambda: any(r["key"].startswith("e2e.") for r in receiver.records()),
                   f"{name} delivering a first window", 40, daemon.process, str(daemon.log))
        receiver.stop()
        back_at = time.monotonic() + OUTAGE
        wait_until(lambda: daemon.output_state(name).get("up") is False,
                   f"{name} seen down", OUTAGE, daemon.process, str(daemon.log))
        time.sleep(max(0.0, back_at - time.monotonic()))   # the outage's length, by design
        # Zabbix on time: every window closed 3 s or more ago is in its history already,
        # equal to the truth, while the receiver is still down
        so_far = truth(list(log.lines))
        due = {w: v for w, v in so_far.items()
               if w[0] == "e2e.requests" and w[1] + INTERVAL + LATENESS + 3 <= time.time()}
        assert len(due) >= OUTAGE // INTERVAL - 1, due
        try:
            wait_until(lambda: due.items() <= {("e2e.requests", clock): value for clock, _, value
                                               in zabbix.history(HOST, "e2e.requests", "uint")
                                               }.items(),
                       "Zabbix having the windows closed so far", 10, daemon.process,
                       str(daemon.log))
        except TimeoutError:
            raise AssertionError(f"while {name} was down, Zabbix had "
                                 f"{zabbix.history(HOST, 'e2e.requests', 'uint')}, "
                                 f"not every window of {due}") from None
        receiver.start()
        after = int(time.time())
        wait_until(lambda: any(r["clock"] >= after for r in receiver.records()
                               if r["key"].startswith("e2e.")),
                   f"{name} delivering a window newer than the outage", 2 * BACKOFF_MAX,
                   daemon.process, str(daemon.log))
        lines = log.stop()
        expected = truth(lines)
        daemon.wait_windows(expected)
        # caught up: its cursor passed every window of the truth (sent, or dropped)
        wait_until(lambda: expected.keys() <= {(r["key"], r["clock"])
                                               for r in daemon.taken(name)},
                   f"{name} catching up", 30, daemon.process, str(daemon.log))
        stored = zabbix_windows(zabbix, ZABBIX_ITEMS, expected)
    finally:
        log.stop()
        daemon.stop()
        receiver.stop()
        receiver.drained()
    return Outage(daemon, receiver, expected, stored)


def assert_zabbix_has(stored: dict, expected: dict) -> None:
    """Zabbix history equals the truth (floats to their stored precision)."""
    assert stored.keys() == expected.keys()
    for window, value in expected.items():
        assert abs(stored[window] - value) < 1e-6, (window, stored[window], value)
