#!/usr/bin/env python3
"""A screenshot of the template dashboard as a person sees it (not part of the test run).

    .venv/bin/python tests/zabbix/screenshot-dashboard.py [-o docs/zabbix-dashboard.png] [--keep]

On the testbed of tests/zabbix/start-zabbix.sh (started if needed): imports the template of
conf/nginx.yaml (`plogd zabbix template`), creates a host linked to it, computes the last
90 minutes of generated nginx traffic with plogd (`plogd replay`'s windows), sends them with
the discovery sets and plogd's own values, as plogd's sender would, then logs in to the
Zabbix frontend that the testbed serves (php -S) with headless Chromium (the Debian package
`chromium`, installed when missing) and saves a PNG of the host's template dashboard.
The host, its group and the template are deleted afterwards (unless --keep).
A frontend whose php was started before start-zabbix.sh generated the en_US.UTF-8 locale
shows only "Locale for language en_US is not found": restart it, or point --frontend at
another one (`php -S 127.0.0.1:18089 -t /usr/share/zabbix` serves the same).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from zabbix_utils import ItemValue  # noqa: E402

from plogd import config as config_module  # noqa: E402
from plogd import traffic  # noqa: E402
from plogd.runner import replay  # noqa: E402
from plogd.outputs.zabbix.sender import LLDTagger, discovery_key, discovery_macro  # noqa: E402
from plogd.outputs.zabbix.template import render_template  # noqa: E402
from zabbix_fixture import start_testbed  # noqa: E402

TEMPLATE = "plogd nginx screenshot"
HOST = "web01-screenshot"
GROUP = "plogd screenshot"
MINUTES = 90
UPDATE = {"createMissing": True, "updateExisting": True}
RULES = {"groups": {"createMissing": True}, "templates": UPDATE, "items": UPDATE,
         "discoveryRules": UPDATE, "triggers": UPDATE, "graphs": UPDATE,
         "templateDashboards": UPDATE, "valueMaps": UPDATE}


def write_traffic(path: Path, end: float) -> None:
    """MINUTES of nginx_timed lines ending at `end`, busier and quieter in turns."""
    with open(path, "wb") as log:
        for minute in range(MINUTES):
            start = end - (MINUTES - minute) * 60
            rate = 8 + 6 * math.sin(minute / 9) + (10 if 50 <= minute < 58 else 0)
            log.writelines(traffic.generate(int(rate * 60), seed=minute, start=start, rate=rate))


def windows(directory: Path, end: float):
    """The configuration (conf/nginx.yaml on the generated log) and its windows' records."""
    log = directory / "access.log"
    write_traffic(log, end)
    data = config_module.load(str(ROOT / "conf" / "nginx.yaml"))
    data.inputs[0].path = str(log)
    data.host = HOST
    spec = data.inputs[0]
    records, _ = replay(data, spec, [str(log)])
    # the window after `end` holds only the few lines that spilled over into it
    return data, [r for r in records if r["clock"] < end]


