"""plogd as a library: parse log lines into typed records, and replay log files into windows.

    import plogd

    for record in plogd.parse_file("access.log", format="nginx_timed"):
        if record is not None:                  # None: a line the format does not match
            print(record["status"], record["request_time"], record["timestamp"])

    result = plogd.replay(["access.log"], format="nginx_timed", interval=60, metrics=[
        {"key": "requests", "type": "count"},
        {"key": "p95", "type": "percentile", "field": "request_time", "q": [95]}])
    for window in result.windows:
        print(window.clock, window.values["requests"], window.values["p95"])

The format is given as in a configuration's input: `format=` (a built-in's or a plugin's
name, `regex:...`, or `json` with `fields=`), `log_format=` (nginx's own log_format string)
or `apache_format=` (Apache's LogFormat string), with the same companions (`time_locale`,
`time_format`, `timezone`, `time_field`). The metrics are the configuration's `metrics:`
list. A mistake raises ConfigError, whose message names the key and what is accepted.

A record maps each field of the format to its typed value: an int (`status`, byte counts),
a float (`request_time`, in seconds), a string, or None when the line logs '-' or nothing
for it; `timestamp` is the line's time in epoch seconds (an int, UTC), `status_class`
('2xx'...) and the request's `method`, `path` and `protocol` are derived from the logged
fields. `describe(format=...)` lists a format's fields and their types.

`replay` runs plogd's own replay (plogd.runner.replay: the parse and aggregate stages of
the daemon), so its values equal what `plogd replay` prints and what the daemon sends; it
logs the lines the format does not match as the daemon does (rate-limited, to the logger
"plogd"), where parse() gives None for them.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import DEFAULT_MAX_LINE, ConfigError, format_from, from_data
from .formats import LogFormat
from .sources import check_readable, replay_order
from .stages.read import read_file, split_lines

Value = int | float | str | None
Record = dict[str, Value]
PathLike = str | os.PathLike[str]

_WHERE = "plogd.api"          # what a mistake's message starts with


@dataclass(frozen=True)
class Window:
    """One closed window: its start (epoch seconds, a multiple of the interval) and each
    series' value by its key, as the metric's `key:` lays it out (`status[{status}]` ->
    `status[200]`, `status[503]`, ...)."""
    clock: int
    values: dict[str, int | float]


@dataclass(frozen=True)
class ReplayResult:
    windows: list[Window]                  # oldest first
    records: list[dict[str, Any]]          # the value records, as plogd writes them
    lines: int                             # lines read
    unmatched: int                         # lines the format does not match
    too_long: int                          # lines over max_line_length (skipped)
    odd_time: int                          # lines without a time, or an impossible one
    fields: dict[str, str] = field(default_factory=dict)   # the format's fields: type


def _clean(error: ConfigError) -> ConfigError:
    """The config loader's message, without the file line and the input's place that a
    caller of the API did not write."""
    text = str(error).removeprefix(f"{_WHERE}:1: ").replace("inputs[0].", "")
    return ConfigError(f"{_WHERE}: {text}")


def load_format(**format_keys: Any) -> LogFormat:
    """The format of the keys as an input gives them: format=, log_format= or
    apache_format=, and their companions. Made once per name for a named format."""
    try:
        return format_from(_WHERE, format_keys)
    except ConfigError as e:
        raise _clean(e) from None


def describe(**format_keys: Any) -> dict[str, str]:
    """Field name -> its type ('int', 'float', 'string', 'epoch seconds', ...)."""
    return dict(load_format(**format_keys).fields)


def parse(lines: Iterable[str | bytes], **format_keys: Any) -> Iterator[Record | None]:
    """One typed record per line, None for a line the format does not match. A line may
    end with its newline."""
    fmt = load_format(**format_keys)
    for line in lines:
        raw = line.encode() if isinstance(line, str) else line
        yield fmt.parse(raw.rstrip(b"\n"))


def parse_file(path: PathLike, max_line: int = DEFAULT_MAX_LINE,
               **format_keys: Any) -> Iterator[Record | None]:
    """parse() over a file's lines (`-`: standard input; gzip, bzip2, xz and zstd files
    are decompressed). A line longer than `max_line` bytes is skipped, as plogd does."""
    fmt = load_format(**format_keys)
    path = os.fspath(path)
    check_readable(path)
    for batch in read_file("api", path, max_line):
        for raw in split_lines(batch.data):
            yield fmt.parse(raw)


def replay(paths: Iterable[PathLike], metrics: list[dict[str, Any]], interval: int = 60,
           host: str = "plogd", **format_keys: Any) -> ReplayResult:
    """The windows of the files (a rotation set is read oldest first), with `metrics` as in
    a configuration's input. Windows stay open until the end, so every line counts in its
    window whatever the order of the lines."""
    from .runner import replay as run_replay
    ordered = replay_order([os.fspath(p) for p in paths])
    for path in ordered:
        check_readable(path)
    data = {"interval": interval,
            "inputs": [{"name": "api", "path": ordered[0] if ordered else "-",
                        "metrics": metrics, **format_keys}]}
    try:
        config = from_data(_WHERE, data)
    except ConfigError as e:
        raise _clean(e) from None
    config.host = host
    spec = config.inputs[0]
    records, aggregate = run_replay(config, spec, ordered)
    windows: dict[int, dict[str, int | float]] = {}
    for record in records:
        windows.setdefault(record["clock"], {})[record["key"]] = record["value"]
    counters = aggregate.aggregators[spec.name].counters
    return ReplayResult([Window(clock, values) for clock, values in sorted(windows.items())],
                        records, counters.lines, counters.unmatched, counters.too_long,
                        counters.odd_time, dict(spec.format.fields))


__all__ = ["ConfigError", "Record", "ReplayResult", "Value", "Window", "describe",
           "load_format", "parse", "parse_file", "replay"]
