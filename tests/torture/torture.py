"""The torture run: a writer appends numbered lines to a log at a high rate and rotates it
every few seconds, cycling through rename+create, copytruncate, delete+recreate and a
symlink flip, while plogd is killed with SIGKILL at random moments and restarted. At the
end, the result file must hold exactly what the writer wrote.

    python tests/torture/torture.py [--lines N] [--kills K] [--mode single|multi] [--seed S]

How windows are identified: a window's value is the record (key, clock) — every record of
a window carries the window's start as its clock. A window written twice (plogd killed
after writing it but before its checkpoint) must repeat the same value; it is counted once.

Each line's status is drawn at random and its body_bytes_sent is the line's sequence
number, so besides the count per status, the sum of bytes over all windows is a checksum
of which lines were counted (a line lost and another counted twice would show).

Lines in a file deleted while plogd is down are gone for any reader: delete+recreate
rotations happen only when plogd has been up for a while and no kill comes right after.

Two outputs read the result file, each from its own cursor: `line` json over TCP and over a
unix socket, to listeners of this harness that outlive the kills (tests/torture/listeners.py).
The result file rotates every ROTATE_BYTES, and plogd removes a rotated file once both
outputs have passed it; the harness keeps a hard link to every result file so that the
result file's windows can still be read at the end. Each output must end with exactly the
result file's windows, which must be the truth; a window an output received twice (sent,
then plogd killed before it saved its cursor) must repeat the first value.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from listeners import LineListener, SpoolArchive, totals, windows

ROOT = Path(__file__).resolve().parents[2]
STATUSES = [200, 200, 200, 200, 301, 304, 404, 500, 503]
INTERVAL = 2
LATENESS = 3
# the second "symlink" flips a symlink to a new target; the first replaces a regular file
ROTATIONS = ["rename", "copytruncate", "delete", "symlink", "symlink"]
# the result file rotates every few windows, so rotated files come and go during a run
ROTATE_BYTES = 2 << 10
# the line outputs (name: batch_size), each to a listener of that kind; small batches, so
# that kills fall between a send and the saving of its cursor (a window received twice),
# yet big enough that the last tries at a stop take what the stop writes
OUTPUTS = {"tcp": 10, "unix": 4}


class Writer(threading.Thread):
    """Appends lines like a web server: to its open file, reopening the path on request."""

    def __init__(self, path: Path, total: int, rate: float, seed: int):
        super().__init__(daemon=True)
        self.path, self.total, self.rate = path, total, rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()      # rotations that must not interleave with a write
        self.counts: Counter = Counter()
        self.seq_sum = 0
        self.written = 0
        self._file = open(path, "ab", buffering=0)
        self._reopen_at: float | None = None

    def reopen_soon(self, delay: float = 0.05) -> None:
        """As a server does a moment after logrotate's signal."""
        self._reopen_at = time.monotonic() + delay

    def run(self) -> None:
        start = time.monotonic()
        while self.written < self.total:
            due = int((time.monotonic() - start) * self.rate)
            with self.lock:
                if self._reopen_at is not None and time.monotonic() >= self._reopen_at:
                    self._file.close()
                    self._file = open(self.path, "ab", buffering=0)
                    self._reopen_at = None
                while self.written < min(due, self.total):
                    self._write_line()
            time.sleep(0.005)
        self._file.close()

    def _write_line(self) -> None:
        self.written += 1
        status = self.rng.choice(STATUSES)
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        line = (f'127.0.0.1 - - [{stamp}] "GET /seq/{self.written} HTTP/1.1" {status} '
                f'{self.written} "-" "torture"\n').encode()
        if self.rng.random() < 0.05:          # a line in two writes: a partial line at EOF
            cut = self.rng.randrange(1, len(line))
            self._file.write(line[:cut])
            self._file.write(line[cut:])
        else:
            self._file.write(line)
        self.counts[status] += 1
        self.seq_sum += self.written


