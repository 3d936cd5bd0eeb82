"""From an empty Zabbix host to stored values and firing triggers, as an administrator does
it: `plogd init` on a log -> `plogd zabbix provision` -> `plogd --multi` following the log
that the test keeps writing -> `plogd zabbix provision --wait` (nothing to change, a first
value).

Pinned: no value lost or given up — the history of every plain and discovered item equals
the truth (`plogd replay` of the same log, every window), the members that appear only with
the injected errors (status 500) included, their values waiting (logged so, not as errors)
until the server knows the items — and plogd's own plogd.* values are stored, the per-input
ones discovered over {#INPUT}; the 5xx share trigger fires on the injected errors, the
nodata trigger when plogd is stopped (its macro set to 30 s on the host). Printed: the time
from the start to the first value of every item (target: under five minutes). Names are
zbx-provision-e2e*, deleted before and after.
"""
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT, plogd, read_records
from plogd.config import load

PREFIX = "zbx-provision-e2e"
HOST = PREFIX + "-web"             # hosts and templates share one namespace of names
TEMPLATE = PREFIX + "-template"
CALM = (200, 200, 200, 301, 404)   # no 5xx
ERRORS = (200, 500)                # the injected errors: half of the lines


def line(i: int, now: float, statuses) -> str:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    return (f'198.51.100.{i % 250} - - [{stamp}] "GET /p/{i % 7} HTTP/1.1" '
            f'{statuses[i % len(statuses)]} {100 + i % 900} "-" "e2e" {(i % 97) / 1000:.3f} '
            f'{(i % 89) / 1000:.3f}\n')


@pytest.fixture
def server(zabbix):
    zabbix.delete_named(PREFIX)
    yield zabbix
    zabbix.delete_named(PREFIX)


class FirstValues:
    """When each item of the host first had a value (seconds since `started`), polled."""

    def __init__(self, api, started: float):
        self.api, self.started, self.seen = api, started, {}

    def poll(self) -> dict:
        items = {i["key_"]: i for i in self.api.item.get(
            host=HOST, output=["itemid", "key_", "value_type", "lastclock", "lastvalue"])}
        for key, item in items.items():
            if int(item["lastclock"]) > 0 and key not in self.seen:
                self.seen[key] = time.monotonic() - self.started
        return items

    def poll_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
            time.sleep(1)


