"""parse: lines -> partial aggregates per window. Never one message per line.

Between extracting the typed columns and folding them into the metrics' states, the parser
  - derives `uri` (the path without its query string) when the format logs no `uri`;
  - applies the input's `rewrite:` rules (a regex substitution on a string field, e.g.
    /items/123 -> /items/{id}), once per distinct value of the batch;
  - joins the lines the input's `continuation:` rule matches to the line before them (a PHP
    stack trace in an error log): one entry, its message holding them after newlines;
  - sets aside lines stamped before 1991-01-01 (before the web: a reset clock, e.g. 1970),
    and lines without a time (Apache's '-'), counted in `odd_time`: they open no window and
    do not move the watermark. (Lines stamped in the future are set aside by the aggregator,
    against the wall clock: see max_skew.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..formats import Columns, LogFormat
from ..formats.compiled import min_max
from ..formats.detect import first_failure
from ..log import RateLimitedLog
from ..files import Position
from ..heap import keep_batch_buffers
from ..messages import LineBatch, Partial
from ..metrics import Metric
from ..userregex import UserRegex, take_timeouts
from .read import split_lines

_log = RateLimitedLog("plogd.parse")

SAMPLE_BYTES = 200         # an unmatched line is logged cut to this: a log line may be 1 MiB
OLDEST = 662688000         # 1991-01-01T00:00:00Z: no web server logged earlier: a broken clock


@dataclass(frozen=True)
class Rewrite:
    """`rewrite:` rule of an input: in `field`, `pattern` (a user regex, in bounded time) is
    replaced by `replace` (re.sub's template: \\1 or \\g<name> for groups; braces are
    literal)."""
    field: str
    pattern: UserRegex
    replace: str


def input_fields(fmt: LogFormat) -> dict[str, str]:
    """The fields metrics may use: the format's, and `uri` derived from `path`."""
    fields = dict(fmt.fields)
    if "uri" not in fields and "path" in fields:
        fields["uri"] = "string"
    return fields


def fields_needed(metrics: list[Metric]) -> list[str]:
    """timestamp first, then every field a metric reads, each once."""
    return list(dict.fromkeys(["timestamp"] + [n for m in metrics for n in m.fields]))


def _mapped(column: list, convert) -> list:
    """convert applied to each distinct value of the column once (None stays None)."""
    table = {v: convert(v) for v in set(column) if v is not None}
    table[None] = None
    return list(map(table.__getitem__, column))


def sample(line: bytes) -> str:
    """A log line as it may be logged: cut to SAMPLE_BYTES, decoded, quoted, every control
    character (terminal escapes, newlines, bidi overrides) and invalid byte escaped."""
    text = repr(line[:SAMPLE_BYTES].decode("utf-8", "backslashreplace"))
    return text + (f" (cut, {len(line)} bytes)" if len(line) > SAMPLE_BYTES else "")


def _without_query(path: str) -> str:
    return path.partition("?")[0]


def join_continuations(lines: list[bytes], continues) -> list[bytes]:
    """Each line that `continues` (a regex's match) appended to the one before, after a
    newline. One that opens the batch continues a line of the batch before, already
    parsed: it is left out (read, but neither a record nor unmatched)."""
    joined: list[bytes] = []
    for line in lines:
        if continues(line) is None:
            joined.append(line)
        elif joined:
            joined[-1] += b"\n" + line
    return joined


