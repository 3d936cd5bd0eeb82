"""`plogd demo`: the main job on a log it writes itself, so it shows real work anywhere.

A thread appends realistic nginx traffic (plogd.traffic) to a log in real time; plogd
follows that log exactly as it would follow /var/log/nginx/access.log, closes 5-second
windows by the lines' own timestamps, writes them to the result file and prints each one.
"""
from __future__ import annotations

import os
import tempfile
import textwrap
import threading
import time

from . import config as config_module
from . import traffic
from .defaults import metrics_for
from .runner import StopRequest, run_single

INTERVAL = 5
RATE = 300   # lines per second


def _write_traffic(path: str, stop: threading.Event) -> None:
    start = time.time()
    with open(path, "ab", buffering=0) as log:
        pending = []
        for line in traffic.generate(10**9, seed=int(start), start=start, rate=RATE):
            pending.append(line)
            if len(pending) >= RATE // 10:
                while time.time() < start + 0.1:
                    if stop.wait(0.02):
                        return
                start += 0.1
                log.write(b"".join(pending))
                pending = []


def _value(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _print_windows(records: list[dict]) -> None:
    """The metrics' windows, one value per line; plogd's own values (plogd.*, sent once per
    interval for self-monitoring) on a short paragraph of their own."""
    own = [r for r in records if r["key"].startswith("plogd.")]
    metrics = [r for r in records if not r["key"].startswith("plogd.")]
    for clock in sorted({r["clock"] for r in metrics}):
        window = [r for r in metrics if r["clock"] == clock]
        stamp = time.strftime("%H:%M:%S", time.gmtime(clock))
        print(f"\nwindow {stamp} UTC, {INTERVAL} s -> {len(window)} values", flush=True)
        for r in window:
            print(f"  {r['key']:<34} {_value(r['value'])}", flush=True)
    for clock in sorted({r["clock"] for r in own}):
        stamp = time.strftime("%H:%M:%S", time.gmtime(clock))
        values = " ".join(f"{r['key'].removeprefix('plogd.')}={_value(r['value'])}"
                          for r in own if r["clock"] == clock and r["key"] != "plogd.heartbeat")
        print("\n" + textwrap.fill(f"plogd's own values at {stamp} UTC: {values}", width=96,
                                   subsequent_indent="  "), flush=True)


def run(duration: float, directory: str | None) -> None:
    directory = directory or tempfile.mkdtemp(prefix="plogd-demo-")
    log_path = os.path.join(directory, "access.log")
    data = {"interval": INTERVAL, "state_dir": os.path.join(directory, "state"),
            "inputs": [{"name": "nginx", "path": log_path, "format": "nginx_timed",
                        "start": "beginning", "lateness": 1,
                        "metrics": metrics_for("nginx_timed")}]}
    config = config_module.from_data("<embedded demo config>", data)
    stopping = (f"stopping after {duration:g} s (Ctrl-C stops earlier)" if duration
                else "Ctrl-C to stop")
    print(f"plogd demo: writing ~{RATE} nginx lines/s to {log_path}\n"
          f"following it with {INTERVAL}-second windows; results in {config.result_path}\n"
          f"{stopping}")
    open(log_path, "ab").close()
    stop_writing = threading.Event()
    writer = threading.Thread(target=_write_traffic, args=(log_path, stop_writing), daemon=True)
    writer.start()
    until = time.monotonic() + duration if duration else None
    try:
        run_single(config, on_records=_print_windows, stop=StopRequest(), until=until)
    finally:
        stop_writing.set()
        writer.join()
    print(f"\nresult file: {config.result_path} "
          f"({sum(1 for _ in open(config.result_path))} value records)")