def rotate(kind: str, path: Path, writer: Writer, generation: int) -> None:
    directory = path.parent
    with writer.lock:
        for n in range(4, 0, -1):                     # logrotate's numbering: .1 newest
            older = directory / f"{path.name}.{n}"
            if older.exists() or older.is_symlink():
                os.replace(older, directory / f"{path.name}.{n + 1}")
        if kind == "rename":
            os.replace(path, directory / f"{path.name}.1")
            path.write_bytes(b"")
            writer.reopen_soon()
        elif kind == "copytruncate":
            shutil.copyfile(path, directory / f"{path.name}.1")
            with open(path, "r+b") as f:
                f.truncate(0)
        elif kind == "delete":
            os.unlink(path)
            path.write_bytes(b"")
            writer.reopen_soon()
        elif kind == "symlink":
            if not path.is_symlink():       # keep the regular file, as rename does
                os.replace(path, directory / f"{path.name}.1")
            target = directory / f"data-{generation}.log"
            target.write_bytes(b"")
            link = directory / "flip.tmp"
            link.symlink_to(target)
            os.replace(link, path)
            writer.reopen_soon()


class Daemon:
    def __init__(self, config: Path, mode: str, log: Path):
        self.args = [sys.executable, "-m", "plogd", f"--{mode}", "-c", str(config)]
        self.log = open(log, "ab")
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(self.args, env=env, stdout=self.log, stderr=self.log)
        self.started = time.monotonic()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def write_config(workdir: Path, log: Path, urls: dict[str, str]) -> Path:
    config = workdir / "plogd.yaml"
    outputs = "".join(f"\n  - {{type: line, name: {name}, url: '{url}', format: json, "
                      f"batch_size: {OUTPUTS[name]}}}" for name, url in urls.items())
    config.write_text(f"""
interval: {INTERVAL}
state_dir: {workdir / 'state'}
result_rotate_bytes: {ROTATE_BYTES}
outputs:{outputs}
inputs:
  - name: torture
    path: {log}
    format: nginx_combined
    start: beginning
    lateness: {LATENESS}
    metrics:
      - {{key: lines, type: count}}
      - {{key: "status[{{status}}]", type: count, by: status}}
      - {{key: seq_sum, type: sum, field: body_bytes_sent}}
""")
    return config


def truth_check(seen: dict, writer: Writer) -> dict:
    """How the windows `seen` (key, clock) -> value add up against what the writer wrote."""
    sums = totals(seen)
    status = {int(k[7:-1]): v for k, v in sums.items() if k.startswith("status[")}
    return {"lines_counted": sums.get("lines", 0),
            "status_counted": dict(sorted(status.items())),
            "seq_sum_counted": sums.get("seq_sum", 0),
            "exact": (sums.get("lines", 0) == writer.written
                      and status == dict(writer.counts)
                      and sums.get("seq_sum", 0) == writer.seq_sum)}


def wait_sent(state: Path, names, deadline: float) -> tuple[dict[str, int], list[str]]:
    """Wait (up to `deadline` s) until every output's saved cursor is at the end of the
    spool and the rotated result files are gone; the backlogs in bytes and the rotated
    files left at the end."""
    from plogd import spool
    result = str(state / "results.jsonl")
    end = time.monotonic() + deadline
    while True:
        backlogs = {n: spool.backlog(result, spool.peek_cursor(str(state), n)) for n in names}
        rotated = sorted(p.name for p in state.glob("results.jsonl.*"))
        if not (any(backlogs.values()) or rotated) or time.monotonic() > end:
            return backlogs, rotated
        time.sleep(0.05)