def test_init_provision_run_every_value_stored_triggers_fire(tmp_path, server, monkeypatch):
    started = time.monotonic()
    api = server.api()
    log = tmp_path / "access.log"
    written = 0

    def write(n: int, statuses=CALM) -> None:
        nonlocal written
        with open(log, "a") as f:
            f.write("".join(line(written + i, time.time(), statuses) for i in range(n)))
        written += n

    write(30)                                   # a first burst: init detects the format
    config = tmp_path / "plogd.yaml"
    out = plogd("init", str(log), "-o", str(config), "--root", str(tmp_path / "root"),
                "--zabbix-server", f"{server.server}:{server.port}", "--host", HOST)
    assert "format nginx_timed (matches 100% of 30 lines)" in out.stdout.decode()
    # the test's own pace: 5 s windows, its state in tmp, the log from its first line, the
    # 5xx share alert on a single window (not 5 minutes of them)
    text = config.read_text()
    assert "alert: {above: 0.05, for: 5m" in text
    config.write_text(text.replace("interval: 60", "interval: 5")
                      .replace("state_dir: /var/lib/plogd", f"state_dir: {tmp_path / 'state'}")
                      .replace("start: end", "start: beginning\n    lateness: 1")
                      .replace("alert: {above: 0.05, for: 5m", "alert: {above: 0.05, for: 0"))

    for name, value in (("ZABBIX_URL", server.api_url), ("ZABBIX_USER", server.user),
                        ("ZABBIX_PASSWORD", server.password)):
        monkeypatch.setenv(name, value)             # as an administrator's shell would
    provision = ["zabbix", "provision", "-c", str(config), "--name", TEMPLATE, "--group", PREFIX]
    out = plogd(*provision).stdout.decode()
    print(out)
    assert f"create host {HOST} in group {PREFIX} with template {TEMPLATE}: done" in out
    hostid = api.host.get(filter={"host": [HOST]}, output=["hostid"])[0]["hostid"]
    api.usermacro.create(hostid=hostid, macro="{$PLOGD.NODATA}", value="30s")
    nodata = trigger(api, "plogd sends nothing")
    share = trigger(api, "nginx.5xx_share above")

    watch = FirstValues(api, started)
    daemon_log = open(tmp_path / "plogd.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "plogd", "--multi", "--workers", "1",
                             "-c", str(config)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=daemon_log, stderr=daemon_log)
    try:
        waited = plogd(*provision, "--wait", "120").stdout.decode()
        print(waited)
        assert "nothing to change" in waited and "first value: " in waited
        for _ in range(3):                      # three more calm windows
            watch.poll_for(5)
            write(40)
        watch.poll_for(10)
        assert state(api, share) == "0"         # the calm windows' shares are in: no problem
        for _ in range(2):                      # then errors are injected
            write(40, ERRORS)
            watch.poll_for(5)
        truth = read_records(plogd("replay", "-c", str(config), str(log)).stdout)
        wait_for_truth(api, watch, truth, timeout=300)
        fired = wait_problem(api, share, timeout=60)
        print(f"5xx share trigger: {fired}")
    finally:
        proc.send_signal(signal.SIGTERM)
        stopped = proc.wait(timeout=60)
    assert stopped == 0
    stop = time.monotonic()
    fired = wait_problem(api, nodata, timeout=240)
    print(f"nodata trigger: {fired}, {time.monotonic() - stop:.0f} s after plogd stopped")

    text = (tmp_path / "plogd.log").read_text()
    print("\n".join(l for l in text.splitlines() if "WARNING" in l or "ERROR" in l))
    print(f"\nseconds from start (init) to the first value in history, {len(watch.seen)} items:")
    for key, seconds in sorted(watch.seen.items(), key=lambda kv: kv[1]):
        print(f"  {seconds:6.1f}  {key}")
    print(f"  all items: {max(watch.seen.values()):.1f} s (target < 300 s)")

    assert "giving up" not in text and "Traceback" not in text
    keys = {r["key"] for r in truth}
    assert {"nginx.status[500]", "nginx.status_class[5xx]"} <= keys     # discovered with the errors
    items = watch.poll()
    own = {k: i for k, i in items.items() if k.startswith("plogd.")}
    for key in ("plogd.heartbeat", "plogd.sent", "plogd.given_up", "plogd.zabbix_up"):
        assert int(own[key]["lastclock"]) > 0, key
    assert own["plogd.given_up"]["lastvalue"] == "0" and own["plogd.zabbix_up"]["lastvalue"] == "1"
    # the per-input ones, discovered over the inputs ({#INPUT}): every line written was read
    assert own["plogd.lines[access]"]["lastvalue"] == str(written)
    for key in ("plogd.unmatched[access]", "plogd.lag[access]", "plogd.missing[access]"):
        assert int(own[key]["lastclock"]) > 0, key
    # nothing is an error: values of items not yet discovered waited, logged as such; the
    # plain items and discovery rules of the new host, refused until the server's first
    # configuration sync after provisioning (CacheUpdateFrequency, 5 s here), are retried
    # with a warning.
    discovered = [m.key.split("[")[0] + "[" for m in load(str(config)).inputs[0].metrics if m.by]
    sent = keys | {k for k, item in own.items() if int(item["lastclock"]) > 0}   # not malformed[]
    members = [k for k in sent
               if k.startswith(tuple(discovered)) or (k.startswith("plogd.") and "[" in k)]
    assert " ERROR " not in text, text
    waiting = [l for l in text.splitlines() if "waiting for discovery: " in l]
    unsaid = [k for k in members if not any(f":{k}" in l for l in waiting)]
    assert not unsaid, (unsaid, waiting)


def trigger(api, name_start: str) -> str:
    found = api.trigger.get(host=HOST, search={"description": name_start}, startSearch=True,
                            output=["triggerid"])
    assert len(found) == 1, (name_start, found)
    return found[0]["triggerid"]


def state(api, triggerid: str) -> str:
    return api.trigger.get(triggerids=[triggerid], output=["value"])[0]["value"]


def wait_problem(api, triggerid: str, timeout: float) -> str:
    """The name of the problem of the trigger, once there is one (problem.get)."""
    deadline = time.monotonic() + timeout
    while True:
        problems = api.problem.get(objectids=[triggerid], output=["name"])
        if problems:
            return problems[0]["name"]
        if time.monotonic() >= deadline:
            raise AssertionError(f"trigger {triggerid} has no problem after {timeout} s")
        time.sleep(2)


def wait_for_truth(api, watch: FirstValues, truth: list[dict], timeout: float) -> None:
    """Poll until every (key, clock, value) of `truth` is in history, exactly; fails with
    the differences at the deadline."""
    want: dict[str, dict[int, float]] = {}
    for r in truth:
        want.setdefault(r["key"], {})[r["clock"]] = r["value"]
    deadline = time.monotonic() + timeout
    while True:
        items = watch.poll()
        differences = {}
        for key, values in want.items():
            item = items.get(key)
            rows = [] if item is None else api.history.get(
                itemids=[item["itemid"]], history=int(item["value_type"]), output="extend")
            got = {int(r["clock"]): float(r["value"]) for r in rows}
            if len(rows) != len(got) or set(got) != set(values) or not all(
                    math.isclose(got[c], v, rel_tol=1e-6, abs_tol=1e-6) for c, v in values.items()):
                differences[key] = (sorted(values.items()), sorted(got.items()))
        if not differences:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"history differs from the truth after {timeout} s: {differences}")
        time.sleep(2)
