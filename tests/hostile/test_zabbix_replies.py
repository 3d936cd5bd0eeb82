"""A Zabbix server that misbehaves on purpose (tests/hostile/fake_trapper.py) never crashes,
freezes or bloats the sender: each fault is one log line and a retry with backoff, the
values wait in the result file, and once the server behaves they all arrive. Each test
prints the sender's peak RSS during the fault and its time to recover (issue 11, points 6
and 7); run with -s to see them."""
import os
import signal
import subprocess
import sys
import time

import pytest

from fake_trapper import FakeTrapper
from helpers import ROOT
from zabbix_fixture import append_records, sender_offset, start_sender, stop_sender

TIMEOUT = 2            # the sender's --timeout: one exchange, reply included
MAX_RSS_MB = 100       # Python, zabbix-utils and the stage take ~30 MB


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise LookupError("VmHWM")


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def trapper():
    server = FakeTrapper()
    yield server
    server.close()


@pytest.mark.parametrize("fault", ["garbage", "not_json", "null", "wrong_shape", "bad_info",
                                   "trickle", "huge", "zlib_bomb", "slow"])
def test_a_bad_reply_is_a_failed_exchange_retried_until_the_server_behaves(tmp_path, trapper, fault):
    records = [{"host": "h", "key": "k", "clock": 1_700_000_000 + 60 * i, "ns": 0, "value": i}
               for i in range(3)]
    append_records(tmp_path / "results.jsonl", records)
    trapper.mode = fault
    proc, log = start_sender(tmp_path, "127.0.0.1", trapper.port, "--timeout", str(TIMEOUT),
                             "--interval", "0.05")
    try:
        # a second exchange: the sender survived the first fault and came back for more
        wait_for(lambda: trapper.exchanges >= 2 or proc.poll() is not None, 6 * TIMEOUT + 10,
                 "a second exchange")
        assert proc.poll() is None, log.read_text()
        rss = peak_rss_mb(proc.pid)
        trapper.mode = "ok"
        healed = time.monotonic()
        wait_for(lambda: len(trapper.stored) == 3 or proc.poll() is not None, 30,
                 "every value stored once the server behaves")
        recovered = time.monotonic() - healed
        assert proc.poll() is None, log.read_text()
    finally:
        stopped = time.monotonic()
        code = stop_sender(proc, timeout=TIMEOUT + 10)
        stopping = time.monotonic() - stopped
    text = log.read_text()
    print(f"\n{fault}: peak RSS {rss:.0f} MB, recovered {recovered:.1f} s after the server "
          f"behaved, stopped {stopping:.1f} s after SIGTERM")
    assert code == 0, text
    assert rss < MAX_RSS_MB
    assert sorted(trapper.stored.values()) == ["0", "1", "2"]
    assert "Traceback" not in text
    assert text.count("cannot send to Zabbix") == 1, text       # one line, not one per try
    assert text.count("reachable again") == 1


def test_sigterm_during_a_trickling_reply_stops_the_sender(tmp_path, trapper):
    append_records(tmp_path / "results.jsonl", [{"host": "h", "key": "k", "clock": 1, "ns": 0,
                                                 "value": 1}])
    trapper.mode = "trickle"
    proc, log = start_sender(tmp_path, "127.0.0.1", trapper.port, "--timeout", str(TIMEOUT))
    wait_for(lambda: trapper.exchanges >= 1, 10, "a first exchange")
    started = time.monotonic()
    assert stop_sender(proc, timeout=TIMEOUT + 10) == 0, log.read_text()
    assert time.monotonic() - started < TIMEOUT + 5
    assert sender_offset(tmp_path) == 0        # not accepted: it waits in the result file


def run_multi(tmp_path, port: int, interval: int):
    """plogd --multi following a small log, sending to the fake trapper at `port`."""
    log = tmp_path / "access.log"
    if not log.exists():
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        log.write_bytes(f'1.2.3.4 - - [{stamp}] "GET / HTTP/1.1" 200 5 "-" "x"\n'.encode() * 5)
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
interval: {interval}
state_dir: {tmp_path / 'state'}
zabbix: {{server: 127.0.0.1, port: {port}, host: h}}
inputs:
  - {{name: web, path: {log}, format: nginx_combined, start: beginning, lateness: 1,
      metrics: [{{key: web.requests, type: count}}]}}
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "plogd", "--multi", "--workers", "1", "-c",
                             str(config)], env=env, stderr=subprocess.PIPE)


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=30)[1].decode()


def test_multi_does_not_restart_on_a_null_reply(tmp_path, trapper):
    """Issue 11 point 6: JSON null restarted --multi 5 times in 105 s; now the sender
    backs off and the pipeline goes on."""
    trapper.mode = "null"
    proc = run_multi(tmp_path, trapper.port, 2)
    try:
        wait_for(lambda: trapper.exchanges >= 3 or proc.poll() is not None, 60,
                 "three exchanges with a server answering null")
        trapper.mode = "ok"
        wait_for(lambda: any(k[1] == "web.requests" for k in trapper.stored)
                 or proc.poll() is not None, 60, "the window's value stored")
    finally:
        text = stop(proc)
    assert "died" not in text and "Traceback" not in text, text
    assert text.count("unexpected reply from Zabbix") == 1, text


def test_own_values_are_one_per_clock_across_a_restart(tmp_path, trapper):
    """Issue 11 point 8: a restart within an interval makes plogd's set for that interval
    again (heartbeat, lag ... other values, same clock): only the first reaches Zabbix."""
    first = run_multi(tmp_path, trapper.port, 3600)
    try:
        wait_for(lambda: any(k[1] == "plogd.heartbeat" for k in trapper.stored)
                 or first.poll() is not None, 60, "a first heartbeat stored")
    finally:
        stop(first)
    time.sleep(1.1)                      # the next set's heartbeat would differ by a second
    exchanges = trapper.exchanges
    second = run_multi(tmp_path, trapper.port, 3600)
    try:
        results = tmp_path / "state" / "results.jsonl"
        wait_for(lambda: second.poll() is not None or
                 results.read_bytes().count(b'"plogd.heartbeat"') >= 2, 60,
                 "the set made again by the second run")
        wait_for(lambda: second.poll() is not None
                 or sender_offset(tmp_path / "state") >= results.stat().st_size, 30,
                 "the second run's sender at the end of the results")
    finally:
        stop(second)
    own = {k: v for k, v in trapper.received.items() if k[1].startswith("plogd.")}
    assert own and trapper.exchanges >= exchanges
    assert {k: set(v) for k, v in own.items() if len(set(v)) > 1} == {}
