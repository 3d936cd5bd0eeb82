"""The spool is bounded: while Zabbix cannot be reached, `plogd --single` writes result files
until zabbix.spool_max_bytes are waiting, then pauses reading (the log on disk is the
buffer; nothing is dropped); result files rotate at zabbix.result_rotate_bytes. Started
again with the server reachable, it delivers everything — history equals the truth — and
removes each rotated result file once Zabbix accepted all of it."""
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

from helpers import ROOT
from plogd.traffic import generate

HOST = "web01"
KEY = "it.spool.requests"
INTERVAL = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(conf, seconds):
    proc = subprocess.Popen([sys.executable, "-m", "plogd", "--single", "-c", str(conf)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=60)[1].decode()


def test_spool_full_pauses_reading_then_everything_is_delivered(tmp_path, zabbix):
    from plogd.formats import get_format
    zabbix.reset_trapper_items(HOST, {KEY: "uint"})
    log = tmp_path / "access.log"
    start = (int(time.time()) // 3600 - 30) * 3600
    lines = list(generate(40_000, seed=3, start=start, rate=8))
    log.write_bytes(b"".join(lines))
    fmt = get_format("nginx_timed")
    truth = Counter()
    for l in lines:
        ts = fmt.parse(l.rstrip(b"\n"))["timestamp"]
        truth[ts - ts % INTERVAL] += 1
    state = tmp_path / "state"

    def conf(port):
        path = tmp_path / "plogd.yaml"
        path.write_text(f"""
interval: {INTERVAL}
state_dir: {state}
zabbix: {{server: 127.0.0.1, port: {port}, host: {HOST}, spool_max_bytes: 20000,
          result_rotate_bytes: 6000}}
inputs:
  - {{name: web, path: {log}, format: nginx_timed, start: beginning, lateness: 1,
     metrics: [{{key: {KEY}, type: count}}]}}
""")
        return path

    stderr = run(conf(free_port()), 6)            # nobody listens there
    print(stderr)
    files = sorted(state.glob("results.jsonl*"))
    written = sum(f.stat().st_size for f in files)
    assert "the spool is full" in stderr
    assert "cannot send to Zabbix" in stderr
    assert len(files) > 2                           # rotated
    assert 20000 <= written < 20000 + 2 * 1024 * 1024 // 100    # paused, not all 1000+ windows
    # the server is there now: everything arrives, the rotated files go away
    proc = subprocess.Popen([sys.executable, "-m", "plogd", "--single", "-c", str(conf(zabbix.port))],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        complete = sorted(truth)[:-1]     # the last window stays open (its lines may go on)
        rows = zabbix.wait_history(HOST, KEY, "uint", len(complete), timeout=120)
        time.sleep(2)
        rows = zabbix.history(HOST, KEY, "uint")
    finally:
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=60)[1].decode()
    print(stderr)
    stored = {c: v for c, _, v in rows}
    assert len(rows) == len(stored)                 # none doubled
    assert {c: stored[c] for c in complete} == {c: truth[c] for c in complete}
    assert [f.name for f in state.glob("results.jsonl*")] == ["results.jsonl"]
    assert "Traceback" not in stderr
