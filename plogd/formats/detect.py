"""Which format a log is in, how much of it a format matches, and where a line stops
matching: for `plogd detect FILE` and the match ratio `plogd parse` / `check` report, so a
wrong format is never a silent "0 records"."""
from __future__ import annotations

import logging
import re

from ..sources import open_log
from ..stages.read import LineCutter, split_lines
from . import FormatError, format_names, get_format
from .jsonlog import JsonFormat
from .logformat import LogFormat

_log = logging.getLogger("plogd")

SAMPLE_BYTES = 16 << 20    # detect and check read at most this much of a file
SAMPLE_CHUNK = 1 << 16


def read_sample(path: str, limit: int = 1000, max_line: int = 64 * 1024) -> list[bytes]:
    """The first `limit` non-empty lines of a file (`-`: standard input; compressed ones
    decompressed), without their line ends. Bounded as the reader is: a line longer than
    `max_line` is skipped, and at most SAMPLE_BYTES are read (a huge line, /dev/zero)."""
    cutter = LineCutter(max_line)
    lines: list[bytes] = []
    taken = 0
    with open_log(path) as source:
        while len(lines) < limit and taken < SAMPLE_BYTES:
            data = source.stream.read(SAMPLE_CHUNK)
            taken += len(data)
            complete = cutter.feed(data) if data else cutter.finish()
            lines += filter(None, (line.rstrip(b"\r") for line in split_lines(complete)))
            if not data:
                break
    return lines[:limit]


def match_ratio(fmt: LogFormat, lines: list[bytes]) -> float:
    """The share of `lines` the format matches (1.0 for no lines)."""
    if not lines:
        return 1.0
    if isinstance(fmt, JsonFormat):    # any object fits (a missing key is an absent field):
        stamps = fmt.batch_extractor(["timestamp"])(lines)[0]["timestamp"]   # one with a time
        return sum(t is not None for t in stamps) / len(lines)
    _, unmatched = fmt.batch_extractor([])(lines)
    return 1 - unmatched / len(lines)


def detect(lines: list[bytes], path: str = "") -> list[tuple[str, float]]:
    """(format, match ratio) for every named format (the built-ins, then the plugins'),
    best first. nginx's and Apache's combined (and common) formats match the same lines
    when the ident is '-': at such a tie the server that the lines or the file's path point
    to (server_hint) comes first, else nginx. A plugin's format that fails to build is left
    out (its error is logged)."""
    ratios = []
    for name in format_names():
        try:
            ratios.append((name, match_ratio(get_format(name), lines)))
        except FormatError as e:
            _log.warning("plogd: %s", e)
    hint = server_hint(lines, path) or "nginx"
    return sorted(ratios, key=lambda item: (-item[1], not item[0].startswith(hint)))


# Apache's %b writes '-' for no body; nginx's $body_bytes_sent writes 0
_APACHE_NO_BODY = re.compile(rb'" \d{3} -(?: |\r?$)')


def server_hint(lines: list[bytes], path: str = "") -> str | None:
    """'apache' or 'nginx' when the lines or the path tell which server wrote the log."""
    if any(_APACHE_NO_BODY.search(line) for line in lines):
        return "apache"
    for server, names in (("apache", ("apache", "httpd")), ("nginx", ("nginx",))):
        if any(name in path.lower() for name in names):
            return server
    return None


def first_failure(fmt: LogFormat, lines: list[bytes]) -> tuple[int, bytes, str] | None:
    """(index, line, explanation) of the first line the format does not match, or None."""
    for index, line in enumerate(lines):
        why = explain(fmt, line)
        if why is not None:
            return index, line, why
    return None


def explain(fmt: LogFormat, line: bytes) -> str | None:
    """None when the format matches the line; else where and why it does not, e.g.
    "column 74: expected ' ' then $body_bytes_sent (int), found b'x0 5123 ...' (after
    $status (int))"."""
    if fmt.parse(line) is not None:
        return None
    bad = fmt.invalid_value(line)
    if bad is not None:
        field, raw = bad
        return f"the layout matches, but {field} is not valid: {raw!r}"
    if isinstance(fmt, JsonFormat):
        return "not a JSON object"
    if not fmt.elements:
        return f"the regex of {fmt.name} does not match the line"
    elements = fmt.elements
    matched, end = _longest_match(elements, line)
    found = repr(line[end:end + 40]) if end < len(line) else "the end of the line"
    after = f" (after {elements[matched - 1][1]})" if matched else ""
    if matched == len(elements):
        return f"column {end + 1}: the format ends, the line goes on: {found}{after}"
    expected = " then ".join(label for _, label in elements[matched:matched + 2])
    return f"column {end + 1}: expected {expected}, found {found}{after}"


def _longest_match(elements: list[tuple[bytes, str]], line: bytes) -> tuple[int, int]:
    """(how many of the format's elements match the start of the line, where they end)."""
    matched, end = 0, 0
    for count in range(1, len(elements) + 1):
        m = re.compile(b"".join(regex for regex, _ in elements[:count]), re.S).match(line)
        if m is None:
            break
        matched, end = count, m.end()
    return matched, end


def time_misfit(fmt: LogFormat, field: str, layout, lines: list[bytes]) -> tuple[int, str] | None:
    """(line number, where it stops fitting) of the first line that the format's regex
    matches but whose time (group `field`) does not fit `layout` (a strftime.TimeLayout)."""
    if fmt.regex is None:           # a JSON format: its times are values, checked as such
        return None
    for number, line in enumerate(lines, 1):
        m = fmt.regex.match(line)
        raw = m and m.group(field)
        why = raw and layout.mismatch(raw)
        if why:
            return number, why
    return None
