"""plogd's own health reaches the real server beside the metrics: plogd.heartbeat,
plogd.lines[INPUT] (equal to the lines written), plogd.lag[INPUT] and the sender's totals."""
import os
import signal
import subprocess
import sys
import time

from helpers import ROOT

HOST = "web01"
ITEMS = {"plogd.heartbeat": "uint", "plogd.lines[web]": "uint", "plogd.lag[web]": "float",
         "plogd.sent": "uint", "plogd.spool_backlog": "uint", "mon.requests": "uint"}


def test_self_monitoring_values_arrive(tmp_path, zabbix):
    zabbix.reset_trapper_items(HOST, ITEMS)
    log = tmp_path / "access.log"
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    log.write_bytes(f'1.2.3.4 - - [{stamp}] "GET / HTTP/1.1" 200 5 "-" "x"\n'.encode() * 25)
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
interval: 5
state_dir: {tmp_path / 'state'}
zabbix: {{server: {zabbix.server}, port: {zabbix.port}, host: {HOST}}}
inputs:
  - name: web
    path: {log}
    format: nginx_combined
    start: beginning
    lateness: 1
    metrics: [{{key: mon.requests, type: count}}]
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "plogd", "--multi", "--workers", "1", "-c",
                             str(config)], env=env, stderr=subprocess.PIPE)
    try:
        lines = zabbix.wait_history(HOST, "plogd.lines[web]", "uint", 3, timeout=40)
        heartbeat = zabbix.wait_history(HOST, "plogd.heartbeat", "uint", 1, timeout=5)
        sent = zabbix.wait_history(HOST, "plogd.sent", "uint", 3, timeout=10)
        lag = zabbix.history(HOST, "plogd.lag[web]", "float")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    print(f"lines {lines[-3:]}, heartbeat {heartbeat[-1:]}, sent {sent[-3:]}, lag {lag[-1:]}")
    assert lines[-1][2] == 25                       # every line read, counted by plogd itself
    assert abs(heartbeat[-1][2] - time.time()) < 60
    assert sent[-1][2] > 0                          # values the server accepted, as a total
    assert lag and lag[-1][2] >= 0
    assert proc.returncode == 0
