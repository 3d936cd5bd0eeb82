"""`plogd --single` follows a log that the test writes in real time (with a rename rotation
in the middle), and what the real Zabbix server stores equals the truth of those lines,
window by window. A metric whose item does not exist is refused by the server: plogd's log
names that key and every other value is stored."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

from helpers import ROOT, read_records
from plogd.traffic import generate

HOST = "web01"
INTERVAL = 5
ITEMS = {"it.requests": "uint", "it.status[200]": "uint", "it.status[404]": "uint",
         "it.status[500]": "uint", "it.bytes": "uint", "it.rt.max": "float"}


def config(tmp_path, log, zabbix) -> str:
    path = tmp_path / "plogd.yaml"
    path.write_text(f"""
interval: {INTERVAL}
state_dir: {tmp_path / 'state'}
zabbix: {{server: {zabbix.server}, port: {zabbix.port}, host: {HOST}}}
inputs:
  - name: web
    path: {log}
    format: nginx_timed
    start: beginning
    lateness: 1
    metrics:
      - {{key: it.requests, type: count}}
      - {{key: "it.status[{{status}}]", type: count, by: status, where: "status in [200, 404, 500]"}}
      - {{key: it.bytes, type: sum, field: body_bytes_sent}}
      - {{key: it.rt.max, type: max, field: request_time}}
      - {{key: it.not_an_item, type: count}}
""")
    return str(path)


def write_live_traffic(log, seconds: float, rotate_at: float) -> list[bytes]:
    """Lines stamped with the current time, appended in small bursts; returns them all."""
    written, start = [], time.time()
    source = generate(10**6, seed=7, start=start, rate=40)
    out = open(log, "ab", buffering=0)
    rotated = False
    while time.time() < start + seconds:
        now = time.time()
        burst = []
        for line in source:
            burst.append(line)
            if len(burst) >= 4:
                break
        # restamp with the wall clock: these are live lines
        stamp = time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(now)).encode()
        burst = [l[:l.index(b"[")] + stamp + l[l.index(b"]") + 1:] for l in burst]
        out.write(b"".join(burst))
        written += burst
        if not rotated and now >= start + rotate_at:
            os.rename(log, f"{log}.1")                  # logrotate's default ...
            out.write(b"".join(burst))                  # ... the server still writes the old file
            written += burst
            out.close()
            out = open(log, "ab", buffering=0)          # ... until it reopens
            rotated = True
        time.sleep(0.1)
    out.close()
    return written


def truth(lines: list[bytes]) -> dict[str, dict[int, object]]:
    from plogd.formats import get_format
    fmt = get_format("nginx_timed")
    expected = defaultdict(dict)
    counts, statuses, sizes, maxima = Counter(), Counter(), Counter(), {}
    for line in lines:
        rec = fmt.parse(line.rstrip(b"\n"))
        clock = rec["timestamp"] - rec["timestamp"] % INTERVAL
        counts[clock] += 1
        sizes[clock] += rec["body_bytes_sent"]
        if rec["status"] in (200, 404, 500):
            statuses[clock, rec["status"]] += 1
        if rec["request_time"] is not None:
            maxima[clock] = max(maxima.get(clock, 0), rec["request_time"])
    expected["it.requests"] = dict(counts)
    expected["it.bytes"] = dict(sizes)
    expected["it.rt.max"] = maxima
    for (clock, status), n in statuses.items():
        expected[f"it.status[{status}]"][clock] = n
    return expected


def test_single_follows_a_rotating_log_into_zabbix(tmp_path, zabbix):
    zabbix.reset_trapper_items(HOST, ITEMS)
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    daemon = subprocess.Popen([sys.executable, "-m", "plogd", "--single", "-c",
                               config(tmp_path, log, zabbix)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = write_live_traffic(log, seconds=12, rotate_at=6)
        expected = truth(lines)
        last_window = max(expected["it.requests"])
        # the last window closes lateness (1 s) after its end, by the wall clock
        time.sleep(max(0, last_window + INTERVAL + 1 - time.time()) + 2)
        stored = {key: {c: v for c, ns, v in zabbix.wait_history(HOST, key, kind, len(expected[key]))}
                  for key, kind in ITEMS.items()}
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=20)
    print(f"{len(lines)} lines in {len(expected['it.requests'])} windows; stored: {stored}")
    print(f"expected: {dict(expected)}")
    assert daemon.returncode == 0, stderr.decode()
    for key in ITEMS:
        if key == "it.rt.max":
            assert stored[key].keys() == expected[key].keys()
            assert all(abs(stored[key][c] - v) < 1e-9 for c, v in expected[key].items())
        else:
            assert stored[key] == expected[key], key
    assert sum(stored["it.requests"].values()) == len(lines)
    assert b"refused" in stderr and b"web01:it.not_an_item" in stderr
    assert b"Traceback" not in stderr
    # the result file holds the same values, with the window's clock and ns 0
    records = read_records(tmp_path / "state" / "results.jsonl")
    assert {r["clock"]: r["value"] for r in records if r["key"] == "it.requests"} == stored["it.requests"]
    assert {r["ns"] for r in records} == {0}
