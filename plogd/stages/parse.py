"""parse: lines -> partial aggregates per window. Never one message per line."""
from __future__ import annotations

from ..formats import LogFormat
from ..log import RateLimitedLog
from ..messages import LineBatch, Partial
from ..metrics import Metric

_log = RateLimitedLog("plogd.parse")


def fields_needed(metrics: list[Metric]) -> list[str]:
    """timestamp first, then every field a metric reads, each once."""
    names = ["timestamp"]
    for metric in metrics:
        names += [n for n in metric.fields if n not in names]
    return names


class Parser:
    def __init__(self, input_name: str, fmt: LogFormat, metrics: list[Metric], interval: int):
        self.input = input_name
        self.metrics = metrics
        self.interval = interval
        self.names = fields_needed(metrics)
        self.extract = fmt.extractor(self.names)

    def handle(self, batch: LineBatch) -> Partial:
        by_window: dict[int, list[tuple]] = {}
        unmatched = 0
        extract, interval = self.extract, self.interval
        for line in batch.lines:
            row = extract(line)
            if row is None:
                unmatched += 1
                _log.warning("unmatched", "%s: line does not match the format: %.200r",
                             self.input, line)
                continue
            window = row[0] - row[0] % interval
            rows = by_window.get(window)
            if rows is None:
                rows = by_window[window] = []
            rows.append(row)
        windows = {}
        newest = None
        for window, rows in by_window.items():
            columns = dict(zip(self.names, zip(*rows)))
            windows[window] = (len(rows), [m.fold(columns, len(rows)) for m in self.metrics])
            window_newest = max(columns["timestamp"])
            newest = window_newest if newest is None else max(newest, window_newest)
        return Partial(self.input, windows, newest, lines=len(batch.lines),
                       unmatched=unmatched, too_long=batch.too_long)
