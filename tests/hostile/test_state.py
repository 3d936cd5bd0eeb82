"""Damaged state and a hostile disk (issue 11, points 10, 11, 14, 15): plogd starts on a
damaged checkpoint without counting twice, waits on a full disk without a traceback or a
restart loop, exits 2 on a read-only state dir, reads samples within the line bound, and
creates its files private. The disks are real: small tmpfs mounts (root, as tests/run)."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import ROOT, plogd

from plogd.traffic import write_file

TIMEOUT = 60


def make_config(tmp_path: Path, state: Path, log: Path, extra: str = "",
                interval: int = 60) -> Path:
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
interval: {interval}
state_dir: {state}
{extra}
inputs:
  - name: web
    path: {log}
    format: nginx_timed
    start: beginning
    lateness: 2
    metrics:
      - {{key: requests, type: count}}
""")
    return config


def make_log(path: Path, lines: int, ago: float = 3600) -> Path:
    write_file(path, lines, seed=7, start=time.time() - ago, rate=lines / 600)
    return path


def requests(results: Path) -> dict[int, int]:
    """{window start: requests}, failing on a window written twice or a line not a record."""
    seen: dict[int, int] = {}
    for line in results.read_bytes().splitlines():
        record = json.loads(line)
        if record["key"] == "requests":
            assert record["clock"] not in seen, f"window {record['clock']} written twice"
            seen[record["clock"]] = record["value"]
    return seen


class Daemon:
    """plogd as a process, its log in a file, waited on by what it logs."""

    def __init__(self, config: Path, *args: str):
        self.log = config.parent / "plogd.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plogd", *args, "-c", str(config)],
                env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=out, stderr=out)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, wanted: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.text():
            assert self.proc.poll() is None or wanted in self.text(), \
                f"plogd exited ({self.proc.returncode}):\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"never logged {wanted!r}:\n{self.text()[-3000:]}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@contextmanager
def tmpfs(path: Path, size: str = "1m"):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; removing it makes room again."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(bytes(1 << 16))
        except OSError:
            pass
        try:
            while True:
                f.write(b"x")
        except OSError:
            pass
    return filler


# -- 10: a damaged checkpoint ----------------------------------------------------------

@pytest.mark.parametrize("damage", [b'{"web": {"positions": {"/x', b"", b"\x00\xff\xfe junk",
                                    b'[1, 2]', b'{"web": 1}', b'{"web": {"positions": []}}'],
                         ids=["truncated", "empty", "garbage", "a list", "wrong shape",
                              "wrong positions"])
