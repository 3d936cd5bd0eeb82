"""Every metric type: values of a window, and the properties the pipeline relies on — any split
into batches and any number of parser workers give identical windows; merging is associative
and commutative (compared as checkpoint data, after dump/load); the parser never raises.
(The sketches' own error bounds on 10**6 values are in test_sketches.py.)"""
import json
import pickle
import random
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from plogd.files import FileId
from plogd.filters import compile_filter
from plogd.formats import get_format
from plogd.messages import LineBatch
from plogd.metrics import HARD_FACTOR, OTHER, Metric
from plogd.stages.aggregate import NEVER, Aggregator
from plogd.stages.parse import Parser, Rewrite, input_fields

FMT = get_format("nginx_timed")
NUMERIC = {n: t in ("int", "float") for n, t in input_fields(FMT).items()}


def where(text):
    return compile_filter(text, NUMERIC)


REWRITE = [Rewrite("path", re.compile(r"^/items/\d+"), "/items/{id}")]


def all_metrics(top=100):
    """One metric of every type, with and without by:/where:."""
    return [
        Metric("requests", "count"),
        Metric("rps", "rate"),
        Metric("post_rps", "rate", where=where('method == "POST"')),
        Metric("bytes", "sum", field="body_bytes_sent"),
        Metric("rt.avg", "avg", field="request_time"),
        Metric("rt.min", "min", field="request_time"),
        Metric("rt.max", "max", field="request_time"),
        Metric("rt[p{q}]", "percentile", field="request_time", q=[0, 50, 90, 99, 99.9, 100]),
        Metric("err_share", "ratio", where=where("status >= 500")),
        Metric("get_err_share", "ratio", where=where("status >= 500"), of=where('method == "GET"')),
        Metric("clients", "distinct", field="remote_addr"),
        Metric("paths", "distinct", field="uri"),
        Metric("status[{status}]", "count", by="status", top=top),
        Metric("share[{method}]", "ratio", by="method", where=where("status >= 500"), top=top),
        Metric("rt_by_uri[{uri},p{q}]", "percentile", field="request_time", by="uri",
               q=[50, 99], top=top),
        Metric("clients_by_status[{status_class}]", "distinct", field="remote_addr",
               by="status_class", top=top),
        Metric("avg_by_uri[{uri}]", "avg", field="request_time", by="uri", top=top,
               where=where('path ~ "^/items/" or path ^= "/a"')),
        Metric("max_by_method[{method}]", "max", field="request_time", by="method", top=top),
    ]


METRICS = all_metrics()


def line(t, status=200, nbytes=100, rt="0.125", method="GET", path="/", addr="1.2.3.4"):
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
    return (f'{addr} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {nbytes} "-" "ua" '
            f'{rt} 0.010').encode()


def random_lines(rng, n, span=600, t0=1_700_000_000):
    paths = ["/", "/a", "/a?x=1", "/items/1", "/items/22?y", "/b/c", "/items/333/x"]
    return [line(t0 + rng.randrange(span), rng.choice([200, 301, 404, 500, 503]),
                 rng.randrange(0, 5000), rng.choice(["-", "0.000", f"{rng.randrange(800) / 8:.3f}",
                                                     f"{rng.expovariate(3):.3f}"]),
                 rng.choice(["GET", "POST", "HEAD"]), rng.choice(paths),
                 f"10.0.{rng.randrange(4)}.{rng.randrange(200)}")
            for _ in range(n)]


def batch(seq, lines):
    data = b"".join(l + b"\n" for l in lines)
    return LineBatch("in", seq, "/x", FileId(1, 2, 0, ""), data, 0, 0)


