"""SIGTERM: exit 0 within seconds, nothing lost, and a restart continues where it stopped
(the open windows are kept, not sent half-done). SIGHUP: a broken configuration is logged
and the old one keeps running; a valid one is applied."""
import signal
import time

from daemon import (log_text, make_config, make_log, start, stop, truth, wait_for, windows)


def test_sigterm_then_restart_continues_exactly(tmp_path):
    log = make_log(tmp_path / "access.log", 800_000)
    config = make_config(tmp_path, log)
    expected = truth(config, log)
    proc = start(config, "--multi", "--workers", "2")
    results = tmp_path / "state" / "results.jsonl"
    deadline = time.monotonic() + 20
    while not windows(results) and time.monotonic() < deadline:
        time.sleep(0.01)                               # the first windows: in the middle
    began = time.monotonic()
    assert stop(proc) == 0
    took = time.monotonic() - began
    partial = windows(results)
    assert partial.items() <= expected.items()         # what was written is final
    proc = start(config, "--multi", "--workers", "2")
    try:
        got = wait_for(results, expected)
    finally:
        assert stop(proc) == 0
    print(f"stopped in {took:.2f} s with {len(partial)} of {len(expected)} windows written")
    assert took < 10
    assert len(partial) < len(expected)                # it did stop in the middle
    assert got == expected


def test_sighup_keeps_a_broken_config_and_applies_a_valid_one(tmp_path):
    log = make_log(tmp_path / "access.log", 20_000)
    config = make_config(tmp_path, log, interval=5)
    proc = start(config, "--multi", "--workers", "2")
    try:
        time.sleep(2)
        good = config.read_text()
        config.write_text(good.replace("type: count}", "type: cnt}", 1))
        proc.send_signal(signal.SIGHUP)
        time.sleep(2)
        assert proc.poll() is None
        assert "SIGHUP: the new configuration is not valid, keeping the old one" in log_text(config)
        assert "found 'cnt'" in log_text(config)
        # a valid change: one more metric, for the lines that come next
        config.write_text(good + "      - {key: errors, type: count, where: \"status >= 500\"}\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(2)
        with open(log, "ab") as f:                     # a new line, in a new window
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            f.write(f'1.2.3.4 - - [{stamp}] "GET / HTTP/1.1" 503 0 "-" "x" 0.1 0.1\n'.encode())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                k == "errors" for k, _ in windows(tmp_path / "state" / "results.jsonl")):
            time.sleep(0.2)
    finally:
        assert stop(proc) == 0
    assert "SIGHUP: applying the new configuration" in log_text(config)
    assert any(k == "errors" for k, _ in windows(tmp_path / "state" / "results.jsonl"))
