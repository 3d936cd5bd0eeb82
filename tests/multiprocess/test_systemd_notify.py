"""Under systemd (Type=notify, WatchdogSec) the supervisor says READY=1 once the pipeline
is up, sends WATCHDOG=1 keep-alives, and STOPPING=1 on SIGTERM — checked on a real
notify socket, as systemd would read it."""
import os
import signal
import socket
import subprocess
import sys
import time

from daemon import make_config, make_log

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