def test_a_damaged_checkpoint_is_kept_aside_and_nothing_is_counted_twice(tmp_path, damage):
    """Before: a traceback at start-up (JSONDecodeError, AttributeError, TypeError)."""
    log = make_log(tmp_path / "access.log", 3000)
    config = make_config(tmp_path, tmp_path / "state", log)
    plogd("--single", "--once", "-c", str(config), timeout=TIMEOUT)
    results = tmp_path / "state" / "results.jsonl"
    first = requests(results)
    assert 0 < sum(first.values()) <= 3000
    (tmp_path / "state" / "checkpoint.json").write_bytes(damage)
    with open(log, "ab") as f:      # lines the damaged checkpoint would have had to skip
        f.write(log.read_bytes()[-2000:].split(b"\n", 1)[1])
    run = plogd("--single", "--once", "-c", str(config), check=False, timeout=TIMEOUT)
    err = run.stderr.decode(errors="replace")
    assert run.returncode == 0 and "Traceback" not in err, err
    assert "checkpoint.json is damaged" in err and "every input starts at the end" in err
    aside = list((tmp_path / "state").glob("checkpoint.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damage
    assert requests(results) == first           # nothing read again, nothing twice
    assert json.loads((tmp_path / "state" / "checkpoint.json").read_text())["web"]


def test_damaged_checkpoint_beginning_rereads_and_says_how_much(tmp_path):
    log = make_log(tmp_path / "access.log", 3000)
    config = make_config(tmp_path, tmp_path / "state", log, "damaged_checkpoint: beginning")
    plogd("--single", "--once", "-c", str(config), timeout=TIMEOUT)
    (tmp_path / "state" / "checkpoint.json").write_bytes(b"{")
    run = plogd("--single", "--once", "-c", str(config), check=False, timeout=TIMEOUT)
    err = run.stderr.decode(errors="replace")
    assert run.returncode == 0, err
    assert f"re-reads its files from the start, at most {log.stat().st_size} bytes" in err


# -- 11: a full disk --------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["--single", "--multi"])
def test_a_full_disk_is_logged_once_and_waited_on(tmp_path, mode):
    """Before: --single died with three chained tracebacks, --multi restarted in a loop."""
    log = tmp_path / "access.log"
    log.touch()
    with tmpfs(tmp_path / "state") as state:
        config = make_config(tmp_path, state, log, interval=5)
        daemon = Daemon(config, mode, *(["--workers", "1"] if mode == "--multi" else []))
        try:
            daemon.wait_log(f"plogd {mode}:")
            filler = fill(state)
            # lines of now (the idle input's windows are closed up to now): a write is due
            write_file(tmp_path / "more.log", 2000, seed=7, start=time.time(), rate=1000)
            with open(log, "ab") as f:
                f.write((tmp_path / "more.log").read_bytes())
            daemon.wait_log("No space left on device. Reading waits")
            time.sleep(3)                   # a few retries, each of which must stay silent
            assert daemon.proc.poll() is None
            filler.unlink()
            daemon.wait_log("takes writes again: reading goes on")
            deadline = time.monotonic() + TIMEOUT
            while sum(requests(state / "results.jsonl").values()) < 2000:
                assert time.monotonic() < deadline, daemon.text()[-3000:]
                time.sleep(0.1)
            assert daemon.stop() == 0
        finally:
            daemon.stop()
        text = daemon.text()
        assert text.count("No space left on device") == 1, text[-3000:]
        assert "Traceback" not in text and "restarting the pipeline" not in text, text[-3000:]
        requests(state / "results.jsonl")          # every line a whole record


# -- 14: a state dir that cannot be written; samples within the line bound ---------------

def test_a_read_only_state_dir_exits_2_instead_of_restarting(tmp_path):
    log = make_log(tmp_path / "access.log", 2000)
    with tmpfs(tmp_path / "state") as state:
        config = make_config(tmp_path, state, log)
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        run = plogd("--multi", "--workers", "1", "-c", str(config), check=False,
                    timeout=TIMEOUT)
        err = run.stderr.decode(errors="replace")
        assert run.returncode == 2, err
        assert f"state_dir {state}: cannot write there (Read-only file system)" in err
        assert "Traceback" not in err

        # read-only while running (a file open for writing makes a remount busy: the
        # writer is killed first, with the supervisor held): the restart finds out, exit 2
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)
        daemon = Daemon(config, "--multi", "--workers", "1")
        try:
            daemon.wait_log("plogd --multi:")
            writer = stage_pid(daemon.proc.pid, "plogd: writer")
            os.kill(daemon.proc.pid, signal.SIGSTOP)
            os.kill(writer, signal.SIGKILL)
            while Path(f"/proc/{writer}/stat").read_text().split(")")[1].split()[0] != "Z":
                time.sleep(0.05)                 # dead, not reaped: the supervisor is held
            subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
            os.kill(daemon.proc.pid, signal.SIGCONT)
            assert daemon.proc.wait(TIMEOUT) == 2
        finally:
            daemon.stop()
        text = daemon.text()
        assert "cannot write there (Read-only file system)" in text, text[-3000:]
        assert text.count("restarting the pipeline") == 1, text[-3000:]


@contextmanager
def ext4(path: Path, size: str = "8M"):
    """A small ext4 file system (a loop device) mounted at `path` with errors=remount-ro,
    as a disk that fails turns read-only under a running plogd; yields a function that
    makes it fail so (ext4's trigger_fs_error), files open for writing or not."""
    image = path.parent / f"{path.name}.img"
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    path.mkdir()
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(path)], check=True)
    device = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(path)], check=True,
                            capture_output=True, text=True).stdout.strip()

    def fail() -> None:
        Path(f"/sys/fs/ext4/{os.path.basename(device)}/trigger_fs_error").write_text("test\n")
    try:
        yield fail
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_state_dir_turning_read_only_ends_single_with_one_line_and_2(tmp_path):
    """Before: the refused write was raised on, and the last commit on the way out failed
    again and hid it: plogd ended with "plogd: .../checkpoint.json.tmp: Read-only file
    system", naming a temporary file, with nothing of what to do or what was lost (and
    without closing the inputs)."""
    log = tmp_path / "access.log"
    log.touch()
    with ext4(tmp_path / "state") as fail:
        state = tmp_path / "state"
        config = make_config(tmp_path, state, log, interval=5)
        daemon = Daemon(config, "--single")
        try:
            deadline = time.monotonic() + TIMEOUT
            while not (state / "checkpoint.json").exists():     # the first commit is done
                assert time.monotonic() < deadline and daemon.proc.poll() is None, daemon.text()
                time.sleep(0.05)
            fail()      # the next commit appends plogd's own values, at most 5 s later
            assert daemon.proc.wait(TIMEOUT) == 2
        finally:
            daemon.stop()
    text = daemon.text()
    assert "Traceback" not in text, text[-3000:]
    assert f"plogd: state_dir {state}: cannot write there (Read-only file system), so plogd " \
           "stops: the windows since the last checkpoint are not written" in text, text[-3000:]
    assert text.count("Read-only file system") == 1, text[-3000:]


