"""plogd-haproxy: the format parses HAProxy's HTTP log into typed fields, and the installed
plugin works in plogd end to end: `plogd plugins` lists it, `plogd replay` with sample.yaml
over haproxy.log (hand-written lines as HAProxy and rsyslog write them) gives the truth
computed here without the plugin's regex."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml

from plogd_haproxy import haproxy_http

HERE = Path(__file__).parent
LOG = HERE / "haproxy.log"
SAMPLE = HERE.parent / "sample.yaml"
LINE = (b'Dec  3 10:00:23 lb1 haproxy[2211]: 10.0.3.9:60001 [03/Dec/2026:10:00:23.330] '
        b'http-in api/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 6/4/0/0/0 0/0 '
        b'"GET /v1/health HTTP/1.1"')


def local_epoch(text: str) -> int:
    """HAProxy's accept date is this machine's local time (no offset)."""
    return int(datetime.strptime(text, "%d/%b/%Y:%H:%M:%S.%f").timestamp())


def test_fields_are_typed():
    record = haproxy_http().parse(LINE)
    assert record == {
        "pid": 2211, "client_ip": "10.0.3.9", "client_port": 60001,
        "accept_date": "03/Dec/2026:10:00:23.330", "frontend_name": "http-in",
        "backend_name": "api", "server_name": "<NOSRV>",
        "receive_time": 0.0, "queue_time": None, "connect_time": None, "response_time": None,
        "active_time": 0.0, "status": 503, "bytes_read": 217,
        "captured_request_cookie": None, "captured_response_cookie": None,   # '-': none
        "termination_state": "SC--", "actconn": 6, "feconn": 4, "beconn": 0, "srv_conn": 0,
        "retries": 0, "srv_queue": 0, "backend_queue": 0,
        "captured_request_headers": None, "captured_response_headers": None,
        "request": "GET /v1/health HTTP/1.1",
        "timestamp": local_epoch("03/Dec/2026:10:00:23.330"), "status_class": "5xx",
        "method": "GET", "path": "/v1/health", "protocol": "HTTP/1.1"}


def test_the_syslog_head_is_optional_and_headers_captures_are_read():
    tail = (b'2001:db8::17:51034 [03/Dec/2026:10:00:17.044] https-in~ api/api2 '
            b'1/0/2/388/391 200 40212 - - ---- 5/3/3/2/0 0/0 {api.example.com|curl/8.4.0} '
            b'{application/json} "GET /v1/orders?page=2 HTTP/1.1"')
    fmt = haproxy_http()
    records = [fmt.parse(head + tail) for head in (
        b"", b"Dec  3 10:00:17 lb1 haproxy[2211]: ",
        b"2026-12-03T10:00:17.100000+00:00 lb1 haproxy[2211]: ")]
    assert records[1]["pid"] == records[2]["pid"] == 2211 and records[0]["pid"] is None
    for record in records:
        assert (record["client_ip"], record["client_port"]) == ("2001:db8::17", 51034)
        assert record["active_time"] == 0.391 and record["response_time"] == 0.388
        assert record["captured_request_headers"] == "api.example.com|curl/8.4.0"
        assert record["captured_response_headers"] == "application/json"
        assert record["path"] == "/v1/orders?page=2"


def test_a_line_that_is_no_request_is_unmatched():
    fmt = haproxy_http()
    assert fmt.parse(b"Dec  3 10:01:10 lb1 haproxy[2211]: Server static/srv2 is DOWN, "
                     b"reason: Layer4 connection problem") is None
    assert fmt.parse(LINE.replace(b"503", b"5x3")) is None
    assert fmt.parse(LINE.replace(b"03/Dec/2026", b"31/Feb/2026")) is None   # no such day


def truth(lines: list[str], interval: int = 60) -> dict[str, dict[int, object]]:
    """The sample config's values per window, from the lines split by hand."""
    windows: dict[int, list[tuple[int, float, int]]] = defaultdict(list)
    unmatched = 0
    for line in lines:
        words = line.split()
        at = next((k for k, w in enumerate(words) if w.startswith("[") and w[1:3].isdigit()),
                  None)
        if at is None:
            unmatched += 1
            continue
        timers, status, sent = words[at + 3], words[at + 4], words[at + 5]
        clock = local_epoch(words[at][1:-1]) // interval * interval
        windows[clock].append((int(status), int(timers.split("/")[4]) / 1000,
                               int(sent.lstrip("+"))))
    values: dict[str, dict[int, object]] = defaultdict(dict)
    for clock, requests in windows.items():
        values["haproxy.requests"][clock] = len(requests)
        for cls, n in Counter(f"{s // 100}xx" for s, _, _ in requests).items():
            values[f"haproxy.status_class[{cls}]"][clock] = n
        active = sorted(t for _, t, _ in requests)
        values["haproxy.active_time[p95]"][clock] = active[int(0.95 * (len(active) - 1))]
        values["haproxy.bytes"][clock] = sum(b for _, _, b in requests)
    assert unmatched == 1
    return values


