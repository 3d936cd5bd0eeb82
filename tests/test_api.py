"""The library API (plogd.api, re-exported by plogd): typed records from lines and files,
and windows from plogd's own replay, checked against values worked out by hand."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

import plogd

NGINX = [
    '10.0.0.1 - - [02/Jan/2024:10:00:01 +0000] "GET /a?x=1 HTTP/1.1" 200 512 "-" "curl/8" '
    '0.120 0.100',
    '10.0.0.2 - alice [02/Jan/2024:10:00:59 +0100] "POST /b HTTP/2.0" 503 0 "https://r/" "ua" '
    '1.500 -',
    'not a line of this log',
]


def test_parse_gives_typed_records_and_none_for_an_unmatched_line():
    first, second, unmatched = plogd.parse(NGINX, format="nginx_timed")
    assert first == {
        "remote_addr": "10.0.0.1", "remote_user": None, "time_local": "02/Jan/2024:10:00:01 +0000",
        "request": "GET /a?x=1 HTTP/1.1", "status": 200, "body_bytes_sent": 512,
        "http_referer": None, "http_user_agent": "curl/8", "request_time": 0.12,
        "upstream_response_time": 0.1, "timestamp": 1704189601, "method": "GET",
        "path": "/a?x=1", "protocol": "HTTP/1.1", "status_class": "2xx"}
    assert type(first["status"]) is int and type(first["request_time"]) is float
    assert type(first["timestamp"]) is int
    assert second["timestamp"] == 1704189659 - 3600          # +0100: an hour earlier in UTC
    assert (second["remote_user"], second["upstream_response_time"]) == ("alice", None)
    assert unmatched is None


def test_a_pasted_nginx_or_apache_format_and_bytes_lines():
    nginx = plogd.parse([b'1.2.3.4 [02/Jan/2024:10:00:01 +0000] 404 0.250\n'],
                        log_format="$remote_addr [$time_local] $status $request_time")
    assert next(nginx) == {"remote_addr": "1.2.3.4", "time_local": "02/Jan/2024:10:00:01 +0000",
                           "status": 404, "request_time": 0.25, "timestamp": 1704189601,
                           "status_class": "4xx"}
    record = next(plogd.parse(['1.2.3.4 [02/Jan/2024:10:00:01 +0000] "GET / HTTP/1.1" 200 - 1500'],
                              apache_format='%h %t "%r" %>s %b %D'))
    assert record["body_bytes_sent"] == 0                  # Apache's '-' for no body
    assert record["request_time"] == 0.0015                # %D: microseconds, in seconds
    assert plogd.describe(apache_format='%h %t "%r" %>s %b %D')["request_time"] == "float"


def test_parse_file_reads_compressed_files(tmp_path):
    path = tmp_path / "access.log.1.gz"
    path.write_bytes(gzip.compress("\n".join(NGINX).encode() + b"\n"))
    records = list(plogd.parse_file(path, format="nginx_timed"))
    assert [r and r["status"] for r in records] == [200, 503, None]


def test_replay_gives_the_windows_of_the_daemon(tmp_path):
    lines = []
    for second in range(180):             # 10:00:00 .. 10:02:59, one request a second
        status = 500 if second % 10 == 0 else 200
        lines.append(f'10.0.0.{second % 7} - - [02/Jan/2024:10:{second // 60:02d}:'
                     f'{second % 60:02d} +0000] "GET /p{second % 3} HTTP/1.1" {status} '
                     f'{second} "-" "ua" {second / 1000:.3f} -')
    lines.insert(50, "garbage")
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    result = plogd.replay([log], format="nginx_timed", interval=60, host="web01", metrics=[
        {"key": "requests", "type": "count"},
        {"key": "status[{status}]", "type": "count", "by": "status"},
        {"key": "bytes", "type": "sum", "field": "body_bytes_sent"},
        {"key": "rt[p{q}]", "type": "percentile", "field": "request_time", "q": [50, 95]}])
    assert (result.lines, result.unmatched, result.too_long, result.odd_time) == (181, 1, 0, 0)
    assert [w.clock for w in result.windows] == [1704189600, 1704189660, 1704189720]
    for k, window in enumerate(result.windows):
        seconds = range(60 * k, 60 * k + 60)
        assert window.values["requests"] == 60
        assert window.values["status[500]"] == 6 and window.values["status[200]"] == 54
        assert window.values["bytes"] == sum(seconds)
        for q in (50, 95):                 # the sketch's answer: within 1 % of the exact
            exact = sorted(seconds)[int(q / 100 * 59)] / 1000
            assert window.values[f"rt[p{q}]"] == pytest.approx(exact, rel=0.01)
    assert result.records[0] == {"host": "web01", "key": "requests", "clock": 1704189600,
                                 "ns": 0, "value": 60, "input": "api", "metric": "requests"}
    assert {"group": {"status": 500}, "metric": "status", "value": 6}.items() <= next(
        r for r in result.records if r["key"] == "status[500]").items()
    assert next(r for r in result.records if r["key"] == "rt[p95]")["q"] == 95
    assert result.fields["request_time"] == "float"


def test_mistakes_name_the_key_and_what_is_accepted(tmp_path):
    with pytest.raises(plogd.ConfigError, match=r"^plogd.api: format: unknown format "
                                                r"'nginx_timd'.*did you mean 'nginx_timed'"):
        plogd.load_format(format="nginx_timd")
    with pytest.raises(plogd.ConfigError, match="^plogd.api: colour: unknown key"):
        plogd.load_format(format="nginx_timed", colour="red")
    log = tmp_path / "a.log"
    log.write_text(NGINX[0] + "\n")
    with pytest.raises(plogd.ConfigError, match=r"^plogd.api: metrics\[0\].type: found 'avgg'"):
        plogd.replay([log], format="nginx_timed", metrics=[{"key": "x", "type": "avgg"}])


def test_the_package_is_typed_and_import_plogd_stays_light():
    assert (Path(plogd.__file__).parent / "py.typed").is_file()
    done = subprocess.run([sys.executable, "-c", "import sys, plogd; "
                           "print('plogd.api' in sys.modules, 'plogd.config' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