def run(workdir: Path, lines: int, kills: int, mode: str = "single", seed: int = 1,
        rate: float = 4000, rotate_every: float = 1.5) -> dict:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "access.log"
    log.write_bytes(b"")
    state = workdir / "state"
    listeners = {"tcp": LineListener(workdir / "received.tcp.jsonl").start(),
                 "unix": LineListener(workdir / "received.unix.jsonl",
                                      workdir / "line.sock").start()}
    archive = SpoolArchive(state, workdir / "results-archive")
    archive.start()
    config = write_config(workdir, log, {n: listeners[n].url for n in OUTPUTS})
    daemon = Daemon(config, mode, workdir / "plogd.log")
    writer = Writer(log, lines, rate, seed)
    duration = lines / rate
    # kills at random moments, but none in a quiet stretch mid-run, so that a delete+recreate
    # rotation happens at least once with plogd up (see the module's docstring)
    quiet = (duration * 0.3, duration * 0.3 + 6.0)
    candidates = [t for t in (rng.uniform(0.5, duration) for _ in range(kills * 20))
                  if not quiet[0] <= t <= quiet[1]]
    kill_times = sorted(rng.sample(candidates, kills))
    daemon.start()
    writer.start()
    t0 = time.monotonic()
    next_rotation, generation, done_kills = t0 + rotate_every, 0, 0
    rotations: Counter = Counter()
    owed_delete = False
    while writer.is_alive() or done_kills < kills:
        now = time.monotonic()
        if done_kills < kills and now - t0 >= kill_times[done_kills]:
            daemon.kill()
            done_kills += 1
            time.sleep(rng.uniform(0, 0.5))
            daemon.start()
        if writer.is_alive() and now >= next_rotation:
            next_kill = kill_times[done_kills] + t0 if done_kills < kills else float("inf")
            safe = now - daemon.started > 2.0 and next_kill - now > 2.0
            kind = ROTATIONS[generation % len(ROTATIONS)]
            if owed_delete and safe:
                kind, owed_delete = "delete", False
            elif kind == "delete" and not safe:
                kind, owed_delete = "rename", True
            rotate(kind, log, writer, generation)
            rotations[kind] += 1
            generation += 1
            next_rotation = now + rotate_every
        time.sleep(0.01)
    writer.join()
    # every window closes LATENESS after its end once the reader is idle: wait, let the
    # outputs take everything, then stop
    time.sleep(INTERVAL + LATENESS + 2.5)
    backlog_before_stop, rotated_before_stop = wait_sent(state, OUTPUTS, deadline=60)
    exit_code = daemon.stop()
    backlog_after_stop, rotated_after_stop = wait_sent(state, OUTPUTS, deadline=0)
    archive.stop()
    for listener in listeners.values():
        listener.stop()
    truth, repeats, conflicts = windows(archive.lines())
    report = {
        "lines_written": writer.written, "status_written": dict(sorted(writer.counts.items())),
        "seq_sum_written": writer.seq_sum, **truth_check(truth, writer),
        "kills": done_kills, "rotations": dict(rotations), "windows_written_twice": repeats,
        "windows_with_two_values": conflicts, "exit_code": exit_code,
        "result_files": len(list(archive.archive.iterdir())),
        # rotated files that every output had passed, yet not removed: before the stop,
        # once the outputs took everything; after it, once they took what the stop wrote
        "rotated_left_before_stop": rotated_before_stop,
        "rotated_left_after_stop": rotated_after_stop,
        "outputs": {},
    }
    report["exact"] = (report["exact"] and conflicts == 0 and exit_code == 0
                       and not rotated_before_stop and not rotated_after_stop)
    for name in OUTPUTS:
        listener = listeners[name]
        seen, repeats, conflicts = windows(listener.out.read_bytes().splitlines())
        both = seen.keys() & truth.keys()
        out = {"lines_received": listener.lines, "lines_cut": listener.cut,
               **truth_check(seen, writer),
               "windows_missing": len(truth.keys() - seen.keys()),
               "windows_extra": len(seen.keys() - truth.keys()),
               "windows_with_another_value": sum(seen[w] != truth[w] for w in both),
               "repeats": repeats, "repeats_with_another_value": conflicts,
               "backlog_before_stop": backlog_before_stop[name],
               "backlog_after_stop": backlog_after_stop[name]}
        out["exact"] = (out["exact"] and seen == truth and conflicts == 0
                        and backlog_before_stop[name] == 0 and backlog_after_stop[name] == 0)
        report["outputs"][name] = out
        report["exact"] = report["exact"] and out["exact"]
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=40_000)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--rate", type=float, default=4000, help="lines per second")
    p.add_argument("--mode", choices=["single", "multi"], default="single")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dir", help="work directory (default: a new temp dir)")
    args = p.parse_args()
    import tempfile
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="plogd-torture-"))
    report = run(workdir, args.lines, args.kills, args.mode, args.seed, args.rate)
    print(json.dumps(report, indent=2))
    print(f"work directory: {workdir}")
    return 0 if report["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
