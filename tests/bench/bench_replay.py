"""Benchmark `plogd replay` against a mawk one-liner on a generated nginx_timed log.

    python tests/bench/bench_replay.py [--lines 1000000] [--keep DIR] [--plogd CMD] [--json]

plogd runs twice: with the simple aggregate mawk computes (count, count by status, bytes,
request_time sum and max: SIMPLE below) and with the default nginx set (conf/nginx.yaml's:
adds status classes, errors, request_time avg/p50/p95/p99, upstream time avg).
--json: the same requests also as nginx `escape=json` lines (format nginx_json, SIMPLE's
metrics), replayed and checked against mawk's totals of the plain lines; and the JSON
decoders (json, orjson, msgspec) timed on those lines.

Not a pytest test.  Exit status: 0 totals match, 1 mismatch, 2 the mawk
reference failed its self-check, 3 `plogd replay` is missing or failed.
"""
import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from plogd.traffic import generate, write_file  # noqa: E402

SEED = 42
# Split on '"' (nginx escapes quotes inside fields as \x22): $3 is
# ' status bytes ', $NF is ' request_time upstream_response_time'.
MAWK_PROG = r'''BEGIN { FS = "\"" }
{ split($3, a, " "); split($NF, b, " "); rt = b[1] + 0
  n++; st[a[1]]++; bytes += a[2]; rtsum += rt; if (rt > rtmax) rtmax = rt }
END { printf "requests %.0f\nbytes %.0f\nrt_sum %.3f\nrt_max %.3f\n", n, bytes, rtsum, rtmax
      for (s in st) printf "status %s %.0f\n", s, st[s] }'''
SIMPLE = """interval: 60
inputs:
  - name: nginx
    path: %s
    format: nginx_timed
    metrics:
      - {key: nginx.requests, type: count}
      - {key: "nginx.status[{status}]", type: count, by: status}
      - {key: nginx.bytes, type: sum, field: body_bytes_sent}
      - {key: nginx.request_time.sum, type: sum, field: request_time}
      - {key: nginx.request_time.max, type: max, field: request_time}
"""
JSON_KEYS = ("time_local", "remote_addr", "remote_user", "request", "status", "body_bytes_sent",
             "http_referer", "http_user_agent", "request_time", "upstream_response_time")
PLOGD_DEFAULT = [sys.executable, "-c",
                 "import sys; from plogd.cli import main; sys.argv[0] = 'plogd'; sys.exit(main())"]
