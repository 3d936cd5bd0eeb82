"""Parsing into partials, merging, and closing windows by event time (pure objects)."""
import json
import random
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from plogd.files import FileId
from plogd.filters import compile_filter
from plogd.formats import get_format
from plogd.messages import LineBatch
from plogd.metrics import Metric, zabbix_key_param
from plogd.stages.aggregate import NEVER, Aggregator, next_tick
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


class Chain:
    """parse -> aggregate, batches numbered as the reader numbers them."""

    def __init__(self, metrics=METRICS, lateness=NEVER):
        self.parser = Parser("in", FMT, metrics, 60, 65536)
        self.agg = Aggregator("in", metrics, 60, lateness)
        self.seq = 0

    def partial(self, lines):
        self.seq += 1
        data = b"".join(l + b"\n" for l in lines)
        return self.parser.handle(LineBatch("in", self.seq, "/x", FileId(1, 2, 0, ""), data, 0, 0))

    def feed(self, lines):
        return self.agg.handle(self.partial(lines))


def values(windows):
    return {(w.start, k): v for w in windows for k, v, *_ in w.values}


def test_one_window_values():
    chain = Chain()
    chain.feed([line(120, 200, 10, "0.5"), line(130, 503, 20, "1.5", "-", "POST"),
                line(179, 404, 0, "-"), b"garbage"])
    got = values(chain.agg.flush())
    assert got == {(120, "requests"): 3, (120, "status[200]"): 1, (120, "status[404]"): 1,
                   (120, "status[503]"): 1, (120, "errors"): 1, (120, "bytes"): 30,
                   (120, "rt.avg"): 1.0, (120, "rt.min"): 0.5, (120, "rt.max"): 1.5,
                   (120, "up.avg"): 0.05, (120, "bytes_by_method[GET]"): 10,
                   (120, "bytes_by_method[POST]"): 20}
    assert chain.agg.counters.unmatched == 1 and chain.agg.counters.lines == 4


def test_windows_close_by_event_time_and_late_lines_are_counted():
    chain = Chain(METRICS[:1], lateness=10)
    assert chain.feed([line(0), line(59)]) == []
    assert chain.feed([line(69)]) == []          # 60 + 10 not yet passed
    closed = chain.feed([line(70)])
    assert [(w.start, [v[:2] for v in w.values]) for w in closed] == [(0, [("requests", 2)])]
    chain.feed([line(30), line(31)])             # window 0 is closed
    assert chain.agg.counters.late == 2
    assert [(w.start, [v[:2] for v in w.values]) for w in chain.agg.tick(now=131)] == [(60, [("requests", 2)])]


def test_idle_tick_does_not_close_recent_windows():
    chain = Chain(METRICS[:1], lateness=10)
    chain.feed([line(100)])
    assert chain.agg.tick(now=125) == [] and chain.agg.tick(now=129) == []
    assert len(chain.agg.tick(now=130)) == 1


def test_batches_merge_in_reading_order_whatever_order_they_arrive_in():
    """Parser processes finish out of order; the aggregator merges in order, so a window
    never closes on a later batch before an earlier one was counted."""
    chain = Chain(METRICS[:1], lateness=0)
    first, second = chain.partial([line(10)]), chain.partial([line(70)])
    assert chain.agg.handle(second) == []        # waits for batch 1
    closed = chain.agg.handle(first)
    assert [(w.start, [v[:2] for v in w.values]) for w in closed] == [(0, [("requests", 1)])]
    assert chain.agg.counters.late == 0


def test_snapshot_and_restore_give_the_same_windows():
    chain = Chain(lateness=5)
    chain.feed([line(10), line(20, 500), line(61)])
    restored = Aggregator("in", METRICS, 60, 5)
    restored.restore(json.loads(json.dumps(chain.agg.snapshot())))
    later = [line(70, 404), line(130)]
    assert values(restored.handle(Chain(lateness=5).partial(later))) == values(chain.feed(later))
    assert restored.counters == chain.agg.counters


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_any_batching_and_arrival_order_give_identical_windows(seed, cuts):
    rng = random.Random(seed)
    lines = [line(rng.randrange(0, 600), rng.choice([200, 404, 500]), rng.randrange(0, 999),
                  f"{rng.random():.3f}", rng.choice(["-", "0.010", "0.1, 0.2"]),
                  rng.choice(["GET", "POST"])) for _ in range(300)]
    one_pass = Chain()
    one_pass.feed(lines)
    split = Chain()
    bounds = [0] + sorted(cuts) + [len(lines)]
    partials = [split.partial(lines[a:b]) for a, b in zip(bounds, bounds[1:])]
    rng.shuffle(partials)                        # as parser processes may deliver them
    for partial in partials:
        split.agg.handle(partial)
    expected, got = values(one_pass.agg.flush()), values(split.agg.flush())
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-9 * max(1, abs(value))