def stage_pid(supervisor: int, title: str) -> int:
    """The pid of the supervisor's child process titled `title`."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        for pid in children:
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title.encode()):
                    return int(pid)
            except OSError:
                continue
        time.sleep(0.05)
    raise AssertionError(f"no child titled {title!r}")


def _peak_rss_kb(*args: str) -> tuple[int, subprocess.CompletedProcess]:
    """Run plogd ARGS in a fresh interpreter that reports its children's peak RSS."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    run = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "plogd", *args],
                         capture_output=True, timeout=TIMEOUT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    rss, code = run.stdout.split()[-2:]
    return int(rss), subprocess.CompletedProcess(run.args, int(code), run.stdout, run.stderr)


def test_detect_and_check_read_lines_within_the_line_bound(tmp_path):
    """Before: a 50 MB line took 125 MB, /dev/zero ended in a MemoryError."""
    huge = tmp_path / "huge.log"
    huge.write_bytes(b"x" * 50_000_000 + b"\n")
    rss, run = _peak_rss_kb("detect", str(huge))   # 16 MiB read at most: nothing to judge
    assert run.returncode == 1 and b"no line to judge" in run.stdout, run.stdout
    assert rss < 100_000, f"{rss} KB"
    long = tmp_path / "access.log"                  # one line over the bound, skipped
    make_log(tmp_path / "more.log", 50)
    long.write_bytes(b"x" * 1_000_000 + b"\n" + (tmp_path / "more.log").read_bytes())
    rss, run = _peak_rss_kb("detect", str(long))
    assert run.returncode == 0 and b"50 lines read" in run.stdout, run.stdout
    rss, run = _peak_rss_kb("detect", "/dev/zero")
    assert run.returncode == 1 and b"no line to judge" in run.stdout
    assert rss < 100_000, f"{rss} KB"
    config = make_config(tmp_path, tmp_path / "state", long)
    rss, run = _peak_rss_kb("check", "-c", str(config))
    assert run.returncode == 0 and b"of the first 50 lines" in run.stdout, run.stdout
    assert rss < 100_000, f"{rss} KB"


# -- 15: private files -------------------------------------------------------------------

def test_daemon_files_are_private_despite_an_open_umask(tmp_path):
    """--daemon forced umask 022: its log (and anything else it created) was world-readable."""
    log = make_log(tmp_path / "access.log", 2000)
    config = make_config(tmp_path, tmp_path / "state", log)
    pidfile = tmp_path / "plogd.pid"
    old = os.umask(0o022)
    try:
        plogd("--multi", "--workers", "1", "--once", "--daemon", "--pidfile", str(pidfile),
              "-c", str(config), timeout=TIMEOUT)
    finally:
        os.umask(old)
    deadline = time.monotonic() + TIMEOUT
    state = tmp_path / "state"
    while pidfile.exists() or not (state / "checkpoint.json").exists():   # it read, and left
        assert time.monotonic() < deadline
        time.sleep(0.1)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [state, *state.iterdir()]}
    assert modes == {"state": 0o750, "plogd.log": 0o640, "results.jsonl": 0o640,
                     "checkpoint.json": 0o640}, modes
