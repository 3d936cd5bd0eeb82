"""Idle cost and latency of following files.

    python tests/bench/bench_idle.py [--files 50] [--seconds 30] [--mode single|multi]
                                     [--output]

Starts plogd following N files that do not change and measures the CPU time of all its
processes over the given time (as a share of one core, from /proc). Then appends one line
to one of the files, 20 times, and measures how long until the line has been read, parsed
and merged: until the checkpoint's position for that file has moved past it (an upper bound:
checkpoints are taken at most every 0.5 s, and at once when a window closes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants that are alive."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(") ", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--mode", choices=["single", "multi"], default="single")
    p.add_argument("--output", action="store_true",
                   help="with an output (json lines over UDP to the discard port): its process "
                        "and polling count too")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="plogd-idle-"))
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    line = f'1.2.3.4 - - [{stamp}] "GET / HTTP/1.1" 200 1 "-" "x"\n'.encode()
    inputs = ""
    for i in range(args.files):
        (work / f"site{i}.log").write_bytes(line * 10)
        inputs += (f"  - {{name: site{i}, path: {work / f'site{i}.log'}, format: nginx_combined, "
                   f"start: end, metrics: [{{key: n{i}, type: count}}]}}\n")
    config = work / "plogd.yaml"
    outputs = ("outputs: [{type: line, url: 'udp://127.0.0.1:9', format: json}]\n"
               if args.output else "")
    config.write_text(f"interval: 60\nstate_dir: {work / 'state'}\n{outputs}inputs:\n{inputs}")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "plogd", f"--{args.mode}", "-c", str(config),
                             "--log-level", "WARNING"], env=env)
    time.sleep(3)                                   # start-up is not idle cost
    before, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(args.seconds)
    share = (cpu_seconds(proc.pid) - before) / (time.monotonic() - t0)
    print(f"{args.mode}: {args.files} idle files{', an output' if args.output else ''}, CPU "
          f"{share:.2%} of one core over {args.seconds:g} s")
    checkpoint, target = work / "state" / "checkpoint.json", work / "site0.log"
    delays = []
    for _ in range(20):
        with open(target, "ab") as f:
            f.write(line)
        size, t = target.stat().st_size, time.monotonic()
        while True:
            try:
                position = json.loads(checkpoint.read_text())["site0"]["positions"][str(target)]
                if position["offset"] >= size:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        delays.append(time.monotonic() - t)
        time.sleep(0.3)
    proc.terminate()
    proc.wait()
    delays.sort()
    print(f"new line read, parsed and checkpointed within: median {delays[10]:.2f} s, "
          f"max {delays[-1]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