def installed() -> str:
    try:
        return version("plogd-haproxy")
    except PackageNotFoundError:
        pytest.fail("plogd-haproxy is not installed: pip install plugins/plogd-haproxy "
                    "(tests/run does)")


def plogd(*args: str) -> subprocess.CompletedProcess:
    command = shutil.which("plogd", path=os.path.dirname(sys.executable)) or "plogd"
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TZ": "UTC"})


def test_plogd_plugins_lists_it():
    done = plogd("plugins")
    line = next((line for line in done.stdout.splitlines() if "haproxy_http" in line), "")
    assert line.split()[:2] == ["haproxy_http", "plogd_haproxy:haproxy_http"], done.stdout
    assert f"(plogd-haproxy {installed()}, plugin)" in line


def values_of(lines: list[str]) -> dict[str, dict[int, object]]:
    got: dict[str, dict[int, object]] = defaultdict(dict)
    for record in map(json.loads, lines):
        if record["key"].startswith("haproxy."):
            got[record["key"]][record["clock"]] = record["value"]
    return got


def utc_truth() -> dict[str, dict[int, object]]:
    """The truth with the local zone of plogd's runs here (TZ=UTC)."""
    import time
    was = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        return truth(LOG.read_text().splitlines())
    finally:
        os.environ.pop("TZ") if was is None else os.environ.__setitem__("TZ", was)
        time.tzset()


def assert_truth(got: dict[str, dict[int, object]]) -> None:
    want = utc_truth()
    assert set(got) == set(want)
    assert len(want["haproxy.requests"]) == 3 and sum(want["haproxy.requests"].values()) == 23
    for key in want:
        if key.endswith("[p95]"):          # plogd's sketch: within 1 % of the exact value
            assert got[key].keys() == want[key].keys()
            for clock, exact in want[key].items():
                assert got[key][clock] == pytest.approx(exact, rel=0.01), (key, clock)
        else:
            assert got[key] == want[key], key


def sample_config(tmp_path: Path, **input_keys) -> Path:
    config = yaml.safe_load(SAMPLE.read_text())
    config["state_dir"] = str(tmp_path / "state")
    config["inputs"][0].update(input_keys)
    path = tmp_path / "plogd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_replay_with_the_sample_config_gives_the_truth(tmp_path):
    installed()
    done = plogd("replay", "-c", str(sample_config(tmp_path)), str(LOG))
    assert done.returncode == 0, done.stderr
    assert "24 lines, 1 unmatched" in done.stderr
    assert_truth(values_of(done.stdout.splitlines()))


def test_the_daemon_follows_a_haproxy_log_with_the_plugin(tmp_path):
    """plogd --multi (a reader, parsers in their own processes, the writer) until the log's
    end: its windows are long closed, so all three are written."""
    installed()
    log = tmp_path / "haproxy.log"
    shutil.copy(LOG, log)
    config = sample_config(tmp_path, path=str(log), start="beginning")
    done = plogd("--multi", "--once", "--workers", "2", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert_truth(values_of((tmp_path / "state" / "results.jsonl").read_text().splitlines()))


def test_plogd_detect_and_parse_know_it():
    detected = plogd("detect", str(LOG))
    assert "best: format: haproxy_http" in detected.stdout, detected.stdout
    parsed = plogd("parse", "--format", "haproxy_http", str(LOG))
    records = [json.loads(line) for line in parsed.stdout.splitlines()]
    assert len(records) == 23
    assert records[-1]["active_time"] == 0.009 and records[-1]["status_class"] == "2xx"
    assert "24 lines, 1 unmatched by format haproxy_http" in parsed.stderr