def own_values(records: list[dict]) -> list[tuple[str, int, object]]:
    """plogd's own values per window, as plogd.monitoring would have sent them."""
    out, lines, sent = [], 0, 0
    for clock in sorted({r["clock"] for r in records}):
        window = [r for r in records if r["clock"] == clock]
        lines += next(r["value"] for r in window if r["key"] == "nginx.requests")
        sent += len(window)
        wave = (clock // 60) % 7
        out += [("plogd.heartbeat", clock, clock + 61), ("plogd.restarts", clock, 0),
                ("plogd.sent", clock, sent), ("plogd.refused", clock, 0),
                ("plogd.given_up", clock, 0), ("plogd.zabbix_up", clock, 1),
                ("plogd.spool_backlog", clock, 2000 + 900 * wave),
                ("plogd.lines[nginx]", clock, lines), ("plogd.unmatched[nginx]", clock, wave // 3),
                ("plogd.lag[nginx]", clock, round(0.4 + 0.15 * wave, 3))]
    return out


def send(zabbix, values: list[ItemValue]) -> int:
    """The number of values the server did not process."""
    sender = zabbix.sender()
    processed = 0
    for i in range(0, len(values), 500):
        processed += sender.send(values[i:i + 500]).processed
    return len(values) - processed


def send_discovery(zabbix, config, records) -> None:
    """The discovery sets (plogd's sender sends them before the values) until the server
    knows the discovered items."""
    tagger = LLDTagger(config.inputs)
    members: dict[str, set] = {}
    for r in records:
        tagged = tagger.tag(config.inputs[0].name, dict(r))
        if "member" in tagged:
            key = discovery_key(tagged["template"], tagged["by"])
            members.setdefault(key, set()).add((discovery_macro(tagged["by"]), tagged["member"]))
    sets = {key: [{m: v} for m, v in sorted(found)] for key, found in members.items()}
    sets["plogd.inputs.discovery"] = [{"{#INPUT}": "nginx"}]
    # probes: the first value of a discovered item (with its own clock: a probe of another
    # clock would be a value of its own, and an old one sends the trigger functions looking
    # for history back to it)
    probes = [r for r in records if r["key"].startswith("nginx.status[")][:1]
    first = own_values(records)
    probes += [{"key": k, "clock": c, "value": v} for k, c, v in first if k == "plogd.lines[nginx]"][:1]
    deadline = time.monotonic() + 120
    while True:
        zabbix._runtime_control("config_cache_reload")
        send(zabbix, [ItemValue(HOST, k, json.dumps(v)) for k, v in sets.items()])
        time.sleep(2)
        zabbix._runtime_control("config_cache_reload")
        if send(zabbix, [ItemValue(HOST, p["key"], str(p["value"]), p["clock"], 0)
                         for p in probes]) == 0:
            return
        if time.monotonic() > deadline:
            raise SystemExit("the server did not create the discovered items")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("chromium")


def screenshot(zabbix, base: str, hostid: str, out: Path) -> None:
    """Log in through the frontend's own form (its fields in the URL: the testbed's
    Admin/zabbix) and let it redirect to the host's dashboard."""
    dashboard = (f"zabbix.php?action=host.dashboard.view&hostid={hostid}&from=now-{MINUTES}m&to=now"
                 "&kiosk=1")   # the dashboard alone, without the menu and the time filter
    login = f"{base}/index.php?" + urllib.parse.urlencode(
        {"name": zabbix.user, "password": zabbix.password, "enter": "Sign in",
         "request": dashboard})
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--user-data-dir={profile}",
                        "--window-size=1300,1780", "--virtual-time-budget=20000",
                        f"--screenshot={out}", login],
                       check=True, capture_output=True, timeout=180)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=str(ROOT / "docs" / "zabbix-dashboard.png"))
    p.add_argument("--keep", action="store_true", help="leave the host and template in place")
    p.add_argument("--frontend", help="the frontend's URL (default: the testbed's, the API's "
                                      "directory)")
    args = p.parse_args()
    zabbix = start_testbed()
    api = zabbix.api()
    cleanup(api)
    end = time.time() // 60 * 60
    with tempfile.TemporaryDirectory() as directory:
        config, records = windows(Path(directory), end)
    assert api.configuration.import_(format="yaml", rules=RULES,
                                     source=render_template(config, TEMPLATE)) is True
    [template] = api.template.get(filter={"host": [TEMPLATE]}, output=["templateid"])
    groupid = api.hostgroup.create(name=GROUP)["groupids"][0]
    hostid = api.host.create(host=HOST, groups=[{"groupid": groupid}],
                             templates=[{"templateid": template["templateid"]}])["hostids"][0]
    try:
        send_discovery(zabbix, config, records)
        values = [ItemValue(HOST, r["key"], str(r["value"]), r["clock"], 0) for r in records]
        values += [ItemValue(HOST, k, str(v), c, 0) for k, c, v in own_values(records)]
        failed = send(zabbix, values)
        print(f"sent {len(values)} values of {MINUTES} minutes, {failed} refused")
        for key, kind in (("nginx.requests", "uint"), ("nginx.5xx_share", "float"),
                          ("nginx.status[200]", "uint"), ("plogd.spool_backlog", "uint")):
            stored = len(zabbix.wait_history(HOST, key, kind, MINUTES - 1, timeout=300))
            assert stored >= MINUTES - 1, f"{key}: only {stored} values stored"
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        screenshot(zabbix, args.frontend or zabbix.api_url.rsplit("/", 1)[0], hostid,
                   Path(args.output))
        print(f"{args.output}: {Path(args.output).stat().st_size} bytes")
    finally:
        if not args.keep:
            cleanup(api)
    return 0


def cleanup(api) -> None:
    for host in api.host.get(filter={"host": [HOST]}, output=["hostid"]):
        api.host.delete(host["hostid"])
    for group in api.hostgroup.get(filter={"name": [GROUP]}, output=["groupid"]):
        api.hostgroup.delete(group["groupid"])
    for template in api.template.get(filter={"host": [TEMPLATE]}, output=["templateid"]):
        api.template.delete(template["templateid"])


if __name__ == "__main__":
    sys.exit(main())
