"""Hostile inputs (issue 11, points 1-5): what a log writer, a client or an unlucky operator
puts in a watched directory or a log line never stops, stalls or fools plogd. Each test is
bounded in time and waits on what it checks, never on a fixed sleep."""
from __future__ import annotations

import errno
import logging
import os
import threading
import time
from types import SimpleNamespace

import pytest

from helpers import plogd, read_records, totals
from plogd.stages.read import FileFollower, ReadStage, split_lines
from plogd.traffic import write_file

GOOD_LINES = 798


def _evil_dir(tmp_path):
    """A good log among a FIFO, two devices and a file whose reads fail with EIO."""
    logs = tmp_path / "logs"
    logs.mkdir()
    write_file(logs / "good.log", GOOD_LINES, seed=3, start=time.time() - 3600, rate=1)
    os.mkfifo(logs / "fifo.log")
    os.symlink("/dev/zero", logs / "zero.log")
    os.symlink("/dev/urandom", logs / "urandom.log")
    os.symlink("/proc/self/mem", logs / "mem.log")      # opens, then EIO on every read
    return logs


def _bounded(job, timeout: float = 20):
    """Run `job` in a thread: a test of a read that blocks must not block the suite."""
    result, done = [], threading.Event()
    thread = threading.Thread(target=lambda: (result.append(job()), done.set()), daemon=True)
    thread.start()
    assert done.wait(timeout), f"still blocked after {timeout} s"
    return result[0]


def test_fifos_devices_and_eio_files_never_stop_the_other_files(tmp_path, caplog):
    logs = _evil_dir(tmp_path)
    spec = SimpleNamespace(name="web", path=str(logs / "*.log"), start="beginning")
    stage = ReadStage([spec], 65536, {}, first_run=True)

    def read_all():
        lines, polls = [], 0
        deadline = time.monotonic() + 15
        while len(lines) < GOOD_LINES and time.monotonic() < deadline:
            lines += [l for b in stage.poll() for l in split_lines(b.data)]
            polls += 1
        for _ in range(50):          # and nothing more comes, however often it is polled
            lines += [l for b in stage.poll() for l in split_lines(b.data)]
        return lines

    with caplog.at_level(logging.WARNING, "plogd.read"):
        lines = _bounded(read_all)
    stage.close()
    assert len(lines) == GOOD_LINES and len(set(lines)) == GOOD_LINES
    for name, why in [("fifo.log", "not a regular file but a FIFO"),
                      ("zero.log", "not a regular file but a character device"),
                      ("urandom.log", "not a regular file but a character device"),
                      ("mem.log", "Input/output error")]:
        said = [r.getMessage() for r in caplog.records if name in r.getMessage()]
        assert len(said) == 1 and why in said[0], said        # once per file, and why
    assert stage.stats()["web"]["truncations"] == 0           # /dev/urandom is never read


class _FailingReads:
    """A file whose next `failures` reads fail with EIO (a bad sector, a flaky NFS server)."""

    def __init__(self, f, failures: int):
        self._f, self.failures, self.tries = f, failures, []

    def read(self, size=-1):
        self.tries.append(time.monotonic())
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._f.read(size)

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_a_read_error_is_reported_once_and_retried_with_backoff(tmp_path, caplog):
    path = tmp_path / "flaky.log"
    path.write_bytes(b"one\ntwo\n")
    f = FileFollower("in", str(path), "beginning", 1000)
    assert [l for b in f.poll() for l in split_lines(b.data)] == [b"one", b"two"]
    with open(path, "ab") as out:
        out.write(b"three\nfour\n")
    flaky = f._cur.f = _FailingReads(f._cur.f, failures=3)
    lines = []
    with caplog.at_level(logging.INFO, "plogd.read"):
        deadline = time.monotonic() + 15       # 1 + 2 + 4 s of back-off
        while not lines and time.monotonic() < deadline:
            lines = [l for b in f.poll() for l in split_lines(b.data)]
    assert lines == [b"three", b"four"]         # where it stopped: nothing lost or repeated
    assert len(flaky.tries) == 4                 # not retried at every poll
    gaps = [b - a for a, b in zip(flaky.tries, flaky.tries[1:])]
    assert gaps[0] >= 1 and gaps[1] >= 2 and gaps[2] >= 4        # backing off
    text = caplog.text
    assert text.count("Input/output error") == 1 and "can be read again" in text
    f.close()


