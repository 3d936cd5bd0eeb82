"""Real web servers for the tests: nginx and Apache (the Debian packages, installed by
tests/run) on 127.0.0.1 high ports with private configurations and prefixes, stopped at the
end of the test even when it fails; known requests; the real logrotate with the Debian
rotation configurations (copied beside this file)."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from helpers import ROOT

HERE = Path(__file__).resolve().parent


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}"
                                     if os.path.exists(f"/usr/sbin/{program}") else None)
    assert path, f"{program} is not installed: tests/run installs it (Debian packages nginx, " \
                 "apache2, apache2-utils, logrotate)"
    return path


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited ({proc.returncode})"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def running(command: list[str], port: int, log: Path):
    """The server's process, in the foreground under this test; stopped (TERM, then KILL)
    when the block ends, however it ends."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
    try:
        wait_port(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def request(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def make_requests(port: int, plan: list[tuple[str, int]]) -> Counter:
    """Each (path, times) of the plan, in turn; the statuses the server answered."""
    statuses: Counter = Counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for path, times in plan:
            for _ in range(times):
                try:
                    statuses[request(conn, path)] += 1
                except (http.client.HTTPException, OSError):
                    conn.close()        # the server closed a kept-alive connection: again
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    statuses[request(conn, path)] += 1
    finally:
        conn.close()
    return statuses


def logrotate(template: str, logs_glob: str, postrotate: str, workdir: Path) -> None:
    """Rotate now (-f) with the Debian configuration `template` (a file beside this one),
    its log path and postrotate command made this test's."""
    text = (HERE / template).read_text()
    first = next(line for line in text.splitlines() if line.endswith("*.log {"))
    text = text.replace(first, f"{logs_glob} {{")
    start = text.index("\tpostrotate\n") + len("\tpostrotate\n")
    end = text.index("\tendscript", start)
    text = text[:start] + f"\t\t{postrotate}\n" + text[end:]
    config = workdir / f"{template}.conf"
    config.write_text(text)
    config.chmod(0o644)
    result = subprocess.run([need("logrotate"), "-f", "-s", str(workdir / "logrotate.state"),
                             str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def wait_text(path: Path, text: str, timeout: float = 20) -> None:
    """Wait until the file `path` (plogd's log) holds `text`."""
    deadline = time.monotonic() + timeout
    while text not in (path.read_text(errors="replace") if path.exists() else ""):
        assert time.monotonic() < deadline, f"{path} never said {text!r}"
        time.sleep(0.05)


def start_plogd(config: Path, log: Path, ready: list[str]) -> subprocess.Popen:
    """plogd --single, returned once its log says each of `ready` (every input followed or
    listening: a request made before could be rotated away before plogd ever saw it)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "plogd", "--single", "-c", str(config)],
                                env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=out,
                                stderr=out)
    try:
        for text in ready:
            wait_text(log, text)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop_plogd(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def totals(result_file: Path) -> Counter:
    """Per key, the sum over the windows plogd wrote (its own plogd.* values left out)."""
    summed: Counter = Counter()
    if result_file.exists():
        for line in result_file.read_text().splitlines():
            record = json.loads(line)
            if not record["key"].startswith("plogd."):
                summed[record["key"]] += record["value"]
    return summed


def wait_totals(result_file: Path, expected: dict, timeout: float = 90) -> Counter:
    """plogd's totals once they hold `expected` (or what they are at the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = totals(result_file)
        if all(got.get(key) == value for key, value in expected.items()):
            return got
        time.sleep(0.2)
    return totals(result_file)
