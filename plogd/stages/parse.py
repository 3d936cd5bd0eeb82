"""parse: lines -> partial aggregates per window. Never one message per line."""
from __future__ import annotations

from ..formats import Columns, LogFormat
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
        self.extract = fmt.batch_extractor(self.names)

    def handle(self, batch: LineBatch) -> Partial:
        columns, unmatched = self.extract(batch.lines)
        if unmatched:
            _log.warning("unmatched", "%s: %d line(s) of %s do not match the format",
                         self.input, unmatched, batch.path)
        windows = {}
        for window, window_columns in self._by_window(columns).items():
            n = len(window_columns["timestamp"])
            windows[window] = (n, [m.fold(window_columns, n) for m in self.metrics])
        stamps = columns["timestamp"]
        return Partial(self.input, windows, max(stamps) if stamps else None,
                       lines=len(batch.lines), unmatched=unmatched, too_long=batch.too_long)

    def _by_window(self, columns: Columns) -> dict[int, Columns]:
        stamps, interval = columns["timestamp"], self.interval
        if not stamps:
            return {}
        first = min(stamps) // interval * interval
        if max(stamps) < first + interval:        # the usual case: one window
            return {first: columns}
        rows: dict[int, list[int]] = {}
        for i, t in enumerate(stamps):
            rows.setdefault(t - t % interval, []).append(i)
        return {window: {name: [column[i] for i in indexes] for name, column in columns.items()}
                for window, indexes in rows.items()}