def windows(lines, cuts=(), workers=1, shuffle_seed=None, metrics=METRICS, pickled=False):
    """lines -> {(window, key): value} through `workers` parsers (batch i to parser i % k)
    and one aggregator, partials in any order (pickled: as they cross process queues)."""
    parsers = [Parser("in", FMT, metrics, 60, 65536, REWRITE) for _ in range(workers)]
    bounds = [0] + sorted(cuts) + [len(lines)]
    partials = [parsers[i % workers].handle(batch(i + 1, lines[a:b]))
                for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    if pickled:
        partials = [pickle.loads(pickle.dumps(p)) for p in partials]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(partials)
    agg = Aggregator("in", metrics, 60, NEVER)
    for partial in partials:
        agg.handle(partial)
    return {(w.start, k): v for w in agg.flush() for k, v, *_ in w.values}


def assert_same(expected, got):
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


# -- values of each type ------------------------------------------------------------------

def test_values_of_every_type_on_a_known_window():
    t = 1_700_000_040           # window 1_700_000_040 // 60 * 60
    lines = [line(t, 200, 10, "0.100", "GET", "/items/12?a=1", "1.1.1.1"),
             line(t + 1, 500, 20, "0.300", "GET", "/items/7", "1.1.1.2"),
             line(t + 2, 503, 30, "0.200", "POST", "/a", "1.1.1.1"),
             line(t + 3, 200, 40, "-", "GET", "/a?q", "1.1.1.3")]
    got = {k: v for (_, k), v in windows(lines).items()}
    assert got["requests"] == 4 and got["rps"] == 4 / 60 and got["post_rps"] == 1 / 60
    assert got["err_share"] == 0.5 and got["get_err_share"] == 1 / 3
    assert got["clients"] == 3
    assert got["paths"] == 2                      # /items/{id} and /a: rewritten, no query
    assert got["rt[p0]"] == 0.1 and got["rt[p100]"] == 0.3     # exact extremes
    assert got["rt[p50]"] == pytest.approx(0.2, rel=0.01)
    assert got["share[GET]"] == 1 / 3 and got["share[POST]"] == 1.0
    assert got["rt_by_uri[/items/{id},p50]"] == pytest.approx(0.1, rel=0.01)
    assert got['avg_by_uri[/items/{id}]'] == pytest.approx(0.2)
    assert got["avg_by_uri[/a]"] == pytest.approx(0.2)          # the '-' time does not count
    assert got["clients_by_status[5xx]"] == 2
    assert "rt[p{q}]" not in got and not any("{" in k.replace("{id}", "") for k in got)


def test_percentile_of_a_metric_is_within_one_percent_of_the_exact_quantile():
    rng = random.Random(5)
    values = [rng.lognormvariate(-2, 1.5) for _ in range(50_000)]
    metric = Metric("p[{q}]", "percentile", field="request_time", q=[50, 90, 95, 99, 99.9])
    state = metric.fold({"request_time": values}, len(values))
    exact = sorted(values)
    for key, estimate, *_ in metric.values(state):
        q = float(key[2:-1])
        truth = exact[int(q / 100 * (len(values) - 1))]
        assert abs(estimate - truth) <= 0.01 * truth + 1e-12, key


def test_percentile_key_renders_q():
    metric = Metric("rt[p{q}]", "percentile", field="request_time", q=[50, 99.0, 99.9])
    state = metric.fold({"request_time": [1.0, 2.0]}, 2)
    assert [k for k, *_ in metric.values(state)] == ["rt[p50]", "rt[p99]", "rt[p99.9]"]


def test_top_keeps_the_largest_groups_and_folds_the_rest_into_other():
    metric = Metric("hits[{uri}]", "count", by="uri", top=3)
    column = [f"/p{i}" for i in range(10) for _ in range(i + 1)]     # /p9 has 10 lines
    state = metric.fold({"uri": column}, len(column))
    got = {v.key: v.value for v in metric.values(state)}
    assert got == {"hits[/p9]": 10, "hits[/p8]": 9, "hits[/p7]": 8, "hits[other]": 28}
    assert sum(got.values()) == len(column)


def test_top_bounds_the_state_during_a_window():
    metric = Metric("hits[{uri}]", "sum", field="body_bytes_sent", by="uri", top=5)
    state = {}
    for b in range(30):       # 30 batches of 20 new groups each: 600 groups in all
        column = [f"/b{b}/{i}" for i in range(20)]
        part = metric.fold({"uri": column, "body_bytes_sent": [1] * 20}, 20)
        state = part if not state else metric.merge(state, part)
        assert len(state) <= HARD_FACTOR * 5 + 1
    assert sum(v.value for v in metric.values(state)) == 600     # nothing lost: in `other`
    assert OTHER in state


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.key)
def test_an_empty_batch_and_a_batch_without_the_field(metric):
    columns = {name: [None] for name in ("request_time", "remote_addr", "uri", "status",
                                         "method", "path", "status_class", "body_bytes_sent")}
    columns["timestamp"] = [0]
    state = metric.fold(columns, 1)
    for _, value, *_ in metric.values(metric.load(json.loads(json.dumps(metric.dump(state))))):
        assert isinstance(value, (int, float))