def test_key_parameters_are_quoted_for_zabbix():
    assert zabbix_key_param(200) == "200"
    assert zabbix_key_param("/a,b") == '"/a,b"'
    assert zabbix_key_param('say "hi"') == '"say \\"hi\\""'
    assert zabbix_key_param(None) == "-"


def test_a_field_read_by_several_parts_of_a_metric_is_extracted_once():
    metric = Metric("s[{status}]", "count", by="status", where=compile_filter("status >= 300", NUMERIC))
    chain = Chain([metric])
    chain.feed([line(0, 404), line(1, 200), line(2, 200, up="0.1, 0.2")])   # the last: regex path
    assert values(chain.agg.flush()) == {(0, "s[404]"): 1}


def test_late_current_counts_late_lines_in_the_oldest_open_window_and_as_late():
    metrics = [Metric("requests", "count"), Metric("rt.max", "max", field="request_time")]
    chain = Chain(metrics, lateness=10)
    chain.agg.late = "current"
    chain.feed([line(0), line(59), line(135)])   # closes 0 and 60: 120 is the oldest open
    chain.feed([line(30, rt="9.000"), line(61)])  # both late
    assert chain.agg.counters.late == 2
    got = values(chain.agg.flush())
    assert got[(120, "requests")] == 3 and got[(120, "rt.max")] == 9.0
    assert sum(v for (_, k), v in got.items() if k == "requests") == 3   # window 0 was sent before


def test_late_drop_is_the_default():
    chain = Chain(METRICS[:1], lateness=0)
    chain.feed([line(0), line(70)])
    chain.feed([line(5)])
    assert chain.agg.counters.late == 1
    assert values(chain.agg.flush()) == {(60, "requests"): 1}


