"""The command line as a user runs it: replay (JSON and zabbix_sender forms, out-of-order
lines), parse, demo, and a clean exit on SIGINT/SIGTERM."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from helpers import DATA, ROOT, plogd, read_records, totals
from plogd.traffic import write_file

NASA = DATA / "logs" / "nasa-aug95-repaired" / "NASA_access_log_Aug95.repaired"


def test_replay_of_shuffled_lines_equals_replay_in_order(tmp_path):
    lines = NASA.read_bytes().split(b"\n")[:-1]     # whole lines only
    shuffled = tmp_path / "shuffled.log"
    import random
    random.Random(3).shuffle(lines)
    shuffled.write_bytes(b"\n".join(lines) + b"\n")
    ordered = read_records(plogd("replay", "--format", "apache_common", str(NASA)).stdout)
    mixed = read_records(plogd("replay", "--format", "apache_common", str(shuffled)).stdout)
    def key(r):
        return r["clock"], r["key"]
    assert sorted(mixed, key=key) == sorted(ordered, key=key)
    assert totals(mixed)["apache.requests"] == 1880


def test_replay_sender_format_quotes_what_zabbix_sender_needs(tmp_path):
    log = tmp_path / "a.log"
    log.write_bytes(b'1.2.3.4 - - [01/Aug/1995:00:00:01 -0400] "GET /a%20b HTTP/1.0" 200 10 "-" "x"\n'
                    b'1.2.3.4 - - [01/Aug/1995:00:00:02 -0400] "GET /q,r HTTP/1.0" 200 5 "-" "x"\n')
    config = tmp_path / "c.yaml"
    config.write_text("""
zabbix: {host: "my host"}
inputs:
  - path: x
    format: apache_combined
    metrics:
      - {key: "bytes[{path}]", type: sum, field: body_bytes_sent, by: path}
""")
    out = tmp_path / "values.txt"
    plogd("replay", "-c", str(config), "--sender-format", "-o", str(out), str(log))
    assert out.read_text().splitlines() == [
        '"my host" bytes[/a%20b] 807249600 10',
        '"my host" "bytes[\\"/q,r\\"]" 807249600 5',
    ]


def test_parse_prints_typed_fields_and_counts_unmatched(tmp_path):
    result = plogd("parse", "--format", "apache_combined",
                   str(DATA / "logs" / "basjes-small" / "access_log"))
    records = [json.loads(l) for l in result.stdout.splitlines()]
    assert len(records) == 16 and isinstance(records[0]["status"], int)
    assert records[0]["timestamp"] == 1365300296     # 07/Apr/2013:04:04:56 +0200
    assert b"17 lines, 1 unmatched" in result.stderr


def test_replay_counts_lines_without_a_time_in_odd_time(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(b'1.2.3.4 - - [01/Aug/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 7\n'
                    b'- - - - - - -\n- - - [-] "-" - -\ngarbage\n')
    result = plogd("replay", "--format", "apache_common", str(log))
    assert b"4 lines, 1 unmatched, 0 too long, 2 odd_time" in result.stderr
    assert totals(read_records(result.stdout))["apache.requests"] == 1


def test_parse_reads_apache_times_in_a_locale(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("1.2.3.4 [So 19 Mai 2019 12:34:56 +0000] 200\n", encoding="utf-8")
    fmt = "%h [%{%a %d %b %Y %T %z}t] %>s"
    result = plogd("parse", "--apache-format", fmt, "--time-locale", "de_DE.UTF-8", str(log))
    assert json.loads(result.stdout)["timestamp"] == 1558269296
    english = plogd("parse", "--apache-format", fmt, str(log), check=False)
    assert english.returncode == 1      # nothing matched
    assert english.stdout == b"" and b"1 unmatched" in english.stderr
    wrong = plogd("parse", "--format", "apache_common", "--time-locale", "de_DE.UTF-8", str(log),
                  check=False)
    assert wrong.returncode == 2 and b"--time-locale goes with --apache-format" in wrong.stderr
    missing = plogd("parse", "--apache-format", fmt, "--time-locale", "xx_YY.UTF-8", str(log),
                    check=False)
    assert missing.returncode == 2 and b"'xx_YY.UTF-8' is not installed" in missing.stderr


@pytest.mark.integration      # a running --single, signalled
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stops_cleanly_without_traceback(tmp_path, sig):
    big = tmp_path / "big.log"
    write_file(big, 300_000)
    log = tmp_path / "follow.log"
    log.write_bytes(b"")
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}\ninputs:\n  - path: {log}\n    format: nginx_timed\n"
                      "    metrics: [{key: n, type: count}]\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in (["replay", "--format", "nginx_timed", str(big)], ["--single", "-c", str(config)]):
        proc = subprocess.Popen([sys.executable, "-m", "plogd", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
        assert b"Traceback" not in err and b"Error in atexit" not in err, err.decode()
        assert proc.returncode in (0, 130, -sig), (args, proc.returncode)


def test_detect_names_the_format_and_shows_a_failing_line():
    result = plogd("detect", str(DATA / "logs" / "basjes-small" / "access_log"))
    out = result.stdout.decode()
    # a real Apache log (its %b writes '-'), not nginx_combined, which matches it as well
    assert "best: format: apache_combined" in out and "94.1%" in out
    assert "line 2 does not match: b'xxxxxxxxxxxx'" in out
    assert "column 13: expected" in out


def test_check_reports_the_match_ratio_on_the_inputs_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"inputs:\n  - path: {NASA}\n    format: apache_common\n"
                      "    metrics: [{key: n, type: count}]\n")
    out = plogd("check", "-c", str(config)).stdout.decode()
    assert f"matches 100.0% of the first 1000 lines of {NASA}" in out


def test_demo_follows_its_log_and_shows_exact_windows(tmp_path):
    """The README's first command ends in `plogd demo`: it must show closed windows whose
    request counts are those of the log it wrote."""
    out = plogd("demo", "--duration", "9", "--dir", str(tmp_path)).stdout.decode()
    shown = {m[1]: int(m[2]) for m in re.finditer(
        r"^window (\d\d:\d\d:\d\d) UTC, 5 s -> \d+ values\n  nginx\.requests +(\d+)$", out, re.M)}
    assert shown, out
    assert "plogd's own values at" in out
    per_window = Counter()
    for stamp in re.findall(rb"\[\d\d/\w{3}/\d{4}:(\d\d:\d\d:\d\d) \+0000\]",
                            (tmp_path / "access.log").read_bytes()):
        h, m, s = map(int, stamp.split(b":"))
        per_window[f"{h:02d}:{m:02d}:{s - s % 5:02d}"] += 1
    # exact, but for lines plogd itself counted as late (the writer thread stalled past the
    # 1 s lateness on a loaded machine)
    late = sum(int(n) for n in re.findall(r"late\[nginx\]=(\d+)", out))
    missing = {w: per_window[w] - shown[w] for w in shown}
    assert min(missing.values()) >= 0 and sum(missing.values()) <= late, (shown, per_window)
    records = read_records(tmp_path / "state" / "results.jsonl")
    assert sum(r["value"] for r in records if r["key"] == "nginx.requests") == sum(shown.values())


def test_workers_default_to_the_cores_but_at_most_four(monkeypatch):
    from plogd import cli
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert cli._run_parser().parse_args([]).workers == 4
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert cli._run_parser().parse_args([]).workers == 2
