"""`plogd top` for real: in an 80x24 tmux terminal, against the state directory a real
`plogd --single` run wrote; it draws the dashboard, refreshes, and quits on q."""
import subprocess
import sys
import time

from daemon import make_config, make_log

from helpers import ROOT, plogd


def tmux(socket, *args):
    return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True)


def screen(socket, *options) -> list[str]:
    return tmux(socket, "capture-pane", "-p", *options, "-t", "top").stdout.splitlines()


def wait(condition, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_top_in_80x24_tmux_against_a_real_state_dir(tmp_path):
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 20_000),
                         extra="zabbix: {server: 127.0.0.1, port: 9, host: t}",
                         metrics='      - {key: "rt[p{q}]", type: percentile, '
                                 'field: request_time, q: [50, 95, 99]}')
    plogd("--single", "--once", "-c", str(config))
    socket = tmp_path / "tmux.sock"
    command = (f"PYTHONPATH={ROOT} LANG=C.UTF-8 {sys.executable} -m plogd top "
               f"-c {config} --refresh 0.5")
    started = tmux(socket, "new-session", "-d", "-s", "top", "-x", "80", "-y", "24", command)
    assert started.returncode == 0, started.stderr
    try:
        wait(lambda: any("q quits" in line for line in screen(socket)), "top never drew")
        lines = screen(socket)
        text = "\n".join(lines)
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        assert "web  " in text and "lines 20,000" in text and "lines/s" in text
        assert "request_time  p50 " in text and "p99 of the last" in text
        assert "2xx " in text and "zabbix 127.0.0.1:9" in text
        first_clock = lines[0][-8:]
        wait(lambda: screen(socket)[0][-8:] != first_clock, "top never refreshed")
        tmux(socket, "send-keys", "-t", "top", "q")
        wait(lambda: tmux(socket, "has-session", "-t", "top").returncode != 0,
             "q did not quit")
    finally:
        tmux(socket, "kill-server")


def test_top_once_prints_plain_text_for_scripts(tmp_path):
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 5_000))
    plogd("--single", "--once", "-c", str(config))
    out = plogd("top", "--once", "-c", str(config)).stdout.decode()
    assert "lines 5,000" in out and "0 lines/s" in out and "\x1b" not in out
    assert "no Zabbix: results written to" in out


def test_top_without_a_terminal_says_to_use_once(tmp_path):
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 10))
    result = plogd("top", "-c", str(config), check=False)
    assert result.returncode == 2 and b"use --once" in result.stderr


def test_top_on_a_terminal_curses_does_not_know_says_so(tmp_path):
    config = make_config(tmp_path, make_log(tmp_path / "access.log", 10))
    socket = tmp_path / "tmux.sock"
    command = (f"TERM=no-such-terminal PYTHONPATH={ROOT} {sys.executable} -m plogd top "
               f"-c {config}; echo exit=$?; sleep 30")
    tmux(socket, "new-session", "-d", "-s", "top", "-x", "80", "-y", "24", command)
    try:
        wait(lambda: any("exit=" in line for line in screen(socket)), "top never ended")
        text = "\n".join(screen(socket, "-J"))        # -J: wrapped lines joined
        assert "plogd: top: cannot draw on this terminal" in text and "use --once" in text
        assert "exit=2" in text and "Traceback" not in text
    finally:
        tmux(socket, "kill-server")
