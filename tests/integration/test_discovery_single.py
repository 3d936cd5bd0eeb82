"""`plogd --single` end to end with discovery: a `by: status` metric on a log whose statuses
appear over time; the writer tags the records of the by-metric, the sender announces each
new status by LLD before its values, the server creates the items from the prototype, and
their history equals the truth of the lines."""
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

from helpers import ROOT

INTERVAL = 5


def line(t: float, status: int) -> bytes:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
    return (f'10.0.0.1 - - [{stamp}] "GET / HTTP/1.1" {status} 10 "-" "t" 0.001 0.001\n').encode()


def test_single_discovers_statuses_as_they_appear(tmp_path, zabbix):
    host = f"snd-lld1-{uuid.uuid4().hex[:8]}"
    zabbix.create_lld_host(host, "it.code.discovery", "it.code[{#STATUS}]")
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    conf = tmp_path / "plogd.yaml"
    conf.write_text(f"""
interval: {INTERVAL}
state_dir: {tmp_path / 'state'}
zabbix: {{server: {zabbix.server}, port: {zabbix.port}, host: {host}}}
inputs:
  - {{name: web, path: {log}, format: nginx_timed, start: beginning, lateness: 1,
     metrics: [{{key: "it.code[{{status}}]", type: count, by: status}}]}}
""")
    daemon = subprocess.Popen([sys.executable, "-m", "plogd", "--single", "-c", str(conf)],
                              env=dict(os.environ, PYTHONPATH=str(ROOT)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    truth = Counter()
    try:
        start = time.time()
        with open(log, "ab", buffering=0) as out:
            while time.time() < start + 16:
                now = time.time()
                statuses = [200, 200] + ([404] if now > start + 5 else []) + ([503] if now > start + 10 else [])
                for s in statuses:
                    out.write(line(now, s))
                    truth[s, int(now) - int(now) % INTERVAL] += 1
                time.sleep(0.25)
        last = max(c for _, c in truth)
        time.sleep(max(0, last + INTERVAL + 1 - time.time()) + 1)
        stored = {}
        for s in (200, 404, 503):
            want = sorted((c, n) for (st, c), n in truth.items() if st == s)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    rows = zabbix.history(host, f"it.code[{s}]", "uint")
                    stored[s] = [(c, v) for c, _, v in rows]
                    if len(rows) >= len(want):
                        break
                except LookupError:
                    pass
                time.sleep(1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        zabbix.delete_host(host)
    print(stderr.decode())
    for s in (200, 404, 503):
        assert stored.get(s) == sorted((c, n) for (st, c), n in truth.items() if st == s), s
    assert stderr.count(b"it.code.discovery: ") == 3
    assert b"Traceback" not in stderr and b"giving up" not in stderr