ENV = dict(os.environ, LC_ALL="C", PYTHONPATH=os.pathsep.join(
    [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))


def byte_compile():
    """plogd's modules byte-compiled, as an installed plogd is (pip compiles them): else,
    where PYTHONDONTWRITEBYTECODE is set, every run would compile them from source again
    (about 0.1 s of each run's start-up)."""
    import compileall
    compileall.compile_dir(str(ROOT / "plogd"), quiet=1)


def run(cmd, stdout=subprocess.DEVNULL):
    """Run cmd, return ((wall seconds, CPU seconds), CompletedProcess). CPU time (user +
    system of the child) is what a busy machine disturbs least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, env=ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (wall, cpu), p


def write_json(plain, path):
    """The lines of `plain` as nginx writes them with escape=json: every value a string,
    '-' for an absent one, keys in the log_format's order."""
    from plogd.formats import get_format
    fmt, dumps = get_format("nginx_timed"), json.dumps
    with open(plain, "rb") as src, open(path, "w") as out:
        for line in src:
            rec = fmt.parse(line.rstrip(b"\n"))
            out.write(dumps({k: "-" if rec[k] is None else str(rec[k]) for k in JSON_KEYS},
                            separators=(",", ":")) + "\n")


def time_decoders(path):
    """Lines per second of each JSON library decoding `path` line by line (best of 3)."""
    import importlib
    lines = Path(path).read_bytes().splitlines()
    print(f"\nJSON decoders, {len(lines)} lines, one call per line (best of 3):")
    for name, function in (("json", "loads"), ("orjson", "loads"), ("msgspec.json", "decode")):
        try:
            loads = getattr(importlib.import_module(name), function)
        except ImportError:
            print(f"  {name:<12} not installed (pip install {name.split('.')[0]})")
            continue
        best = min(_timed(loads, lines) for _ in range(3))
        print(f"  {name:<12} {len(lines) / best:>12,.0f} lines/s")


def _timed(loads, lines):
    t0 = time.perf_counter()
    for line in lines:
        loads(line)
    return time.perf_counter() - t0


def mawk_totals(path):
    _, p = run(["mawk", MAWK_PROG, str(path)], stdout=subprocess.PIPE)
    if p.returncode:
        sys.exit("mawk failed: " + p.stderr.decode())
    tot = {"requests": 0, "bytes": 0, "rt_sum": 0.0, "rt_max": 0.0, "status": {}}
    for line in p.stdout.decode().splitlines():
        f = line.split()
        if f[0] == "status":
            tot["status"][f[1]] = int(f[2])
        else:
            tot[f[0]] = float(f[1]) if f[0].startswith("rt_") else int(f[1])
    return tot


def python_totals(lines):
    """Independent reference (regex, not '"'-splitting) for the mawk self-check."""
    rx = re.compile(rb'" (\d{3}) (\d+) "[^"]*" "[^"]*" ([\d.]+) ')
    st, nbytes, rts = Counter(), 0, []
    for line in lines:
        s, b, rt = rx.search(line).groups()
        st[s.decode()] += 1
        nbytes += int(b)
        rts.append(float(rt))
    return {"requests": len(rts), "bytes": nbytes, "rt_sum": round(sum(rts), 3),
            "rt_max": max(rts), "status": dict(st)}


def plogd_totals(records):
    """Totals from `plogd replay` JSON records.  The metric keys are decided in plogd;
    adjust here if they change: nginx.requests, nginx.status[<code>], nginx.bytes
    (summed over windows) and nginx.request_time.max (max over windows)."""
    tot = {"requests": 0, "bytes": 0, "rt_max": 0.0, "status": Counter()}
    for r in records:
        if r["key"] == "nginx.request_time.sum":
            tot["rt_sum"] = tot.get("rt_sum", 0.0) + float(r["value"])
        key, v = r["key"], float(r["value"])
        if key == "nginx.requests":
            tot["requests"] += int(v)
        elif key == "nginx.bytes":
            tot["bytes"] += int(v)
        elif key == "nginx.request_time.max":
            tot["rt_max"] = max(tot["rt_max"], v)
        elif m := re.fullmatch(r"nginx\.status\[(\d+)\]", key):
            tot["status"][m[1]] += int(v)
    tot["status"] = {k: n for k, n in tot["status"].items() if n}
    return tot


def compare(ref, got):
    """List of human-readable differences (empty = match)."""
    diffs = [f"{k}: mawk={ref[k]} plogd={got[k]}" for k in ("requests", "bytes", "status")
             if ref[k] != got[k]]
    if round(ref["rt_max"], 3) != round(got["rt_max"], 3):
        diffs.append(f"rt_max: mawk={ref['rt_max']} plogd={got['rt_max']}")
    if "rt_sum" in got and abs(ref["rt_sum"] - got["rt_sum"]) > 0.01:
        diffs.append(f"rt_sum: mawk={ref['rt_sum']} plogd={got['rt_sum']}")
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--keep", metavar="DIR", help="write the log and outputs here and keep them")
    ap.add_argument("--plogd", help="plogd command (default: this checkout's plogd.cli:main)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true",
                    help="also replay the same requests as nginx escape=json lines")
    args = ap.parse_args()
    plogd = shlex.split(args.plogd) if args.plogd else PLOGD_DEFAULT
    byte_compile()
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="plogd-bench-")
    work = Path(args.keep or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    log, out = work / "access.log", work / "replay.jsonl"

    # 1. The mawk program must agree with an independent Python parse.
    small = work / "selfcheck.log"
    write_file(small, 20_000, seed=SEED + 1)
    want, got = python_totals(generate(20_000, seed=SEED + 1)), mawk_totals(small)
    if abs(want.pop("rt_sum") - got.pop("rt_sum")) > 0.01 or want != got:
        print(f"mawk self-check FAILED:\n  python {want}\n  mawk   {got}")
        return 2
    print("mawk self-check against Python on 20000 lines: OK")

    t0 = time.perf_counter()
    write_file(log, args.lines, seed=SEED)
    print(f"generated {args.lines} lines ({log.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t0:.2f} s -> {log}")
    ref = mawk_totals(log)

    _, p = run(plogd + ["replay", "--help"])
    missing = None
    if p.returncode:
        err = (p.stderr.decode().strip().splitlines() or ["?"])[-1]
        missing = f"`plogd replay` is not available (exit {p.returncode}: {err})"

    simple = work / "simple.yaml"
    simple.write_text(SIMPLE % log)
    cmds = {"wc -l": ["wc", "-l", str(log)], "mawk": ["mawk", MAWK_PROG, str(log)]}
    outs = {"simple": work / "simple.jsonl", "full": out}
    if not missing:
        cmds["simple"] = plogd + ["replay", "-c", str(simple), str(log), "-o", str(outs["simple"])]
        cmds["full"] = plogd + ["replay", "--format", "nginx_timed", str(log), "-o", str(out)]
    if args.json and not missing:
        json_log, json_config = work / "access.json.log", work / "json.yaml"
        t0 = time.perf_counter()
        write_json(log, json_log)
        print(f"wrote them as JSON ({json_log.stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - t0:.1f} s -> {json_log}")
        json_config.write_text((SIMPLE % json_log).replace("nginx_timed", "nginx_json"))
        outs["json"] = work / "json.jsonl"
        cmds["json"] = plogd + ["replay", "-c", str(json_config), str(json_log),
                                "-o", str(outs["json"])]
        time_decoders(json_log)
    best = dict.fromkeys(cmds, float("inf"))
    best_cpu = dict.fromkeys(cmds, float("inf"))
    for _ in range(args.reps):
        for name, cmd in cmds.items():
            if name in outs:
                outs[name].unlink(missing_ok=True)
            (secs, cpu), p = run(cmd)
            if p.returncode:
                print(f"{name} failed (exit {p.returncode}): {p.stderr.decode().strip()}")
                return 3 if name in outs else 1
            best[name] = min(best[name], secs)
            best_cpu[name] = min(best_cpu[name], cpu)

    print(f"\n{'tool':<7} {'lines':>9} {'seconds':>8} {'lines/s':>11} {'CPU s':>7}   "
          f"(best of {args.reps})")
    for name, secs in best.items():
        print(f"{name:<7} {args.lines:>9} {secs:>8.3f} {args.lines / secs:>11,.0f} "
              f"{best_cpu[name]:>7.3f}")
    print(f"  reference: requests={ref['requests']} bytes={ref['bytes']} "
          f"rt_max={ref['rt_max']:.3f} status={dict(sorted(ref['status'].items()))}")
    if missing:
        print("\n" + missing)
        return 3
    failed = False
    for name, path in outs.items():
        print(f"ratio plogd {name}/mawk time: {best[name] / best['mawk']:.2f} (wall), "
              f"{best_cpu[name] / best_cpu['mawk']:.2f} (CPU)")
        with open(path) as f:
            diffs = compare(ref, plogd_totals(json.loads(l) for l in f if l.strip()))
        print(f"  {name}: " + ("MATCH" if not diffs else "MISMATCH\n    " + "\n    ".join(diffs)))
        failed |= bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
