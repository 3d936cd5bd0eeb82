"""--daemon (for hosts without systemd): writes its pid file, detaches from the shell,
logs to a file, refuses a second start while the pid file names a live process, and stops
cleanly on SIGTERM (the pid file goes away)."""
import os
import signal
import time

from daemon import make_config, make_log

from helpers import plogd


def test_daemon_detaches_and_stops_on_sigterm(tmp_path):
    log = make_log(tmp_path / "access.log", 10_000)
    config = make_config(tmp_path, log)
    pidfile = tmp_path / "plogd.pid"
    logfile = tmp_path / "daemon.log"
    started = plogd("--multi", "--daemon", "--pidfile", str(pidfile), "--log-file", str(logfile),
                    "-c", str(config))
    assert started.returncode == 0                      # the shell gets its prompt back
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)                                 # written by the detached process
    pid = int(pidfile.read_text())
    assert os.getppid() != pid
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().split(") ")[1].split()[1] == "1"   # re-parented to init: detached
    second = plogd("--multi", "--daemon", "--pidfile", str(pidfile), "-c", str(config),
                   check=False)
    assert second.returncode == 2
    assert f"plogd already runs as pid {pid}".encode() in second.stderr
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")
    assert not pidfile.exists()
    text = logfile.read_text()
    assert "daemon started" in text and "stopping" in text


def test_daemon_log_file_survives_logrotate(tmp_path):
    """logrotate moves the file away (no copytruncate, no signal): plogd writes on in a new
    file at the configured path, not in the rotated one."""
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 1000))
    pidfile, logfile = tmp_path / "plogd.pid", tmp_path / "daemon.log"
    plogd("--multi", "--daemon", "--pidfile", str(pidfile), "--log-file", str(logfile),
          "-c", str(config))
    deadline = time.monotonic() + 10
    while "daemon started" not in (logfile.read_text() if logfile.exists() else ""):
        assert time.monotonic() < deadline, "the daemon never logged its start"
        time.sleep(0.1)
    pid = int(pidfile.read_text())
    logfile.rename(tmp_path / "daemon.log.1")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "stopping" in logfile.read_text()
    assert "stopping" not in (tmp_path / "daemon.log.1").read_text()
