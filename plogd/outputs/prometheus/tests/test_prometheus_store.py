"""The store of last windows and what it exposes (plogd/outputs/prometheus/store.py): the
exposition text, newer windows replacing older ones, expiry, bounded series."""
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from plogd.outputs.prometheus.store import SeriesStore

CLOCK = 1795976400                              # a window's start, a multiple of 60


def record(metric, value, clock=CLOCK, group=None, q=None, input="nginx", host="web01"):
    r = {"host": host, "key": metric, "clock": clock, "ns": 0, "value": value,
         "input": input, "metric": metric}
    if group is not None:
        r["group"] = group
    if q is not None:
        r["q"] = q
    return r


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def store(prefix="", expire=600, clock=None):
    return SeriesStore(prefix, 60, expire, clock or FakeClock())


def exposition(s: SeriesStore) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(s)
    return generate_latest(registry).decode()


def samples(s: SeriesStore) -> dict:
    """{(name, ((label, value), ...)): value} of what a scrape would see."""
    return {(m.name, tuple(sorted(x.labels.items()))): x.value
            for m in s.collect() for x in m.samples}


def test_the_exposition_of_a_window():
    s = store(prefix="plogd")
    s.update([record("nginx.requests", 1234),
              record("nginx.status", 1200, group={"status": 200}),
              record("nginx.status", 34, group={"status": 500}),
              record("nginx.request_time", 0.012, q=50),
              record("nginx.request_time", 0.25, q=99.9)])
    assert exposition(s) == """\
# HELP plogd_nginx_request_time plogd metric nginx.request_time (input nginx): value of the last closed 60 s window
# TYPE plogd_nginx_request_time gauge
plogd_nginx_request_time{host="web01",input="nginx",quantile="0.5"} 0.012
plogd_nginx_request_time{host="web01",input="nginx",quantile="0.999"} 0.25
# HELP plogd_nginx_requests plogd metric nginx.requests (input nginx): value of the last closed 60 s window
# TYPE plogd_nginx_requests gauge
plogd_nginx_requests{host="web01",input="nginx"} 1234.0
# HELP plogd_nginx_status plogd metric nginx.status (input nginx): value of the last closed 60 s window
# TYPE plogd_nginx_status gauge
plogd_nginx_status{host="web01",input="nginx",status="200"} 1200.0
plogd_nginx_status{host="web01",input="nginx",status="500"} 34.0
"""


def test_a_newer_window_replaces_the_groups_of_the_older_one():
    s = store()
    s.update([record("nginx.status", 10, group={"status": 200}),
              record("nginx.status", 3, group={"status": 500})])
    s.update([record("nginx.status", 12, CLOCK + 60, group={"status": 200})])
    # no 500 in the newer window: its 3 of a minute ago would be a wrong reading
    assert samples(s) == {
        ("nginx_status", (("host", "web01"), ("input", "nginx"), ("status", "200"))): 12}


def test_a_window_delivered_in_several_batches_is_whole():
    s = store()
    s.update([record("nginx.status", 10, group={"status": 200})])
    s.update([record("nginx.status", 3, group={"status": 500})])
    assert len(samples(s)) == 2


def test_a_record_of_an_older_window_is_not_exposed_but_counted():
    s = store()
    s.update([record("nginx.requests", 7, CLOCK + 60)])
    s.update([record("nginx.requests", 5, CLOCK)])          # e.g. a replayed spool
    assert list(samples(s).values()) == [7]
    assert s.older == 1


def test_a_window_resent_after_a_restart_leaves_the_same_values():
    s = store()
    batch = [record("nginx.requests", 7), record("nginx.request_time", 0.2, q=95)]
    s.update(batch)
    before = samples(s)
    s.update(batch)
    assert samples(s) == before and s.older == 0


def test_inputs_and_hosts_are_separate_series_of_one_metric():
    s = store()
    s.update([record("nginx.requests", 1, input="a"),
              record("nginx.requests", 2, CLOCK + 60, input="b"),
              record("nginx.requests", 3, host="web02", input="a")])
    assert sorted(samples(s).values()) == [1, 2, 3]
    help_lines = [line for line in exposition(s).splitlines() if line.startswith("# HELP")]
    assert help_lines == ["# HELP nginx_requests plogd metric nginx.requests (input a, b): "
                          "value of the last closed 60 s window"]


def test_plogd_own_values_per_input_do_not_hide_each_other():
    # plogd.lines[nginx] and plogd.lines[apache] of different windows: both are the last
    s = store()
    s.update([record("plogd.lines", 100, CLOCK + 60, group={"input": "nginx"}, input="plogd"),
              record("plogd.lines", 50, CLOCK, group={"input": "apache"}, input="plogd")])
    assert samples(s) == {
        ("plogd_lines", (("host", "web01"), ("input", "apache"))): 50,
        ("plogd_lines", (("host", "web01"), ("input", "nginx"))): 100}


def test_a_metric_not_updated_for_expire_seconds_is_dropped():
    clock = FakeClock()
    s = store(expire=600, clock=clock)
    s.update([record("nginx.requests", 1), record("nginx.rps", 2)])
    clock.t += 590
    s.update([record("nginx.requests", 3, CLOCK + 600)])
    clock.t += 20               # nginx.rps: 610 s without a value, nginx.requests: 20 s
    assert list(samples(s)) == [("nginx_requests", (("host", "web01"), ("input", "nginx")))]
    assert s.series_count() == 1          # dropped from memory, not only from the scrape
    clock.t += 600
    assert samples(s) == {} and s.series_count() == 0


def test_the_series_are_bounded_by_the_groups_of_one_window():
    s = store()
    for window in range(500):                 # a top: 10 metric whose groups all change
        s.update([record("nginx.hits", i, CLOCK + 60 * window, group={"uri": f"/{window}/{i}"})
                  for i in range(10)] + [record("nginx.hits", 1, CLOCK + 60 * window,
                                                group={"uri": "other"})])
    assert s.series_count() == 11


def test_records_not_of_plogd_shape_are_refused_and_the_others_shown():
    s = store()
    good = record("nginx.requests", 5)
    bad = [{"host": "web01", "key": "nginx.requests", "clock": CLOCK, "value": 1},  # no metric
           record("nginx.requests", "12"), record("nginx.requests", True),
           record("nginx.requests", 1, clock="soon"), record("nginx.status", 1, group=["x"]),
           "not a record"]
    assert s.update(bad + [good]) == bad
    assert list(samples(s).values()) == [5]


def test_label_values_are_escaped_in_the_exposition():
    s = store()
    uri = 'a "b" \\c\nd ☃'
    s.update([record("nginx.hits", 1, group={"uri": uri})])
    [family] = text_string_to_metric_families(exposition(s))
    assert family.samples[0].labels["uri"] == uri
