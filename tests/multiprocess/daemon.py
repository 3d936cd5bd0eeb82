"""Test helpers: run plogd as a real process, find its stages by their process titles, and
compare what it wrote with what `plogd replay` computes for the same log."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT, plogd

from plogd.traffic import write_file


def make_log(path: Path, lines: int) -> Path:
    """Realistic nginx_timed lines stamped an hour ago: every window closes once read."""
    write_file(path, lines, seed=11, start=time.time() - 3600, rate=lines / 600)
    return path


def make_config(workdir: Path, log: Path, extra: str = "", metrics: str = "",
                interval: int = 60) -> Path:
    config = workdir / "plogd.yaml"
    config.write_text(f"""
interval: {interval}
state_dir: {workdir / 'state'}
{extra}
inputs:
  - name: web
    path: {log}
    format: nginx_timed
    start: beginning
    lateness: 2
    metrics:
      - {{key: requests, type: count}}
      - {{key: "status[{{status}}]", type: count, by: status}}
      - {{key: bytes, type: sum, field: body_bytes_sent}}
      - {{key: rt.max, type: max, field: request_time}}
{metrics}""")
    return config


def start(config: Path, *args: str) -> subprocess.Popen:
    """Start plogd and return once it runs its pipeline (its signal handlers are set then:
    a test that stops it at once tests the stop, not Python's start-up)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    path = config.parent / "plogd.log"
    started = _log_count(path, "plogd --multi:") + _log_count(path, "plogd --single:")
    log = open(path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "plogd", *args, "-c", str(config)],
                            env=env, stdout=log, stderr=log)
    wait_log(config, lambda text: text.count("plogd --multi:") + text.count("plogd --single:")
             > started)
    return proc


def _log_count(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def wait_log(config: Path, condition, timeout: float = 20) -> None:
    """Wait until `condition(text of plogd.log)` holds."""
    deadline = time.monotonic() + timeout
    while not condition(log_text(config)):
        if time.monotonic() > deadline:
            raise AssertionError(f"plogd.log never showed what the test waits for:\n"
                                 f"{log_text(config)[-2000:]}")
        time.sleep(0.02)


def stage_pid(supervisor: subprocess.Popen, title: str, timeout: float = 10) -> int:
    """The pid of the supervisor's child titled `title` (e.g. "plogd: parser 1/2")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text()
        except OSError:
            children = ""
        for pid in children.split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.replace(b"\0", b" ").startswith(title.encode()):
                return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"no child process titled {title!r}")


def windows(result_file: Path) -> dict:
    """{(key, clock): value} of the metrics (not plogd's self-monitoring), failing if a
    window was written with two different values."""
    seen: dict = {}
    if not result_file.exists():
        return seen
    for line in result_file.read_text().splitlines():
        r = json.loads(line)
        if r["key"].startswith("plogd."):
            continue
        window = (r["key"], r["clock"])
        assert seen.get(window, r["value"]) == r["value"], f"{window} written twice, differently"
        seen[window] = r["value"]
    return seen


def truth(config: Path, log: Path) -> dict:
    """What the replay (checked against awk elsewhere) says the windows are."""
    out = plogd("replay", "-c", str(config), str(log)).stdout
    return {(r["key"], r["clock"]): r["value"] for r in map(json.loads, out.splitlines())}


def wait_for(result_file: Path, expected: dict, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = windows(result_file)
        if got == expected:
            return got
        time.sleep(0.2)
    return windows(result_file)


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def log_text(config: Path) -> str:
    path = config.parent / "plogd.log"
    return path.read_text(errors="replace") if path.exists() else ""
