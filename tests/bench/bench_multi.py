"""Benchmark `plogd --multi --workers 2` against `plogd --single` on the same 1,000,000-line
nginx_timed file, in the same run: both follow the file from its beginning with `--once`
(stop at its end), with conf/nginx.yaml's metric set. Reports, for each, the whole command's
time and the processing time (from the moment the reader starts — its "following" log line
— to the exit: the daemon's throughput, without the interpreter's start-up, which a daemon
pays once), the speed-ups, and the peak memory of all plogd processes together (RSS and PSS
summed over the process tree, sampled every 20 ms in a run of its own: the sampling takes CPU
the timed runs need). Also checks that every run wrote the same windows (plogd's own plogd.*
values differ from run to run), and times bench_replay's mawk aggregate on the same file in
the same run, for the ratios to mawk.

    python tests/bench/bench_multi.py [--lines 1000000] [--workers 2] [--reps 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from plogd.traffic import write_file  # noqa: E402
from bench_replay import MAWK_PROG, byte_compile  # noqa: E402


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process and all its descendants, in bytes. RSS counts a page shared
    by several processes (forked code, the batch slots) in each; PSS shares it out."""
    rss = pss = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                sizes = {l.split()[0]: int(l.split()[1]) * 1024 for l in f if l[0].isupper()}
            rss, pss = rss + sizes["Rss:"], pss + sizes["Pss:"]
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, KeyError, ValueError):
            continue
    return rss, pss


def run(mode: list[str], log: Path, workdir: Path,
        sample: bool) -> tuple[float, float, tuple, str]:
    """(command s, processing s, peak (RSS, PSS) if `sample`, digest of the windows)."""
    state = workdir / "state"
    config = workdir / "plogd.yaml"
    nginx = (ROOT / "conf" / "nginx.yaml").read_text()
    nginx = nginx.replace("/var/log/nginx/access.log", str(log)).replace("start: end", "start: beginning")
    config.write_text(nginx.replace("state_dir: /var/lib/plogd", f"state_dir: {state}"))
    subprocess.run(["rm", "-rf", str(state)], check=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "plogd", *mode, "--once", "-c", str(config)],
                            env=env, stderr=subprocess.PIPE)
    reading = []
    threading.Thread(target=_watch_log, args=(proc.stderr, reading), daemon=True).start()
    peak = (0, 0)
    while sample and proc.poll() is None:
        peak = tuple(map(max, peak, tree_memory(proc.pid)))
        time.sleep(0.02)
    proc.wait()
    end = time.perf_counter()
    if proc.returncode != 0 or not reading:
        sys.exit(f"plogd {' '.join(mode)} exited {proc.returncode}")
    # the windows; plogd's own plogd.* values (heartbeat, lag...) differ from run to run
    windows = [line for line in (state / "results.jsonl").read_bytes().splitlines()
               if b'"key": "plogd.' not in line]
    digest = hashlib.sha256(b"\n".join(windows)).hexdigest()
    return end - start, end - reading[0], peak, digest


def _watch_log(stream, reading: list) -> None:
    """Note when the reader starts: its first "following" line."""
    for line in stream:
        if not reading and b"following" in line:
            reading.append(time.perf_counter())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keep", help="directory for the generated log (reused if present)")
    p.add_argument("--reps", type=int, default=3, help="timed runs of each (the best counts)")
    args = p.parse_args()
    byte_compile()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="plogd-bench-multi-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"access-{args.lines}.log"
    if not log.exists():
        write_file(log, args.lines, seed=42, start=time.time() - args.lines / 1000 - 3600)
    modes = {"single": ["--single"],
             f"multi x{args.workers}": ["--multi", "--workers", str(args.workers)]}
    # timed runs, the two modes in turn, unobserved: sampling /proc costs CPU the 2 cores need
    best = {name: (float("inf"), float("inf")) for name in modes}
    digests = {name: set() for name in modes}
    mawk = float("inf")       # bench_replay's mawk aggregate on the same file, in the same run
    for _ in range(args.reps):
        start = time.perf_counter()
        subprocess.run(["mawk", MAWK_PROG, str(log)], check=True, stdout=subprocess.DEVNULL)
        mawk = min(mawk, time.perf_counter() - start)
        for name, mode in modes.items():
            whole, processing, _, digest = run(mode, log, workdir, sample=False)
            best[name] = (min(best[name][0], whole), min(best[name][1], processing))
            digests[name].add(digest)
    for name, mode in modes.items():
        whole, processing = best[name]
        _, _, peak, digest = run(mode, log, workdir, sample=True)   # one more, for memory
        digests[name].add(digest)
        print(f"{name:<10} {args.lines:>9} lines  command {whole:6.2f} s  processing "
              f"{processing:6.2f} s = {args.lines / processing:>9,.0f} lines/s  "
              f"peak memory (all processes) RSS {peak[0] / 2**20:6.1f} MiB, "
              f"PSS {peak[1] / 2**20:6.1f} MiB", flush=True)
    (single_w, single_p), (multi_w, multi_p) = best.values()
    print(f"speed-up multi/single (best of {args.reps}): processing {single_p / multi_p:.2f}x, "
          f"whole command {single_w / multi_w:.2f}x")
    print(f"mawk (bench_replay's aggregate) {mawk:.2f} s; whole command / mawk: single "
          f"{single_w / mawk:.2f}x, multi x{args.workers} {multi_w / mawk:.2f}x")
    same = len(set.union(*digests.values())) == 1
    print("windows written:", "IDENTICAL in every run" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
