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

ROOT = Path(__file__).resolve().parents[2]
STATUSES = [200, 200, 200, 200, 301, 304, 404, 500, 503]
INTERVAL = 2
LATENESS = 3
# the second "symlink" flips a symlink to a new target; the first replaces a regular file
ROTATIONS = ["rename", "copytruncate", "delete", "symlink", "symlink"]


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


def write_config(workdir: Path, log: Path) -> Path:
    config = workdir / "plogd.yaml"
    config.write_text(f"""
interval: {INTERVAL}
state_dir: {workdir / 'state'}
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


def result_totals(result_file: Path) -> tuple[dict, int, int]:
    """(sum per key over distinct windows, windows written twice, conflicting windows)."""
    seen: dict[tuple[str, int], object] = {}
    repeats = conflicts = 0
    for line in result_file.read_text().splitlines():
        r = json.loads(line)
        if r["key"].startswith("plogd."):      # self-monitoring, not the log's lines
            continue
        window = (r["key"], r["clock"])
        if window in seen:
            repeats += 1
            conflicts += seen[window] != r["value"]
            continue
        seen[window] = r["value"]
    totals: Counter = Counter()
    for (key, _), value in seen.items():
        totals[key] += value
    return dict(totals), repeats, conflicts


def run(workdir: Path, lines: int, kills: int, mode: str = "single", seed: int = 1,
        rate: float = 4000, rotate_every: float = 1.5) -> dict:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "access.log"
    log.write_bytes(b"")
    daemon = Daemon(write_config(workdir, log), mode, workdir / "plogd.log")
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
    # every window closes LATENESS after its end once the reader is idle: wait, then stop
    time.sleep(INTERVAL + LATENESS + 2.5)
    exit_code = daemon.stop()
    totals, repeats, conflicts = result_totals(workdir / "state" / "results.jsonl")
    got_status = {int(k[7:-1]): v for k, v in totals.items() if k.startswith("status[")}
    report = {
        "lines_written": writer.written, "lines_counted": totals.get("lines", 0),
        "status_written": dict(sorted(writer.counts.items())),
        "status_counted": dict(sorted(got_status.items())),
        "seq_sum_written": writer.seq_sum, "seq_sum_counted": totals.get("seq_sum", 0),
        "kills": done_kills, "rotations": dict(rotations), "windows_written_twice": repeats,
        "windows_with_two_values": conflicts, "exit_code": exit_code,
    }
    report["exact"] = (report["lines_written"] == report["lines_counted"]
                       and report["status_written"] == report["status_counted"]
                       and report["seq_sum_written"] == report["seq_sum_counted"]
                       and conflicts == 0 and exit_code == 0)
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
