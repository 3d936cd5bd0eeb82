"""Bad configurations (issue 11, points 12 and 13): SIGHUP with a bad file keeps the old
configuration running; `plogd check` on a FIFO, a device, bad bytes or deep nesting gives
one line and exit 2, at once."""
from __future__ import annotations

import os
import signal
import time

import pytest

from helpers import plogd
from test_state import TIMEOUT, Daemon, make_config, make_log

DEEP_WHERE = "(" * 3000 + "status >= 500" + ")" * 3000


def test_sighup_with_a_bad_file_keeps_the_old_configuration(tmp_path):
    """Before: invalid UTF-8 (UnicodeDecodeError) or 3,000 nested parentheses
    (RecursionError) on SIGHUP killed the daemon."""
    log = make_log(tmp_path / "access.log", 2000)
    config = make_config(tmp_path, tmp_path / "state", log)
    good = config.read_text()
    daemon = Daemon(config, "--multi", "--workers", "1")
    try:
        daemon.wait_log("plogd --multi:")
        bad = [good.replace("name: web", "name: w\xe9b").encode("latin-1"),
               (good + f"      - {{key: errors, type: count, where: '{DEEP_WHERE}'}}\n").encode(),
               ("x: " + "[" * 3000 + "]" * 3000 + "\n" + good).encode()]
        for i, data in enumerate(bad, 1):
            config.write_bytes(data)
            daemon.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + TIMEOUT
            while daemon.text().count("keeping the old one") < i:
                assert daemon.proc.poll() is None, daemon.text()[-3000:]
                assert time.monotonic() < deadline, daemon.text()[-3000:]
                time.sleep(0.05)
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0
    text = daemon.text()
    assert "not UTF-8 text" in text and "more than 100 nested" in text
    assert "not valid YAML: exceeded maximum nesting depth" in text and "Traceback" not in text


@pytest.mark.parametrize("make, expected", [
    (lambda p: os.mkfifo(p), "is a FIFO (named pipe); expected a regular file"),
    (lambda p: os.symlink("/dev/zero", p), "is a device; expected a regular file"),
    (lambda p: p.write_bytes(b"interval: 60\ninterval: 30\n"),
     ":2: not valid YAML: key 'interval' appears a second time in this mapping (first at line 1)"),
    (lambda p: p.write_bytes(b"x: " + b"- " * 5000 + b"1\n"), "not valid YAML:")])
def test_check_refuses_at_once_with_one_line(tmp_path, make, expected):
    path = tmp_path / "plogd.yaml"
    make(path)
    began = time.monotonic()
    run = plogd("check", "-c", str(path), check=False, timeout=TIMEOUT)
    err = run.stderr.decode(errors="replace")
    assert run.returncode == 2 and expected in err, err
    assert err.count("\n") == 1 and time.monotonic() - began < 20