def test_odd_timestamps_open_no_window_and_do_not_move_the_watermark():
    now = 1_800_000_000
    metrics = [Metric("requests", "count")]
    parser = Parser("in", FMT, metrics, 60, 65536, oldest=662688000)
    agg = Aggregator("in", metrics, 60, 10, max_skew=3600, clock=lambda: now)

    def feed(seq, stamps):
        data = b"".join(line(t) + b"\n" for t in stamps)
        return agg.handle(parser.handle(LineBatch("in", seq, "/x", FileId(1, 2, 0, ""), data, 0, 0)))

    feed(1, [now - 30, 5, now - 20])                  # 1970: set aside by the parser
    feed(2, [now + 2 * 3600])                         # two hours ahead of the wall clock
    feed(3, [now - 10, now + 3 * 3600, now - 9])      # in one batch with good lines
    assert agg.counters.odd_time == 3
    assert sorted(agg.open) == [(now - 30) // 60 * 60]   # no window of their own
    assert agg.newest == now - 9 and agg.counters.late == 0    # the newest accepted line
    assert values(agg.flush()) == {((now - 30) // 60 * 60, "requests"): 4}


def test_lines_without_a_time_are_odd_not_unmatched():
    """Apache's '-' for the time (a line of dashes, %400t): parsed, in no window, odd_time."""
    metrics = [Metric("requests", "count"), Metric("bytes", "sum", field="body_bytes_sent")]
    fmt = get_format("apache_common")
    data = (b'1.2.3.4 - - [01/Aug/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 7\n'
            b"- - - - - - -\n"
            b'- - - [-] "-" - -\n'
            b'1.2.3.4 - - - "GET / HTTP/1.0" 200 9\n'
            b"garbage\n")
    for oldest in (662688000, None):
        parser = Parser("in", fmt, metrics, 60, 65536, oldest=oldest)
        agg = Aggregator("in", metrics, 60, 10, max_skew=3600, clock=lambda: 807249601)
        partial = parser.handle(LineBatch("in", 1, "/x", FileId(1, 2, 0, ""), data, 0, 0))
        assert (partial.lines, partial.unmatched, partial.odd_time) == (5, 1, 3)
        assert partial.newest == 807249601
        agg.handle(partial)
        assert agg.counters.odd_time == 3 and agg.counters.unmatched == 1
        assert values(agg.flush()) == {(807249600, "requests"): 1, (807249600, "bytes"): 7}
    only_timeless = Parser("in", fmt, metrics, 60, 65536, oldest=662688000).handle(
        LineBatch("in", 1, "/x", FileId(1, 2, 0, ""), b"- - - - - - -\n", 0, 0))
    assert (only_timeless.odd_time, only_timeless.windows, only_timeless.newest) == (1, {}, None)


def test_replay_sets_aside_only_the_reset_clock():
    """Replays have no wall clock to compare with: an old or out-of-order file is fine."""
    metrics = [Metric("requests", "count")]
    parser = Parser("in", FMT, metrics, 60, 65536, oldest=662688000)
    agg = Aggregator("in", metrics, 60, NEVER, max_skew=3600, clock=lambda: 0)
    data = b"".join(line(t) + b"\n" for t in (807249600, 0, 2_000_000_000))
    agg.handle(parser.handle(LineBatch("in", 1, "/x", FileId(1, 2, 0, ""), data, 0, 0)))
    assert agg.counters.odd_time == 1 and sorted(agg.open) == [807249600, 1999999980]


def test_the_input_keys_reach_the_stages():
    from plogd.config import from_data
    from plogd.stages.aggregate import AggregateStage
    from plogd.stages.parse import ParseStage
    config = from_data("<test>", {"inputs": [{
        "name": "x", "path": "/x", "format": "nginx_timed", "late": "current", "max_skew": 60,
        "rewrite": [{"field": "path", "match": "^/a", "replace": "/b"}],
        "metrics": [{"key": "n[{path}]", "type": "count", "by": "path"}]}]})
    follow = AggregateStage(config.inputs, 60).aggregators["x"]
    assert (follow.late, follow.max_skew, follow.lateness) == ("current", 60, 10)
    assert AggregateStage(config.inputs, 60, replay=True).aggregators["x"].lateness is NEVER
    parser = ParseStage(config.inputs, 60, 1000).parsers["x"]
    assert [r.field for r in parser.rewrite_first] == ["path"] and parser.oldest == 662688000


def test_self_monitoring_values_once_per_interval():
    from plogd.monitoring import Monitor, values
    chain = Chain(METRICS[:1], lateness=10)
    chain.feed([line(100), b"garbage"])
    stats = {"in": {"bytes_behind": 7, "rotations": 1, "truncations": 0, "missing": 0,
                    "files": 1}}
    monitor = Monitor(60, lambda: stats, restarts=2)
    first = monitor.due(130.5, {"in": chain.agg})
    assert first.start == 120 and monitor.due(150, {"in": chain.agg}) is None
    got = {v.key: v.value for v in first.values}
    assert got["plogd.heartbeat"] == 130 and got["plogd.restarts"] == 2
    assert (got["plogd.lines[in]"], got["plogd.unmatched[in]"]) == (2, 1)
    assert got["plogd.lag[in]"] == 30.5 and got["plogd.bytes_behind[in]"] == 7
    assert monitor.due(180, {"in": chain.agg}).start == 180
    assert {v.key: v.value for v in values(0, {}, {}, 0)} == {"plogd.heartbeat": 0, "plogd.restarts": 0}


def _follow(now, lateness=10):
    """One path followed with a wall clock `now`: feed(stamps) merges a batch of it."""
    metrics = [Metric("requests", "count")]
    parser = Parser("in", FMT, metrics, 60, 65536, oldest=662688000)
    agg = Aggregator("in", metrics, 60, lateness, max_skew=3600, clock=lambda: now)
    seq = iter(range(1, 1000))

    def feed(stamps):
        data = b"".join(line(t) + b"\n" for t in stamps)
        return agg.handle(parser.handle(LineBatch("in", next(seq), "/x", FileId(1, 2, 0, ""),
                                                  data, 0, 0)))
    return agg, feed


def test_a_jump_ahead_is_held_until_the_lines_go_there():
    """After a quiet hour the lines resume later: the first one alone is held (it may be an
    outlier), the next batch confirms it and the old windows close; nothing is odd."""
    t0 = 1_700_000_000 // 60 * 60
    agg, feed = _follow(now=t0 + 86400)
    feed([t0, t0 + 1])
    assert feed([t0 + 7200]) == [] and agg.newest == t0 + 1 and agg.held
    closed = feed([t0 + 7201, t0 + 7202])
    assert [w.start for w in closed] == [t0] and agg.newest == t0 + 7202 and not agg.held
    # a line after the jump confirms it at once; the batch's last line waits for the next
    closed = feed([t0 + 7230, t0 + 9000, t0 + 9100])
    assert [w.start for w in closed] == [t0 + 7200] and agg.newest == t0 + 9000
    assert [w[0] for w in agg.held["/x"]] == [t0 + 9060]
    assert agg.counters.odd_time == 0 and agg.counters.late == 0


def test_the_very_first_lines_ahead_of_the_wall_clock_are_held_then_confirmed():
    """No watermark yet when the first lines ever are held (a writer whose clock is ahead):
    the next batch, or the idle wall clock, confirms them (they once raised TypeError on
    comparing the missing watermark, found by mypy)."""
    now = 1_800_000_000
    agg, feed = _follow(now)
    assert feed([now + 600]) == [] and agg.held and agg.newest is None
    assert feed([now + 601, now + 602]) == [] and not agg.held and agg.newest == now + 602
    assert values(agg.flush()) == {(now + 600, "requests"): 3}
    agg, feed = _follow(now)
    feed([now + 600])
    assert values(agg.tick(now + 700)) == {(now + 600, "requests"): 1}
    assert not agg.held and agg.newest == now + 600


def test_a_held_window_is_confirmed_by_the_idle_wall_clock_and_kept_in_the_checkpoint():
    now = 1_800_000_000
    agg, feed = _follow(now)
    feed([now - 30])
    feed([now + 600])                                 # ahead of the wall clock: held
    restored = Aggregator("in", agg.metrics, 60, 10, max_skew=3600, clock=lambda: now)
    restored.restore(json.loads(json.dumps(agg.snapshot())))
    assert restored.held == agg.held and restored.tick(now) == [] and restored.held
    closed = restored.tick(now + 700)                 # the log stayed quiet: it was right
    assert not restored.held and restored.counters.odd_time == 0
    assert values(closed) == {((now - 30) // 60 * 60, "requests"): 1,
                              ((now + 600) // 60 * 60, "requests"): 1}


def test_the_first_lines_ever_held_ahead_are_confirmed_by_later_lines_or_the_clock():
    """No watermark yet: the first line is ahead of the wall clock by more than `jump`, so it
    is held; a later batch (or the idle clock) confirms it without a watermark to compare."""
    now = 1_800_000_000
    agg, feed = _follow(now, lateness=0)
    feed([now + 120])
    assert agg.held and agg.newest is None
    feed([now + 60])                                  # goes there: confirmed
    assert not agg.held and agg.newest == now + 120 and agg.counters.odd_time == 0
    agg, feed = _follow(now, lateness=0)
    feed([now + 120])
    agg.tick(now + 200)                               # the clock reached it: confirmed
    assert not agg.held and agg.newest == now + 120


@settings(max_examples=60, deadline=None)
@given(lateness=st.integers(0, 150), offsets=st.lists(st.integers(-400, 900), min_size=1,
                                                      max_size=6), start=st.integers(0, 400))
def test_an_idle_tick_between_two_scheduled_ones_would_change_nothing(lateness, offsets, start):
    """The idle reader ticks only at next_tick's times (and when it sent batches): a tick at
    any second in between would close no window and confirm no held one."""
    now = 1_800_000_000
    agg, feed = _follow(now, lateness)
    for offset in offsets:
        feed([now + offset])            # some windows open, some held (ahead of the clock)
    specs = [SimpleNamespace(lateness=lateness)]
    t = now + start
    agg.tick(t)
    for _ in range(3):
        due = next_tick(specs, 60, t + 0.5)
        assert due > t
        for second in range(t + 1, due):
            state = (dict(agg.open), json.dumps(agg.held), agg.closed_before)
            assert agg.tick(second + 0.5) == []
            assert (dict(agg.open), json.dumps(agg.held), agg.closed_before) == state
        agg.tick(due)
        t = due


def test_next_tick_is_the_first_window_start_or_close_after_now():
    specs = [SimpleNamespace(lateness=10), SimpleNamespace(lateness=90)]
    assert next_tick(specs, 60, 1000.5) == 1020          # a window starts (held ones)
    assert next_tick(specs, 60, 1020.0) == 1030          # one closes: 960 + 60 + 10
    assert next_tick(specs, 60, 1045.0) == 1050          # 900 + 60 + 90


def test_the_aggregate_stage_says_how_long_it_may_wait_for_a_message():
    """--multi's aggregator waits for a message at most until a commit is due, so a line
    is checkpointed within COMMIT_EVERY of the last commit without any tick to wake it."""
    from plogd.config import from_data
    from plogd.stages.aggregate import AggregateStage
    config = from_data("<test>", {"inputs": [{
        "name": "in", "path": "/x", "format": "nginx_timed",
        "metrics": [{"key": "n", "type": "count"}]}]})
    stage = AggregateStage(config.inputs, 60)
    parser = Parser("in", FMT, [Metric("n", "count")], 60, 65536)
    every = AggregateStage.COMMIT_EVERY
    for seq in (1, 2):       # the first batch of a file is committed at once (a new file)
        assert stage.take_commit(force=True) is not None
        assert stage.commit_due_in() == every             # nothing waits
        stage.handle(parser.handle(LineBatch("in", seq, "/x", FileId(1, 2, 0, ""),
                                             line(100) + b"\n", 0, 0)))
    assert 0 < stage.commit_due_in() <= every and stage.take_commit() is None
    stage._committed_at -= every                           # COMMIT_EVERY has passed
    assert stage.commit_due_in() == 0 and stage.take_commit() is not None