@pytest.mark.parametrize("mode", ["--single", "--multi"])
def test_the_daemon_counts_every_good_line_among_hostile_files(tmp_path, mode):
    """The reviewer's case: a FIFO froze --single with nothing logged; one EIO sent --multi
    into a restart loop that counted none of 798 good lines."""
    logs = _evil_dir(tmp_path)
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
state_dir: {tmp_path / 'state'}
inputs:
  - name: web
    path: {logs / '*.log'}
    format: nginx_timed
    start: beginning
    metrics:
      - {{key: requests, type: count}}
""")
    run = plogd(mode, "--once", "-c", str(config), timeout=60)
    got = totals(r for r in read_records(tmp_path / "state" / "results.jsonl")
                 if not r["key"].startswith("plogd."))
    assert got == {"requests": GOOD_LINES}
    err = run.stderr.decode()
    assert "restarting" not in err and "Traceback" not in err
    assert err.count("mem.log") == 1 and err.count("fifo.log") == 1


def test_the_tail_of_an_over_long_line_is_not_counted_again_after_a_restart(tmp_path):
    """5 lines, one of them over max_line_length and unterminated when plogd stopped: 5
    counted after the restart (it was 6: the tail of the long line was taken for a line)."""
    from plogd.formats import get_format
    from plogd.metrics import Metric
    from plogd.stages.parse import Parser
    path = tmp_path / "long.log"
    path.write_bytes(b"1\n2\n3\n" + b"x" * 2500)         # the long line, still being written
    parser = Parser("in", get_format("nginx_timed"), [Metric("n", "count")], 60, 1000)
    before = FileFollower("in", str(path), "beginning", 1000)
    partials = [parser.handle(b) for b in _bounded(before.poll)]
    before.close()                                      # plogd stops
    with open(path, "ab") as out:
        out.write(b"y" * 300 + b"\n5\n")                # the long line ends, one more line
    after = FileFollower("in", str(path), "beginning", 1000, resume=partials[-1].position)
    partials += [parser.handle(b) for b in _bounded(after.poll)]
    after.close()
    assert sum(p.lines for p in partials) == 5 and sum(p.too_long for p in partials) == 1


def test_a_glob_matching_nothing_is_said_at_start_and_when_it_matches(tmp_path, caplog):
    spec = SimpleNamespace(name="web", path=str(tmp_path / "acess*.log"), start="beginning")
    stage = ReadStage([spec], 1000, {}, first_run=True)
    stage.RESCAN = 0.0                                  # at each poll, not every 5 s
    with caplog.at_level(logging.WARNING, "plogd.read"):
        stage.poll()
        stage.poll()
        assert caplog.text.count("matches no file") == 1
        (tmp_path / "acess.log").write_bytes(b"a\n")
        stage.poll()
    assert caplog.text.count("now matches 1 file(s)") == 1
    stage.close()


def _regex_input(where: str | None = None, fmt: str = "nginx_timed", rewrite: str = ""):
    from plogd.config import from_data
    metric = {"key": "hits", "type": "count"}
    if where:
        metric["where"] = where
    spec = {"name": "web", "path": "/x", "format": fmt,
            "metrics": [{"key": "requests", "type": "count"}, metric]}
    if rewrite:
        spec["rewrite"] = [{"field": "path", "match": rewrite, "replace": "/{hash}"}]
        spec["metrics"].append({"key": "by[{path}]", "type": "count", "by": "path"})
    return from_data("<test>", {"inputs": [spec]})


def _handle(config, lines: list[bytes]):
    """parse -> aggregate of one batch: (the partial, the aggregator, what the parser logged).
    Parsed in a child process killed after 10 s: re's matching loop holds the GIL, so a
    thread could not bound it."""
    from plogd.files import FileId
    from plogd.messages import LineBatch
    from plogd.stages.aggregate import AggregateStage
    from plogd.stages.parse import ParseStage
    parse = ParseStage(config.inputs, 60, 65536)
    batch = LineBatch("web", 1, "/x", FileId(1, 2, 0, ""), b"".join(l + b"\n" for l in lines), 0, 0)
    partial, logged = _in_child(lambda: parse.handle(batch))
    aggregate = AggregateStage(config.inputs, 60, replay=True)
    aggregate.handle(partial)
    return partial, aggregate.aggregators["web"], logged


def _in_child(job, timeout: float = 10):
    """(job's result, its log) from a forked child, which is killed if it takes too long."""
    import io
    import multiprocessing
    import queue

    def child(results):
        out = io.StringIO()
        logging.getLogger().addHandler(logging.StreamHandler(out))
        results.put((job(), out.getvalue()))

    results = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(target=child, args=(results,))
    proc.start()
    try:
        return results.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"one batch still not parsed after {timeout} s") from None
    finally:
        proc.kill()
        proc.join()


