"""plogd's own health reaches the real server beside the metrics: plogd.heartbeat,
plogd.lines[INPUT] (equal to the lines written), plogd.lag[INPUT] and the sender's totals."""
import os
import signal
import subprocess
import sys
import time
import uuid

from helpers import ROOT
from zabbix_fixture import TRAPPER, VALUE_TYPES

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


PER_INPUT = {"lines": "uint", "unmatched": "uint", "too_long": "uint", "late": "uint",
             "odd_time": "uint", "lag": "float", "bytes_behind": "uint", "rotations": "uint",
             "truncations": "uint", "missing": "uint"}
OWN = ["heartbeat", "restarts", "sent", "refused", "given_up", "zabbix_up", "spool_backlog"]


def test_per_input_values_are_discovered_over_the_inputs(tmp_path, zabbix):
    """The template's contract: a trapper discovery rule plogd.inputs.discovery with item
    prototypes plogd.X[{#INPUT}]; plogd sends the inputs as {#INPUT} before their values,
    the server creates the items, and the values of the new items, refused until the
    configuration cache knows them, are retried and arrive (logged once as waiting)."""
    host = f"sender-hardening-{uuid.uuid4().hex[:8]}"
    api = zabbix.api()
    hostid = zabbix.ensure_host(host)
    rule = api.discoveryrule.create(hostid=hostid, name="plogd inputs", type=TRAPPER,
                                    key_="plogd.inputs.discovery", lifetime="1d")["itemids"][0]
    for name, kind in PER_INPUT.items():
        api.itemprototype.create(hostid=hostid, ruleid=rule, name=f"plogd {name} {{#INPUT}}",
                                 key_=f"plogd.{name}[{{#INPUT}}]", type=TRAPPER,
                                 value_type=VALUE_TYPES[kind])
    rule = api.discoveryrule.create(hostid=hostid, name="plogd outputs", type=TRAPPER,
                                    key_="plogd.outputs.discovery", lifetime="1d")["itemids"][0]
    for name in ("sent", "refused", "dropped", "backlog", "up"):
        api.itemprototype.create(hostid=hostid, ruleid=rule, name=f"plogd output {name} {{#OUTPUT}}",
                                 key_=f"plogd.output.{name}[{{#OUTPUT}}]", type=TRAPPER,
                                 value_type=VALUE_TYPES["uint"])
    zabbix.ensure_trapper_items(host, {f"plogd.{name}": "uint" for name in OWN} |
                                {"web.requests": "uint", "api.requests": "uint"})
    zabbix.reload_config_cache()
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    line = f'1.2.3.4 - - [{stamp}] "GET / HTTP/1.1" 200 5 "-" "x"\n'.encode()
    (tmp_path / "web.log").write_bytes(line * 7)
    (tmp_path / "api.log").write_bytes(line * 3)
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
interval: 5
state_dir: {tmp_path / 'state'}
zabbix: {{server: {zabbix.server}, port: {zabbix.port}, host: {host}}}
inputs:
""" + "".join(f"""
  - name: {name}
    path: {tmp_path / name}.log
    format: nginx_combined
    start: beginning
    lateness: 1
    metrics: [{{key: {name}.requests, type: count}}]
""" for name in ("web", "api")))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "plogd", "--multi", "--workers", "1", "-c",
                             str(config)], env=env, stderr=subprocess.PIPE)
    started = time.monotonic()
    lines = {}
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len(lines) < 2:
            for name, expected in (("web", 7), ("api", 3)):
                try:
                    rows = zabbix.history(host, f"plogd.lines[{name}]", "uint")
                except LookupError:          # not discovered yet
                    continue
                if rows and rows[-1][2] == expected:
                    lines[name] = rows
            time.sleep(1)
        arrived = time.monotonic() - started
        discovered = sorted(zabbix.items_of(host, "plogd."))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        zabbix.delete_host(host)
    text = stderr.decode()
    print(text)
    print(f"per-input values of discovered items stored {arrived:.0f} s after the start")
    assert set(lines) == {"web", "api"}
    assert set(discovered) >= {f"plogd.{n}[{i}]" for n in PER_INPUT for i in ("web", "api")}
    assert text.count(f"discovery {host}:plogd.inputs.discovery: 2 member(s) announced") == 1
    # values waiting for their new items: logged once per key as such, never as errors
    assert text.count(f"{host}:plogd.lines[web]") == 1
    assert " refused " not in text and "giving up" not in text and "Traceback" not in text
    assert proc.returncode == 0
