"""Typed fields: how each raw value (bytes) becomes an int, a float, a time or a string.

Every converter takes the raw bytes of one field and returns the typed value, or raises
ValueError when the bytes are not of that type. The fast split path and the regex path of a
format call the same converters, so both give identical values for the same line.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Callable

MONTHS = {m.encode(): i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_NUMBER = rb"\d+(?:\.\d+)?"


def to_int(raw: bytes) -> int:
    if not raw.isdigit():
        raise ValueError(raw)
    return int(raw)


def to_optional_int(raw: bytes) -> int | None:
    """Apache writes '-' for a status it never set (e.g. a request aborted early)."""
    if raw.isdigit():
        return int(raw)
    if raw == b"-":
        return None
    raise ValueError(raw)


def to_bytes_count(raw: bytes) -> int:
    """Byte counts: nginx and Apache write '-' for zero bytes."""
    if raw.isdigit():
        return int(raw)
    if raw == b"-":
        return 0
    raise ValueError(raw)


def to_float(raw: bytes) -> float | None:
    """'0.123' or '12' (no sign, exponent, or bare dot: what nginx and Apache write)."""
    if raw == b"-":
        return None
    if not (raw.replace(b".", b"", 1).isdigit() and raw[:1].isdigit() and raw[-1:].isdigit()):
        raise ValueError(raw)
    return float(raw)


def to_float_list(raw: bytes) -> float | None:
    """nginx $upstream_*_time: one value per upstream tried, ', ' between servers and
    ' : ' between upstream groups; '-' where none answered. The total time is the sum."""
    if raw == b"-":
        return None
    total = None
    for part in raw.replace(b" : ", b", ").split(b", "):
        value = to_float(part)
        if value is not None:
            total = (total or 0.0) + value
    return total


_UNESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|.)", re.S)
_SIMPLE_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r"}


def _unescape_one(m: re.Match) -> bytes:
    code = m.group(1)
    if code[:1] == b"x" and len(code) == 3:
        return bytes([int(code[1:], 16)])
    return _SIMPLE_ESCAPES.get(code, code)


def to_str(raw: bytes) -> str | None:
    """Strings: '-' means absent; Apache's \\" and nginx's \\xHH escapes are decoded."""
    if raw == b"-":
        return None
    if b"\\" in raw:
        raw = _UNESCAPE.sub(_unescape_one, raw)
    return raw.decode("utf-8", "backslashreplace")


_time_cache: dict[bytes, int] = {}


def to_epoch(raw: bytes | str) -> int:
    """'10/Oct/2000:13:55:36 -0700' (nginx $time_local, Apache %t) -> epoch seconds (UTC).

    Lines of one second share the same text, so a small cache makes this nearly free."""
    epoch = _time_cache.get(raw)
    if epoch is None:
        epoch = _parse_clf_time(raw)
        if len(_time_cache) > 4096:
            _time_cache.clear()
        _time_cache[raw] = epoch
    return epoch


_CLF_TIME = re.compile(
    rb"(\d\d?)/([A-Z][a-z]{2})/(\d{4}):(\d\d?):(\d\d?):(\d\d?) ([+-])(\d\d)(\d\d)")


def _parse_clf_time(raw: bytes | str) -> int:
    m = _CLF_TIME.fullmatch(raw.encode() if isinstance(raw, str) else raw)
    if m is None or m.group(2) not in MONTHS:
        raise ValueError(raw)
    day, _, year, hour, minute, second, sign, tzh, tzm = m.groups()
    month = MONTHS[m.group(2)]
    if not (1 <= int(day) <= 31 and int(hour) < 24 and int(minute) < 60 and int(second) < 61):
        raise ValueError(raw)
    offset = (int(tzh) * 3600 + int(tzm) * 60) * (-1 if sign == b"-" else 1)
    return calendar.timegm((int(year), month, int(day), int(hour), int(minute), int(second))) - offset


# -- whole columns at once (the split path): C-level loops instead of a call per value ----

def by_table(convert: Callable) -> Callable[[list], list]:
    """Convert a column through a table of its distinct values: one call per distinct value
    (few, for statuses, times or methods), the rest is a dict lookup in C."""
    def convert_column(column: list) -> list:
        table = {v: convert(v) for v in set(column)}
        return list(map(table.__getitem__, column))
    return convert_column


def _digits_column(fallback: Callable[[bytes], object]) -> Callable[[list], list]:
    slow = by_table(fallback)

    def convert_column(column: list) -> list:
        if all(map(bytes.isdigit, column)):
            return list(map(int, column))
        return slow(column)
    return convert_column


_FLOAT_COLUMN = re.compile(rb"(?:(?:\d+(?:\.\d+)?|-)\n)*")


def _float_column(column: list) -> list:
    joined = b"\n".join(column) + b"\n"
    if not column or _FLOAT_COLUMN.fullmatch(joined) is None:
        return by_table(to_float)(column)    # raises ValueError on the culprit
    if b"-" in joined:
        return [None if v == b"-" else float(v) for v in column]
    return list(map(float, column))


@dataclass(frozen=True)
class FieldType:
    name: str              # shown by `plogd check`
    pattern: bytes         # what the regex accepts for the raw value
    convert: Callable[[bytes], object]
    numeric: bool
    # a column of values known to hold no space (the split path) -> typed values;
    # raises ValueError when one of them is not of this type
    convert_tokens: Callable[[list], list] | None = None

    @property
    def column_converter(self) -> Callable[[list], list]:
        return self.convert_tokens or by_table(self.convert)


STRING = FieldType("string", rb"[^ ]+", to_str, False)   # fields are space-separated
QUOTED = FieldType("string", rb'(?:[^"\\]|\\.)*', to_str, False)
INT = FieldType("int", rb"\d+", to_int, True, _digits_column(to_int))
OPTIONAL_INT = FieldType("int", rb"\d+|-", to_optional_int, True, _digits_column(to_optional_int))
BYTES = FieldType("int", rb"\d+|-", to_bytes_count, True, _digits_column(to_bytes_count))
FLOAT = FieldType("float", _NUMBER + rb"|-", to_float, True, _float_column)
FLOAT_LIST = FieldType(
    "float", rb"(?:%s|-)(?:(?:, | : )(?:%s|-))*" % (_NUMBER, _NUMBER), to_float_list, True,
    convert_tokens=_float_column)   # a list holds ", " or " : ": never one token
TIME = FieldType(
    "string", rb"\d\d?/[A-Z][a-z]{2}/\d{4}:\d\d?:\d\d?:\d\d? [+-]\d{4}", to_str, False)

# The type of each known variable; any other variable is a string.
KNOWN_TYPES: dict[str, FieldType] = {
    "time_local": TIME,
    "status": OPTIONAL_INT,
    "server_port": INT,
    "body_bytes_sent": BYTES,
    "bytes_sent": BYTES,
    "request_length": BYTES,
    "request_time": FLOAT,
    "upstream_response_time": FLOAT_LIST,
    "upstream_connect_time": FLOAT_LIST,
    "upstream_header_time": FLOAT_LIST,
}


def field_type(name: str, quoted: bool) -> FieldType:
    default = QUOTED if quoted else STRING
    return KNOWN_TYPES.get(name, default)


def _request_part(index: int) -> Callable[[str | None], str | None]:
    """method, path and protocol from '$request' ("GET /a?b=1 HTTP/1.1")."""
    def part(request: str | None) -> str | None:
        pieces = request.split(" ") if request else ()
        if not 2 <= len(pieces) <= 3 or index >= len(pieces):
            return None
        return pieces[index]
    return part


def to_status_class(status: int | None) -> str | None:
    return None if status is None else "%dxx" % (status // 100)


@dataclass(frozen=True)
class Derived:
    source: str                             # the logged field it is computed from
    convert: Callable[[object], object]     # from the source's typed value
    type_name: str


# Fields computed from another field, available whenever their source is in the format.
DERIVED: dict[str, Derived] = {
    "timestamp": Derived("time_local", to_epoch, "epoch seconds"),
    "method": Derived("request", _request_part(0), "string"),
    "path": Derived("request", _request_part(1), "string"),
    "protocol": Derived("request", _request_part(2), "string"),
    "status_class": Derived("status", to_status_class, "string"),
}