def _request(path: str) -> bytes:
    return (f'1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] "GET {path} HTTP/1.1" 200 5 "-" "ua" '
            f'0.1 0.1').encode()


def test_a_catastrophic_filter_cannot_stall_the_pipeline():
    """The reviewer's case: `path ~ "^/(a+)+$"` and one request for /aaaa…a! stopped every
    window for 17-20 s (Python's re backtracks 2^n steps). RE2 decides it in linear time."""
    config = _regex_input(where='path ~ "^/(a+)+$"')
    partial, agg, _ = _handle(config, [_request("/aaaa"), _request("/" + "a" * 40 + "!"),
                                       _request("/b")])
    assert agg.counters.lines == 3 and agg.counters.regex_timeout == 0
    assert {k: v for w in agg.flush() for k, v, *_ in w.values} == {"requests": 3, "hits": 1}


def test_a_regex_format_cannot_stall_the_pipeline():
    config = _regex_input(fmt=r"regex:\[(?P<time_local>[^]]+)\] (?P<path>/(a+)+) (?P<status>\d+)$")
    stamp = b"[03/Dec/2026:10:00:00 +0000] "
    partial, agg, _ = _handle(config, [stamp + b"/aaa 200", stamp + b"/" + b"a" * 40 + b"!0 200"])
    assert (partial.lines, partial.unmatched) == (2, 1)


def test_a_pattern_re2_cannot_run_keeps_re_semantics_and_is_bounded(caplog):
    """Lookaround (README's rewrite example) is not RE2's: such a pattern runs on the regex
    module, same meaning as re, each call bounded; a line over the bound is counted in
    regex_timeout (plogd.regex_timeout[…]) and in the log, not lost in silence."""
    from plogd.monitoring import values
    rewrite = _regex_input(rewrite=r"/[0-9a-f]{32}(?=/|$|\?)")
    partial, agg, _ = _handle(rewrite, [_request("/" + "ab" * 16 + "/x"), _request("/" + "c" * 32)])
    assert {k for w in agg.flush() for k, *_ in w.values} == {
        "requests", "hits", "by[/{hash}/x]", "by[/{hash}]"}
    with caplog.at_level(logging.WARNING):
        config = _regex_input(where=r'path ~ "^(?=/)/(a|aa)+$"')
        assert "cannot run on RE2" in caplog.text and "bounded to 20 ms" in caplog.text
    partial, agg, logged = _handle(config, [_request("/aaaa"), _request("/" + "a" * 60 + "!")])
    assert agg.counters.regex_timeout == 1 and partial.regex_timeout == 1
    assert "1 line(s) of /x took a user regex over its time bound" in logged
    assert {k: v for w in agg.flush() for k, v, *_ in w.values} == {"requests": 2, "hits": 1}
    assert ("plogd.regex_timeout[web]", 1) in [v[:2] for v in values(0, {"web": agg}, {}, 0)]


