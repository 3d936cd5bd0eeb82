"""Under systemd (Type=notify, WatchdogSec) the supervisor says READY=1 once the pipeline
is up, sends WATCHDOG=1 keep-alives (also while a restart backs off, not once a stage is
stalled), and STOPPING=1 on SIGTERM — checked on a real notify socket, as systemd would
read it; a receiver that does not read never blocks it."""
import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from daemon import log_text, make_config, make_log, stage_pid, wait_log

from helpers import ROOT

TIMEOUT = 30
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)    # Linux's; Python 3.11 lacks the name


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
        except TimeoutError:
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


def _listen(tmp_path):
    """A notify socket read in the background: [(time, message)] as they come."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    received = []

    def receive():
        while True:
            try:
                received.append((time.monotonic(), sock.recv(100).decode()))
            except OSError:        # closed at the end of the test
                return
    threading.Thread(target=receive, daemon=True).start()
    return sock, received


def _start(tmp_path, config, watchdog_usec: int):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=str(tmp_path / "notify.sock"),
               WATCHDOG_USEC=str(watchdog_usec))
    with open(tmp_path / "plogd.log", "ab") as log:       # where wait_log looks
        return subprocess.Popen([sys.executable, "-m", "plogd", "--multi", "-c", str(config)],
                                env=env, stderr=log)


def test_keep_alives_go_on_while_a_restart_backs_off(tmp_path):
    """A stage that keeps dying makes the supervisor wait before restarting (2 s, 4 s …, up
    to 60 s: longer than WatchdogSec); systemd must not take the waiting for a hang."""
    sock, received = _listen(tmp_path)
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 1000))
    proc = _start(tmp_path, config, 1_000_000)
    try:
        for restart in (1, 2):         # the first restart is at once, the second waits 2 s
            os.kill(stage_pid(proc, "plogd: reader"), signal.SIGKILL)
            wait_log(config, lambda text, n=restart: text.count("restarting the pipeline") >= n)
        backoff = time.monotonic()
        time.sleep(2.2)
        assert "in 2 s" in log_text(config)           # it did back off
        pings = [t for t, m in received if m == "WATCHDOG=1" and t >= backoff]
        gaps = [b - a for a, b in zip([backoff] + pings, pings)]
        assert len(pings) >= 3 and max(gaps) < 1.0, pings
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        sock.close()


def test_a_notify_socket_nobody_reads_does_not_hold_plogd(tmp_path):
    """A receiver that does not read (its queue full): plogd must neither block nor fail."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            for _ in range(10_000):
                filler.sendto(b"queued", str(tmp_path / "notify.sock"))
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 1000))
    proc = _start(tmp_path, config, 1_000_000)
    try:
        time.sleep(2)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        sock.close()


@pytest.mark.parametrize("mode", ["--single", "--multi"])
def test_ready_and_status_in_both_modes(tmp_path, mode):
    """Type=notify works with --single too, and both modes tell `systemctl status` what
    they do: inputs, lines/s, lag, the output's state."""
    sock, received = _listen(tmp_path)
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 200_000),
                         extra="zabbix: {server: 127.0.0.1, port: 9, host: t}")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=str(tmp_path / "notify.sock"))
    proc = subprocess.Popen([sys.executable, "-m", "plogd", mode, "-c", str(config)], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not any("lines/s" in m for _, m in received) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        sock.close()
    messages = [m for _, m in received]
    assert messages[0] == "READY=1"
    [status] = [m for m in messages if "lines/s" in m][:1]
    assert re.fullmatch(r"STATUS=1 input, \d+ lines/s, lag \d+ (s|min|h), "
                        r"Zabbix (up|DOWN|not reached yet), backlog [\d.]+ k?B", status), status
    assert "STOPPING=1" in messages


def test_keep_alives_stop_when_a_stage_stalls(tmp_path):
    """The watchdog vouches for the pipeline, not only for the supervisor: the loop turn
    that finds a stage stalled sends no WATCHDOG=1 before it tells systemd of the restart
    (STATUS=) and restarts; the keep-alives resume once the new pipeline runs. The loop
    turns once a second and each turn of a moving pipeline sends one keep-alive (every
    0.5 s at most here): the last one before the restart is a whole turn older than it.
    Times are the kernel's, of each datagram's arrival (a test thread may lag)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.settimeout(TIMEOUT)
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 1000),
                         extra="stall_timeout: 3")
    proc = _start(tmp_path, config, 1_000_000)
    received = []       # (arrival, message) up to the first keep-alive after the restart:
    try:
        wait_log(config, lambda text: "plogd --multi:" in text)
        os.kill(stage_pid(proc, "plogd: writer"), signal.SIGSTOP)     # hangs, alive
        stopped = time.time()
        while not (received and received[-1][1] == "WATCHDOG=1"    # (they resume)
                   and any(m.startswith("STATUS=restarting") for _, m in received)):
            data, ancillary, _, _ = sock.recvmsg(100, 64)
            [(_, _, stamp)] = ancillary
            seconds, nanoseconds = struct.unpack("qq", stamp[:16])
            received.append((seconds + nanoseconds / 1e9, data.decode()))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        sock.close()
    assert "stage writer (no progress for" in log_text(config)
    [restart] = [t for t, m in received if m.startswith("STATUS=restarting the pipeline")]
    before = [t for t, m in received if m == "WATCHDOG=1" and stopped < t < restart]
    timeline = [(round(t - restart, 3), m) for t, m in received]
    assert before, timeline          # fed while the stall was not yet past its bound
    assert restart - before[-1] > 0.5, timeline
