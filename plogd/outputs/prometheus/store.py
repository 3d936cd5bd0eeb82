"""The last closed window of each series, kept for the scrapes and the textfile.

Records are grouped into families: the values of one metric for one host and input. A family
holds the series of its newest window only: when a record of a newer window arrives, the
family's older series go. A `by:` group absent from the newest window had no line in it, so
its older value would be a wrong reading (the 500s of ten minutes ago shown as now); gone, it
is marked stale in Prometheus at the next scrape. The number of series is thus bounded by
the config (`top:` groups, `q:` percents), and a family not updated for `expire` seconds
(an input removed, a metric without values) is dropped whole.

plogd's own values (input "plogd": plogd.lines[nginx], plogd.output.*[zabbix]) are not
windows of one log: each of their series is its own family, so that the value for one input
never hides the value for another whose window closed earlier.

`update` runs in the event loop, `collect` in the HTTP server's thread: a lock guards the
dicts, held only to copy them.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .naming import help_text, metric_name
from .naming import labels as record_labels

Labels = tuple[tuple[str, str], ...]


def well_formed(record) -> bool:
    return (isinstance(record, dict)
            and all(isinstance(record.get(k), str) for k in ("metric", "host", "input"))
            and all(isinstance(record.get(k), (int, float))
                    and not isinstance(record.get(k), bool) for k in ("clock", "value"))
            and isinstance(record.get("group") or {}, dict))


@dataclass
class Family:
    clock: int                          # the window's start
    updated: float                      # monotonic time of the last record
    metric: str                         # plogd's name, for HELP
    input: str
    series: dict[Labels, float] = field(default_factory=dict)


class SeriesStore(Collector):
    def __init__(self, prefix: str, interval: int, expire: float, now):
        self.prefix = prefix
        self.interval = interval
        self.expire = expire
        self.now = now                  # a monotonic clock (injected by the tests)
        self.older = 0                  # records of a window older than their family's
        self._families: dict[tuple, Family] = {}
        self._lock = threading.Lock()

    def update(self, records: list[dict]) -> list[dict]:
        """Take a batch; returns the records that cannot be shown (not a record of plogd's
        shape: a metric, host, input, clock and a numeric value)."""
        now = self.now()
        refused = []
        with self._lock:
            for record in records:
                if not well_formed(record):
                    refused.append(record)
                    continue
                name = metric_name(record["metric"], self.prefix)
                labels = record_labels(record)
                if record["input"] == "plogd":
                    key = (name, *labels.items())
                else:
                    key = (name, labels["host"], labels["input"])
                family = self._families.get(key)
                clock = record["clock"]
                if family is None or clock > family.clock:
                    family = self._families[key] = Family(clock, now, record["metric"],
                                                          record["input"])
                elif clock < family.clock:
                    self.older += 1
                    continue
                family.updated = now
                family.series[tuple(labels.items())] = record["value"]
            self._expire(now)
        return refused

    def _expire(self, now: float) -> None:
        for key in [k for k, f in self._families.items() if now - f.updated > self.expire]:
            del self._families[key]

    def series_count(self) -> int:
        with self._lock:
            return sum(len(f.series) for f in self._families.values())

    def collect(self):
        """The metric families, sorted by name: called by prometheus_client at each scrape
        and each write of the textfile."""
        by_name: dict[str, list[Family]] = {}
        with self._lock:
            self._expire(self.now())
            for (name, *_), family in self._families.items():
                by_name.setdefault(name, []).append(replace(family, series=dict(family.series)))
        for name in sorted(by_name):
            families = by_name[name]
            gauge = GaugeMetricFamily(name, help_text(sorted({f.metric for f in families}),
                                                      sorted({f.input for f in families}),
                                                      self.interval))
            for family in families:
                for labels, value in sorted(family.series.items()):
                    # no timestamp: see the decision in plogd/outputs/prometheus/__init__.py
                    gauge.add_sample(name, dict(labels), value)
            yield gauge