def _following(now: int):
    """parse -> aggregate while following (lateness 10 s, max_skew 3600 s, wall clock `now`):
    feed(lines) merges one batch of the path and returns the aggregator."""
    from plogd.files import FileId
    from plogd.formats import get_format
    from plogd.messages import LineBatch
    from plogd.metrics import Metric
    from plogd.stages.aggregate import Aggregator
    from plogd.stages.parse import Parser
    metrics = [Metric("requests", "count")]
    parser = Parser("in", get_format("nginx_timed"), metrics, 60, 65536, oldest=662688000)
    agg = Aggregator("in", metrics, 60, 10, max_skew=3600, clock=lambda: now)
    seq = iter(range(1, 10**6))

    def feed(stamps):
        data = b"".join(_stamped(t) + b"\n" for t in stamps)
        agg.handle(parser.handle(LineBatch("in", next(seq), "/x", FileId(1, 2, 0, ""), data, 0, 0)))
        return agg
    return feed


def _stamped(t: int) -> bytes:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
    return f'1.2.3.4 - - [{stamp}] "GET / HTTP/1.1" 200 5 "-" "ua" 0.1 0.1'.encode()


@pytest.mark.parametrize("alone", [True, False], ids=["its own batch", "amid present lines"])
def test_one_line_from_the_future_does_not_discard_the_present(alone):
    """The reviewer's case: one line stamped now+3000 s (within max_skew) made all 290 later
    lines late. The watermark waits for the path's lines to go there: they do not, so the
    line is odd_time and the present is counted."""
    now = 1_800_000_000
    feed = _following(now)
    feed([now - 20 + i // 10 for i in range(100)])
    present = [now - 10 + i // 20 for i in range(290)]
    if alone:
        feed([now + 3000])
        agg = feed(present)
    else:
        agg = feed(present[:100] + [now + 3000] + present[100:])
    assert (agg.counters.late, agg.counters.odd_time) == (0, 1)
    assert agg.newest == now + 4
    assert sum(states[0] for states in agg.open.values()) == 390


def _wait_checkpointed(checkpoint, log, timeout: float = 30):
    """Until the checkpoint says `log` was read to its end."""
    import json
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            snap = json.loads(checkpoint.read_text())
        except (OSError, ValueError):
            snap = {}
        offsets = [p["offset"] for s in snap.values() for p in s["positions"].values()]
        if offsets == [log.stat().st_size]:
            return
        time.sleep(0.05)
    raise AssertionError(f"{log} not read to its end within {timeout} s")


@pytest.mark.parametrize("mode", ["--single", "--multi"])
def test_the_daemon_counts_the_present_after_a_line_from_the_future(tmp_path, mode):
    """End to end, while following: 100 lines, one stamped now+3000 s, 290 more; every
    present line reaches its window, the outlier is odd_time, none is late."""
    import signal
    import subprocess
    import sys
    from helpers import ROOT
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
interval: 2
state_dir: {tmp_path / 'state'}
inputs:
  - name: web
    path: {log}
    format: nginx_timed
    start: beginning
    lateness: 1
    metrics:
      - {{key: requests, type: count}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "plogd", mode, "-c", str(config)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        now = int(time.time())
        with open(log, "ab") as out:
            out.write(b"".join(_stamped(now) + b"\n" for _ in range(100)))
            out.write(_stamped(now + 3000) + b"\n")
        _wait_checkpointed(tmp_path / "state" / "checkpoint.json", log)   # the outlier is in
        with open(log, "ab") as out:
            out.write(b"".join(_stamped(now + 1) + b"\n" for _ in range(290)))
        results = tmp_path / "state" / "results.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            records = read_records(results) if results.exists() else []
            latest = {r["key"]: r["value"] for r in records}     # the last of each key
            if totals(r for r in records if r["key"] == "requests") == {"requests": 390} \
                    and latest.get("plogd.odd_time[web]") == 1:
                break
            time.sleep(0.1)
        assert totals(r for r in records if r["key"] == "requests") == {"requests": 390}
        assert (latest["plogd.odd_time[web]"], latest["plogd.late[web]"]) == (1, 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