# -- properties -----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 400), max_size=10),
       workers=st.integers(1, 4), order=st.integers(0, 10**6))
def test_any_batching_and_any_number_of_workers_give_identical_windows(seed, cuts, workers, order):
    lines = random_lines(random.Random(seed), 400)
    expected = windows(lines)
    assert_same(expected, windows(lines, cuts, workers, shuffle_seed=order))


def test_parser_processes_and_pickled_partials_give_identical_windows():
    lines = random_lines(random.Random(1), 3000, span=3600)
    assert_same(windows(lines), windows(lines, range(0, 3000, 97), 3, 7, pickled=True))


def test_identical_windows_with_high_cardinality_below_the_hard_limit():
    rng = random.Random(2)
    lines = [line(1_700_000_040 + rng.randrange(120), path=f"/u/{rng.randrange(40)}")
             for _ in range(2000)]
    metrics = [Metric("hits[{uri}]", "count", by="uri", top=4),
               Metric("rt[{uri}]", "percentile", field="request_time", by="uri", top=4, q=[50])]
    expected = windows(lines, metrics=metrics)
    assert len(expected) == 2 * 2 * 5                      # 2 windows x (4 + other) x 2
    assert_same(expected, windows(lines, range(0, 2000, 33), 3, 11, metrics=metrics))


def _round_trip(metric, state):
    return metric.load(json.loads(json.dumps(metric.dump(state))))


def _data(metric, state):
    """The checkpoint data of a state, by-groups in a fixed order (a dict's order is not
    part of the state)."""
    data = metric.dump(state)
    if metric.by is not None:
        data = sorted(data, key=lambda pair: str(pair[0]))
    return json.dumps(data, sort_keys=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), sizes=st.tuples(*[st.integers(0, 60)] * 3))
def test_merge_is_associative_and_commutative_for_every_type(seed, sizes):
    rng = random.Random(seed)
    # request times in eighths of a second: their sums are exact in any order
    parser = Parser("in", FMT, METRICS, 60, 65536, REWRITE)
    parts = []
    for size in sizes:
        lines = [l.replace(b" 0.010", b" -") for l in random_lines(rng, size, span=60,
                                                                      t0=1_700_000_040)]
        lines = [re.sub(rb'" (\d+\.\d+|-) -$', lambda m: b'" %.3f -' % (rng.randrange(99) / 8), l)
                 for l in lines]
        partial = parser.handle(batch(1, lines))
        parts.append(partial.windows.get(1_700_000_040, (0, None))[1])
    if any(p is None for p in parts):
        return
    for i, metric in enumerate(METRICS):
        a, b, c = (_round_trip(metric, p[i]) for p in parts)
        left = metric.merge(metric.merge(a, b), c)
        right = metric.merge(a, metric.merge(b, c))
        assert _data(metric, left) == _data(metric, right), metric.key
        assert _data(metric, metric.merge(a, b)) == _data(metric, metric.merge(b, a)), metric.key
        assert _data(metric, _round_trip(metric, left)) == _data(metric, left)
        assert metric.values(_round_trip(metric, left)) == metric.values(left)
        # merging never changes its operands (a state may be shared)
        assert _data(metric, a) == _data(metric, _round_trip(metric, parts[0][i]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_the_parser_with_every_metric_never_raises_on_arbitrary_bytes(chunks):
    data = b"\n".join(chunks)
    parser = Parser("in", FMT, METRICS, 60, 200, REWRITE, oldest=662688000)
    partial = parser.handle(LineBatch("in", 1, "/x", FileId(1, 2, 0, ""), data, 0, len(data)))
    assert partial.lines >= partial.unmatched


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**34), st.integers(100, 599),
                          st.text(min_size=1, max_size=12).filter(lambda s: '"' not in s
                                                                  and "\n" not in s
                                                                  and " " not in s)),
                max_size=15))
