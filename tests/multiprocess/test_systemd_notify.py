"""Under systemd (Type=notify, WatchdogSec) the supervisor says READY=1 once the pipeline
is up, sends WATCHDOG=1 keep-alives, and STOPPING=1 on SIGTERM — checked on a real
notify socket, as systemd would read it."""
import os
import signal
import socket
import subprocess
import sys
import time

from daemon import log_text, make_config, make_log, stage_pid, wait_log

from helpers import ROOT


def test_ready_watchdog_and_stopping(tmp_path):
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.5)
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 1000))
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")
    proc = subprocess.Popen([sys.executable, "-m", "plogd", "--multi", "-c", str(config)], env=env,
                            stderr=subprocess.DEVNULL)
    messages = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            messages.append(sock.recv(100).decode())
        except socket.timeout:
            pass
    proc.send_signal(signal.SIGTERM)
    sock.settimeout(5)
    try:
        while messages[-1] != "STOPPING=1":
            messages.append(sock.recv(100).decode())
    finally:
        assert proc.wait(timeout=20) == 0
        sock.close()
    assert messages[0] == "READY=1"
    assert messages.count("WATCHDOG=1") >= 3          # every half second for 5 s, give or take
    assert messages[-1] == "STOPPING=1"


def test_keep_alives_go_on_while_a_restart_backs_off(tmp_path):
    """A stage that keeps dying makes the supervisor wait before restarting (2 s, 4 s …, up
    to 60 s: longer than WatchdogSec); systemd must not take the waiting for a hang."""
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 1000))
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")
    with open(tmp_path / "plogd.log", "ab") as log:       # where wait_log looks
        proc = subprocess.Popen([sys.executable, "-m", "plogd", "--multi", "-c", str(config)],
                                env=env, stderr=log)
    try:
        for restart in (1, 2):         # the first restart is at once, the second waits 2 s
            os.kill(stage_pid(proc, "plogd: reader"), signal.SIGKILL)
            wait_log(config, lambda text, n=restart: text.count("restarting the pipeline") >= n)
        sock.settimeout(0.1)
        pings, deadline = [], time.monotonic() + 2.5
        while time.monotonic() < deadline:
            try:
                if sock.recv(100) == b"WATCHDOG=1":
                    pings.append(time.monotonic())
            except socket.timeout:
                pass
        assert "in 2 s" in log_text(config)           # it did back off
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert len(pings) >= 4 and max(gaps) < 1.0, pings
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        sock.close()
