"""parse: lines -> partial aggregates per window. Never one message per line."""
from __future__ import annotations

from ..formats import Columns, LogFormat
from ..log import RateLimitedLog
from ..files import Position
from ..messages import LineBatch, Partial
from ..metrics import Metric
from .read import split_lines

_log = RateLimitedLog("plogd.parse")


def fields_needed(metrics: list[Metric]) -> list[str]:
    """timestamp first, then every field a metric reads, each once."""
    return list(dict.fromkeys(["timestamp"] + [n for m in metrics for n in m.fields]))


class Parser:
    def __init__(self, input_name: str, fmt: LogFormat, metrics: list[Metric], interval: int,
                 max_line: int):
        self.input = input_name
        self.metrics = metrics
        self.interval = interval
        self.max_line = max_line
        self.names = fields_needed(metrics)
        self.extract = fmt.batch_extractor(self.names)

    def handle(self, batch: LineBatch) -> Partial:
        lines = split_lines(batch.data)
        read = len(lines) + batch.too_long     # every line, the skipped ones included
        too_long = batch.too_long
        if lines and max(map(len, lines)) > self.max_line:
            kept = [line for line in lines if len(line) <= self.max_line]
            too_long += len(lines) - len(kept)
            lines = kept
        columns, unmatched = self.extract(lines)
        if unmatched:
            _log.warning("unmatched", "%s: %d line(s) of %s do not match the format",
                         self.input, unmatched, batch.path)
        windows = {}
        for window, window_columns in self._by_window(columns).items():
            n = len(window_columns["timestamp"])
            windows[window] = (n, [m.fold(window_columns, n) for m in self.metrics])
        stamps = columns["timestamp"]
        return Partial(self.input, batch.path, batch.seq, windows,
                       max(stamps) if stamps else None, lines=read, unmatched=unmatched,
                       too_long=too_long,
                       position=Position(batch.file, batch.end, batch.mtime_ns, batch.real_path,
                                        batch.upcoming))

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


class ParseStage:
    """The parse stage: each input's parser; the same object in every parser process."""

    def __init__(self, inputs, interval: int, max_line: int):
        self.parsers = {spec.name: Parser(spec.name, spec.format, spec.metrics, interval, max_line)
                        for spec in inputs}

    def handle(self, batch: LineBatch) -> Partial:
        return self.parsers[batch.input].handle(batch)