def test_the_parser_never_raises_on_well_formed_lines_with_odd_values(rows):
    lines = [line(t, status, path="/" + text) for t, status, text in rows]
    parser = Parser("in", FMT, METRICS, 60, 65536, REWRITE, oldest=662688000)
    data = b"".join(l + b"\n" for l in lines)
    partial = parser.handle(LineBatch("in", 1, "/x", FileId(1, 2, 0, ""), data, 0, len(data)))
    agg = Aggregator("in", METRICS, 60, NEVER)
    agg.handle(partial)
    agg.flush()


def test_a_configured_input_rewrites_groups_and_caps_in_a_replay(tmp_path):
    from plogd.config import from_data
    from plogd.runner import replay
    log = tmp_path / "access.log"
    t = 1_700_000_040
    paths = ["/items/1?a", "/items/22", "/items/333/x", "/a", "/b", "/c?z", "/c"]
    log.write_bytes(b"".join(line(t + i, path=p) + b"\n" for i, p in enumerate(paths)))
    config = from_data("<test>", {"interval": 60, "inputs": [{
        "name": "in", "path": str(log), "format": "nginx_timed",
        "rewrite": [{"field": "path", "match": r"^/items/\d+", "replace": "/items/{id}"}],
        "metrics": [{"key": "hits[{uri}]", "type": "count", "by": "uri", "top": 2},
                    {"key": "items", "type": "count", "where": 'path ^= "/items/{id}"'},
                    {"key": "rps", "type": "rate"}]}]})
    records, _ = replay(config, config.inputs[0], [str(log)])
    got = {r["key"]: r["value"] for r in records}
    assert got == {"hits[/items/{id}]": 2, "hits[/c]": 2, "hits[other]": 3, "items": 3,
                   "rps": 7 / 60}


def test_checkpoint_of_every_type_restores_and_a_changed_type_drops_the_windows():
    lines = random_lines(random.Random(4), 500, span=120, t0=1_700_000_040)
    parser = Parser("in", FMT, METRICS, 60, 65536, REWRITE)
    agg = Aggregator("in", METRICS, 60, NEVER)
    agg.handle(parser.handle(batch(1, lines)))
    snap = json.loads(json.dumps(agg.snapshot()))
    restored = Aggregator("in", METRICS, 60, NEVER)
    restored.restore(snap)
    assert [(w.start, w.values) for w in restored.flush()] == \
        [(w.start, w.values) for w in agg.flush()]
    changed = [Metric(m.key, "count", by=m.by) if m.kind == "percentile" else m for m in METRICS]
    other = Aggregator("in", changed, 60, NEVER)
    other.restore(snap)
    assert other.open == {} and other.counters.lines == 500


def test_metrics_sharing_a_where_fold_as_they_do_alone():
    """Parser.handle folds a window's metrics with one mask per `where:` text: the states
    are those each metric folds on its own."""
    numeric = {"status": True, "method": False}
    metrics = [Metric("e", "count", where=compile_filter("status >= 500", numeric)),
               Metric("s", "ratio", where=compile_filter("status >= 500", numeric)),
               Metric("g", "ratio", where=compile_filter("method == 'GET'", numeric),
                      of=compile_filter("status >= 500", numeric)),
               Metric("m", "count", by="method",
                      where=compile_filter("method == 'GET'", numeric))]
    columns = {"status": [200, 503, 500, None, 404, 502], "method": ["GET", "GET", "POST",
                                                                      "GET", None, "GET"]}
    masks: dict = {}
    shared = [m.fold(columns, 6, masks) for m in metrics]
    assert shared == [m.fold(columns, 6) for m in metrics] == [3, [3, 6], [2, 3], {"GET": 4}]
    assert sorted(masks) == ["method == 'GET'", "status >= 500"]