class Parser:
    def __init__(self, input_name: str, fmt: LogFormat, metrics: list[Metric], interval: int,
                 max_line: int, rewrite: list[Rewrite] | tuple = (),
                 oldest: int | None = None, continuation: re.Pattern | None = None):
        self.input = input_name
        self.format = fmt
        # the first unmatched line of each interval is logged, with where it stops matching
        self.unmatched_log = RateLimitedLog("plogd.parse", burst=1, period=interval)
        self.metrics = metrics
        self.interval = interval
        self.max_line = max_line
        self.oldest = oldest      # earlier timestamps are odd (None: no check)
        self.continues = continuation.match if continuation is not None else None
        self.names = fields_needed(metrics)
        self.derive_uri = "uri" in self.names and "uri" not in fmt.fields
        extracted = [("path" if n == "uri" and self.derive_uri else n) for n in self.names]
        self.extract = fmt.batch_extractor(list(dict.fromkeys(extracted)))
        self.extract_time = fmt.batch_extractor(["timestamp"])
        used = [r for r in rewrite if r.field in self.names]     # others change nothing read
        self.rewrite_first = [r for r in used if not (self.derive_uri and r.field == "uri")]
        self.rewrite_uri = [r for r in used if self.derive_uri and r.field == "uri"]

    def handle(self, batch: LineBatch) -> Partial:
        # the compiled speedup cuts the lines itself; lines joined by a continuation rule
        # (error logs) take the Python path
        from_text = None if self.continues else getattr(self.extract, "from_text", None)
        extracted = from_text(batch.data, self.max_line) if from_text else None
        if extracted is None:
            lines, cut = self._lines(batch.data)
            read = len(lines) + cut
            if self.continues is not None:
                lines = join_continuations(lines, self.continues)
            columns, unmatched = self.extract(lines, batch.data)
        else:
            columns, unmatched, read, cut = extracted
        read += batch.too_long          # every line, the skipped ones included
        too_long = batch.too_long + cut
        if unmatched:
            self._log_unmatched(batch.data, unmatched, batch.path)
        self._derive(columns)
        columns, odd, span = self._set_odd_aside(columns)
        if odd:
            _log.warning("odd_time", "%s: %d line(s) of %s without a time ('-') or stamped "
                         "before 1991 (a reset clock?) are counted in odd_time, in no window",
                         self.input, odd, batch.path)
        windows = {}
        split = self._by_window(columns, span)
        for window, window_columns in split.items():
            n = len(window_columns["timestamp"])
            masks: dict = {}         # each `where:` once per window's columns
            windows[window] = (n, [m.fold(window_columns, n, masks) for m in self.metrics])
        slow = take_timeouts()    # lines over a user regex's time bound, in this batch
        if slow:
            _log.warning("regex_timeout", "%s: %d line(s) of %s took a user regex over its time "
                         "bound: counted in regex_timeout, taken as not matching",
                         self.input, slow, batch.path)
        window_newest = None
        if len(split) > 1:       # for the aggregator, should it set a window aside
            window_newest = {w: max(c["timestamp"]) for w, c in split.items()}
        return Partial(self.input, batch.path, batch.seq, windows,
                       span[1] if span else None, lines=read, unmatched=unmatched,
                       too_long=too_long,
                       position=Position(batch.file, batch.end, batch.mtime_ns, batch.real_path,
                                        batch.upcoming, batch.in_long_line), odd_time=odd,
                       window_newest=window_newest, regex_timeout=slow,
                       last=self._last_time(batch.data))

    def _last_time(self, data: bytes, look_back: int = 8) -> int | None:
        """The time of the batch's last line that has one: where its file's lines are now,
        for the aggregator's watermark (the columns do not keep the line order)."""
        oldest = float("-inf") if self.oldest is None else self.oldest
        for line in reversed(self._last_lines(data, look_back)):
            stamps = self.extract_time([line])[0]["timestamp"]
            if stamps and stamps[0] is not None and stamps[0] >= oldest:
                return stamps[0]
        return None

    def _last_lines(self, data: bytes, count: int) -> list[bytes]:
        """The last `count` of the lines _lines gives, without splitting the whole batch."""
        lines: list[bytes] = []
        end = len(data) - data.endswith(b"\n")     # no line after a final newline
        while data and end >= 0 and len(lines) < count:
            start = data.rfind(b"\n", 0, end) + 1
            if end - start <= self.max_line:
                lines.append(data[start:end])
            end = start - 1
        return lines[::-1]

    def _lines(self, data: bytes) -> tuple[list[bytes], int]:
        """The lines of a batch of at most max_line bytes, and the number of longer ones."""
        lines = split_lines(data)
        if lines and max(map(len, lines)) > self.max_line:
            kept = [line for line in lines if len(line) <= self.max_line]
            return kept, len(lines) - len(kept)
        return lines, 0

    def _log_unmatched(self, data: bytes, unmatched: int, path: str) -> None:
        """Once per interval: the count, and the first line that does not match (cut, with
        control characters escaped: a log line is written by clients) with where it stops
        matching, as `plogd parse` explains it."""
        suppressed = self.unmatched_log.admit(self.input)
        if suppressed is None:
            return
        failure = first_failure(self.format, self._lines(data)[0])
        first = f"; the first: {sample(failure[1])}: {failure[2]}" if failure else ""
        more = f" (and {suppressed} batch(es) with unmatched lines before)" if suppressed else ""
        self.unmatched_log.logger.warning(
            "%s: %d line(s) of %s do not match the format %s%s%s", self.input, unmatched,
            path, self.format.name, more, first)

    def _derive(self, columns: Columns) -> None:
        """Rewrites, then `uri` from the (rewritten) path, then the rewrites of `uri`."""
        for rule in self.rewrite_first:
            columns[rule.field] = _mapped(columns[rule.field],
                                          lambda v, r=rule: r.pattern.sub(r.replace, v))
        if self.derive_uri:
            columns["uri"] = _mapped(columns["path"], _without_query)
            for rule in self.rewrite_uri:
                columns["uri"] = _mapped(columns["uri"],
                                         lambda v, r=rule: r.pattern.sub(r.replace, v))

    def _set_odd_aside(self, columns: Columns) -> tuple[Columns, int, tuple | None]:
        """Lines without a time (None) or stamped before `oldest` (a reset clock): per line,
        so batch-independent. Also the (earliest, latest) time of the lines kept (None when
        none is), in one pass over the times."""
        stamps = columns["timestamp"]
        if not stamps:
            return columns, 0, None
        oldest = float("-inf") if self.oldest is None else self.oldest
        try:
            span = min_max(stamps)
            if span[0] >= oldest:      # the usual case: nothing odd
                return columns, 0, span
        except TypeError:       # None among them: no cost for batches without
            pass
        keep = [i for i, t in enumerate(stamps) if t is not None and t >= oldest]
        kept = {name: [column[i] for i in keep] for name, column in columns.items()}
        return kept, len(stamps) - len(keep), min_max(kept["timestamp"]) if keep else None

    def _by_window(self, columns: Columns, span: tuple | None) -> dict[int, Columns]:
        """The columns of each window (`span`: the earliest and latest time of the lines)."""
        if span is None:
            return {}
        stamps, interval = columns["timestamp"], self.interval
        first = span[0] // interval * interval
        if span[1] < first + interval:        # the usual case: one window
            return {first: columns}
        rows: dict[int, list[int]] = {}
        for i, t in enumerate(stamps):
            rows.setdefault(t - t % interval, []).append(i)
        return {window: {name: [column[i] for i in indexes] for name, column in columns.items()}
                for window, indexes in rows.items()}


class ParseStage:
    """The parse stage: each input's parser; the same object in every parser process."""

    def __init__(self, inputs, interval: int, max_line: int):
        keep_batch_buffers()
        self.parsers = {spec.name: Parser(spec.name, spec.format, spec.metrics, interval, max_line,
                                          getattr(spec, "rewrite", ()),
                                          OLDEST, getattr(spec, "continuation", None))
                        for spec in inputs}

    def handle(self, batch: LineBatch) -> Partial:
        return self.parsers[batch.input].handle(batch)
