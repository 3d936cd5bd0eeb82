"""Parsing into partials, merging, and closing windows by event time (pure objects)."""
import random

from hypothesis import given, settings, strategies as st

from plogd.filters import compile_filter
from plogd.formats import get_format
from plogd.messages import LineBatch
from plogd.metrics import Metric, zabbix_key_param
from plogd.stages.aggregate import NEVER, Aggregator
from plogd.stages.parse import Parser

FMT = get_format("nginx_timed")
NUMERIC = {n: t in ("int", "float") for n, t in FMT.fields.items()}
METRICS = [
    Metric("requests", "count"),
    Metric("status[{status}]", "count", by="status"),
    Metric("errors", "count", where=compile_filter("status >= 500", NUMERIC)),
    Metric("bytes", "sum", field="body_bytes_sent"),
    Metric("rt.avg", "avg", field="request_time"),
    Metric("rt.min", "min", field="request_time"),
    Metric("rt.max", "max", field="request_time"),
    Metric("up.avg", "avg", field="upstream_response_time"),
    Metric("bytes_by_method[{method}]", "sum", field="body_bytes_sent", by="method"),
]


def line(t, status=200, nbytes=100, rt="0.100", up="0.050", method="GET"):
    stamp = __import__("time").strftime("%d/%b/%Y:%H:%M:%S +0000", __import__("time").gmtime(t))
    return (f'1.2.3.4 - - [{stamp}] "{method} / HTTP/1.1" {status} {nbytes} "-" "ua" {rt} {up}'
            .encode())


def batch(lines):
    return LineBatch("in", "/x", lines, 0, 0)


def values(windows):
    return {(w.start, k): v for w in windows for k, v in w.values}


def test_one_window_values():
    parser = Parser("in", FMT, METRICS, 60)
    agg = Aggregator("in", METRICS, 60, NEVER)
    lines = [line(120, 200, 10, "0.5"), line(130, 503, 20, "1.5", "-", "POST"), line(179, 404, 0, "-"),
             b"garbage"]
    agg.handle(parser.handle(batch(lines)))
    got = values(agg.flush())
    assert got == {(120, "requests"): 3, (120, "status[200]"): 1, (120, "status[404]"): 1,
                   (120, "status[503]"): 1, (120, "errors"): 1, (120, "bytes"): 30,
                   (120, "rt.avg"): 1.0, (120, "rt.min"): 0.5, (120, "rt.max"): 1.5,
                   (120, "up.avg"): 0.05, (120, "bytes_by_method[GET]"): 10,
                   (120, "bytes_by_method[POST]"): 20}
    assert agg.counters.unmatched == 1 and agg.counters.lines == 4


def test_windows_close_by_event_time_and_late_lines_are_counted():
    parser = Parser("in", FMT, METRICS[:1], 60)
    agg = Aggregator("in", METRICS[:1], 60, lateness=10)
    assert agg.handle(parser.handle(batch([line(0), line(59)]))) == []
    assert agg.handle(parser.handle(batch([line(69)]))) == []          # 60 + 10 not yet passed
    closed = agg.handle(parser.handle(batch([line(70)])))
    assert [(w.start, w.values) for w in closed] == [(0, [("requests", 2)])]
    agg.handle(parser.handle(batch([line(30), line(31)])))           # window 0 is closed
    assert agg.counters.late == 2
    assert [(w.start, w.values) for w in agg.tick(now=131)] == [(60, [("requests", 2)])]


def test_idle_tick_does_not_close_recent_windows():
    parser = Parser("in", FMT, METRICS[:1], 60)
    agg = Aggregator("in", METRICS[:1], 60, lateness=10)
    agg.handle(parser.handle(batch([line(100)])))
    assert agg.tick(now=125) == [] and agg.tick(now=129) == []
    assert len(agg.tick(now=130)) == 1


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_any_batching_gives_identical_windows(seed, cuts):
    rng = random.Random(seed)
    lines = [line(rng.randrange(0, 600), rng.choice([200, 404, 500]), rng.randrange(0, 999),
                  f"{rng.random():.3f}", rng.choice(["-", "0.010", "0.1, 0.2"]),
                  rng.choice(["GET", "POST"])) for _ in range(300)]

    def run(pieces):
        parser, agg = Parser("in", FMT, METRICS, 60), Aggregator("in", METRICS, 60, NEVER)
        for piece in pieces:
            agg.handle(parser.handle(batch(piece)))
        return values(agg.flush())

    bounds = [0] + sorted(cuts) + [len(lines)]
    pieces = [lines[a:b] for a, b in zip(bounds, bounds[1:])]
    rng.shuffle(pieces)   # partials merge in any order
    one_pass = run([lines])
    split = run(pieces)
    assert one_pass.keys() == split.keys()
    for key, value in one_pass.items():
        assert abs(split[key] - value) < 1e-9 * max(1, abs(value))


def test_key_parameters_are_quoted_for_zabbix():
    assert zabbix_key_param(200) == "200"
    assert zabbix_key_param("/a,b") == '"/a,b"'
    assert zabbix_key_param('say "hi"') == '"say \\"hi\\""'
    assert zabbix_key_param(None) == "-"
