"""Typed fields: how each raw value (bytes) becomes an int, a float, a time or a string.

Every converter takes the raw bytes of one field and returns the typed value, or raises
ValueError when the bytes are not of that type: it rejects whatever the type's regex pattern
rejects, so the fast split path (which calls converters on bare tokens) and the regex path of
a format accept the same lines and give identical values.
"""
from __future__ import annotations

import calendar
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

MONTHS = {m.encode(): i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_NUMBER = rb"\d+(?:\.\d+)?"
_LIST_SEPARATOR = rb"(?:, | : )"      # nginx: ', ' between servers, ' : ' between groups
_LIST_OF = rb"(?:%s|-)(?:%s(?:%s|-))*"   # an item or '-', then more after separators
_FLOAT_LIST = _LIST_OF % (_NUMBER, _LIST_SEPARATOR, _NUMBER)


def _validated(pattern: bytes, convert: Callable[[bytes], object]) -> Callable[[bytes], object]:
    """`convert`, rejecting (ValueError) what `pattern` does not match as a whole."""
    whole = rb"(?:%s)\Z" % pattern     # compiled on first use (re's cache): a light import

    def checked(raw: bytes):
        if re.match(whole, raw, re.S) is None:
            raise ValueError(raw)
        return convert(raw)
    return checked


# Numbers from 10^20 up are refused (the line does not match): no server logs them, Zabbix
# stores at most 2^64, and they would overflow the float sums and averages of a window.
TOO_BIG = 10 ** 20


def _bounded(value):
    if value >= TOO_BIG:
        raise ValueError(value)
    return value


def to_int(raw: bytes) -> int:
    if not raw.isdigit():
        raise ValueError(raw)
    return _bounded(int(raw))


def to_optional_int(raw: bytes) -> int | None:
    """Apache writes '-' for a status it never set (e.g. a request aborted early)."""
    if raw.isdigit():
        return _bounded(int(raw))
    if raw == b"-":
        return None
    raise ValueError(raw)


def to_bytes_count(raw: bytes) -> int:
    """Byte counts: nginx and Apache write '-' for zero bytes."""
    if raw.isdigit():
        return _bounded(int(raw))
    if raw == b"-":
        return 0
    raise ValueError(raw)


def to_hex_int(raw: bytes) -> int | None:
    """Apache %{hextid}P."""
    if raw == b"-":
        return None
    if not raw.isalnum() or raw.startswith((b"0x", b"0X")):
        raise ValueError(raw)
    return _bounded(int(raw, 16))


def to_float(raw: bytes) -> float | None:
    """'0.123' or '12' (no sign, exponent, or bare dot: what nginx and Apache write)."""
    if raw == b"-":
        return None
    if not (raw.replace(b".", b"", 1).isdigit() and raw[:1].isdigit() and raw[-1:].isdigit()):
        raise ValueError(raw)
    return _bounded(float(raw))


def duration(per_second: int) -> Callable[[bytes], float | None]:
    """Apache %T (seconds), %{ms}T, %D (microseconds): a whole number -> float seconds."""
    def to_seconds(raw: bytes) -> float | None:
        if raw == b"-":
            return None
        return to_int(raw) / per_second
    return to_seconds


def _list_items(raw: bytes) -> list[bytes]:
    return raw.replace(b" : ", b", ").split(b", ")


def list_spaces_fit(raw: bytes) -> bool:
    """Whether every space of a list is in a separator (', ' or ' : ')."""
    return b" " not in raw.replace(b", ", b"").replace(b" : ", b"")


def to_float_list(raw: bytes) -> float | None:
    """nginx $upstream_*_time: one value per upstream tried, ', ' between servers and
    ' : ' between upstream groups; '-' where none answered. The total time is the sum."""
    if raw == b"-":
        return None
    total = None
    for part in _list_items(raw):
        value = to_float(part)
        if value is not None:
            total = (total or 0.0) + value
    return total


def to_int_list(raw: bytes) -> int | None:
    """nginx $upstream_response_length, $upstream_bytes_*: the sum over the upstreams tried."""
    if raw == b"-":
        return None
    values = [to_optional_int(part) for part in _list_items(raw)]
    return sum(v for v in values if v is not None)


def to_last_status(raw: bytes) -> int | None:
    """nginx $upstream_status '502, 200': the status of the last upstream, whose response
    was used."""
    values = [to_optional_int(part) for part in _list_items(raw)]
    return values[-1]


_UNESCAPE = re.compile(rb'\\(x[0-9A-Fa-f]{2}|[\\"ntrbvf])')
_SIMPLE_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"b": b"\b", b"v": b"\v", b"f": b"\f"}


def _unescape_one(m: re.Match) -> bytes:
    code = m.group(1)
    if code[:1] == b"x" and len(code) == 3:
        return bytes([int(code[1:], 16)])
    return _SIMPLE_ESCAPES.get(code, code)


def unescape(raw: bytes) -> bytes:
    """Apache's \\" \\\\ \\n \\t ... and nginx's \\xHH escapes; a backslash that starts no
    escape either server writes is kept as it is."""
    return _UNESCAPE.sub(_unescape_one, raw) if b"\\" in raw else raw


def to_str(raw: bytes) -> str | None:
    """Strings: '-' means absent; escapes are decoded (UTF-8, invalid bytes kept as \\xhh)."""
    if raw == b"-":
        return None
    return unescape(raw).decode("utf-8", "backslashreplace")


def to_apache_user(raw: bytes) -> str | None:
    """Apache %u: '-' when there is no user, '""' when the user name is empty."""
    if not raw:
        raise ValueError(raw)
    return "" if raw == b'""' else to_str(raw)


def to_binary_addr(raw: bytes) -> str | None:
    """nginx $binary_remote_addr: the address's 4 or 16 bytes, escaped -> its text."""
    if raw == b"-":
        return None
    packed = unescape(raw)
    if len(packed) not in (4, 16):
        raise ValueError(raw)
    return str(ipaddress.ip_address(packed))


_time_cache: dict[bytes | str, int] = {}


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
    sign, zone = m.group(7), m.group(8, 9)
    day, year, hour, minute, second = map(int, m.group(1, 3, 4, 5, 6))
    month = MONTHS[m.group(2)]
    # timegm would normalize an impossible date (29/Feb/2023 -> 1 March): a writer never logs one
    if not (1 <= day <= calendar.monthrange(year, month)[1] and hour < 24 and minute < 60
            and second < 61):
        raise ValueError(raw)
    return calendar.timegm((year, month, day, hour, minute, second)) - \
        utc_offset(sign, *map(int, zone))


def utc_offset(sign: bytes, hours: int, minutes: int) -> int:
    """Seconds east of UTC of a zone '+hhmm'; ValueError past 23:59 (+2500 is no zone)."""
    if hours > 23 or minutes > 59:
        raise ValueError(f"{sign.decode()}{hours:02}{minutes:02}")
    return (hours * 3600 + minutes * 60) * (-1 if sign == b"-" else 1)


def time_local_epoch(text: str | None) -> int | None:
    return None if text is None else to_epoch(text)


def iso_epoch(text: str) -> int:
    """nginx $time_iso8601 '2017-01-03T15:56:36+01:00' -> epoch seconds."""
    return int(datetime.fromisoformat(text).timestamp())


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
        if not column:
            return []
        if len(set(column[:64])) < 16:      # few distinct values (statuses): a table
            distinct = set(column)
            if all(map(bytes.isdigit, distinct)):
                table = {v: int(v) for v in distinct}
                if max(table.values()) < TOO_BIG:
                    return list(map(table.__getitem__, column))
        elif all(map(bytes.isdigit, column)):
            values = list(map(int, column))
            if max(values) < TOO_BIG:
                return values
        return slow(column)                 # raises ValueError on the culprit
    return convert_column


_NUMBER_ENDS = re.compile(_LIST_SEPARATOR + rb"|\n")


def _numbers_checker(pattern: bytes) -> Callable[[list], tuple[set, dict]]:
    """For a column of numbers, '-' or lists of them (`pattern`, which cannot match a
    newline): (its distinct values, {number: float} of the numbers they hold), checked on
    them alone as the converters check each value: ValueError for a value that `pattern`
    rejects or that holds a number of TOO_BIG or more."""
    whole = re.compile(rb"(?:(?:%s)\n)*" % pattern)

    def numbers_in(column: list) -> tuple[set, dict]:
        distinct = set(column)
        joined = b"\n".join(distinct) + b"\n"
        if column and whole.fullmatch(joined) is None:
            raise ValueError("not a number")
        numbers = {n: float(n) for n in _NUMBER_ENDS.split(joined) if n and n != b"-"}
        if numbers and max(numbers.values()) >= TOO_BIG:
            raise ValueError("too big")
        return distinct, numbers
    return numbers_in


_float_numbers = _numbers_checker(_NUMBER + rb"|-")
_float_list_numbers = _numbers_checker(_FLOAT_LIST)


def _float_column(column: list) -> list:
    """'-' is None; the floats through a table of the distinct values (request times repeat:
    milliseconds)."""
    _, numbers = _float_numbers(column)
    return list(map(numbers.get, column))


def _float_list_column(column: list) -> list:
    """$upstream_*_time: single values as floats, lists summed, '-' None."""
    distinct, numbers = _float_list_numbers(column)
    numbers.update({v: to_float_list(v) for v in distinct if b" " in v})
    return list(map(numbers.get, column))


@dataclass(frozen=True)
class FieldType:
    name: str              # shown by `plogd check`
    pattern: bytes         # what the regex accepts for the raw value
    convert: Callable[[bytes], object]
    numeric: bool
    # a column of tokens (the split path: no space, but for a `spaced` list) -> typed
    # values; raises ValueError when one of them is not of this type
    convert_tokens: Callable[[list], list] | None = None
    quoted: FieldType | None = None   # the type inside "...", where a string may hold spaces
    any_token: bool = False             # convert accepts any token: nothing to check
    spaced: bool = False                # a value may hold spaces (a list): the split path
                                        # takes it as the rest of its part, when it is last
    # a cheaper check of a column that is not asked for (raises ValueError), if there is one
    check_tokens: Callable[[list], object] | None = None

    @property
    def column_converter(self) -> Callable[[list], list]:
        return self.convert_tokens or by_table(self.convert)

    @property
    def column_checker(self) -> Callable[[list], object]:
        return self.check_tokens or self.column_converter

    def in_context(self, quoted: bool) -> FieldType:
        return self.quoted if quoted and self.quoted else self

    def or_dash(self) -> FieldType:
        """This type, or '-' (None): an Apache directive with a condition (%400r) logs '-'
        when the condition does not hold."""
        if re.fullmatch(self.pattern, b"-"):
            return self
        inner = self.convert
        return replace(self, pattern=rb"(?:%s)|-" % self.pattern,
                       convert=lambda raw: None if raw == b"-" else inner(raw),
                       convert_tokens=None, quoted=self.quoted and self.quoted.or_dash())


def _string(pattern: bytes, convert=to_str, quoted: FieldType | None = None) -> FieldType:
    """A string whose values are restricted to `pattern` (checked on the split path too)."""
    return FieldType("string", pattern, _validated(pattern, convert), False, quoted=quoted)


_IN_QUOTES = rb'(?:[^"\\]|\\.)*'
QUOTED = FieldType("string", _IN_QUOTES, to_str, False, any_token=True)
STRING = FieldType("string", rb"[^ ]+", to_str, False, quoted=QUOTED, any_token=True)
MAYBE_EMPTY = FieldType("string", rb"[^ ]*", to_str, False, quoted=QUOTED, any_token=True)


def _check_host_lengths(column: list) -> None:
    if column and (b"" in column or len(max(column, key=len)) > 253):
        raise ValueError("a host of 0 or more than 253 characters")


# a client: an address, or a host name (at most 253 characters, as DNS allows)
HOST = replace(_string(rb"[^ ]{1,253}", quoted=QUOTED), check_tokens=_check_host_lengths)
# a request line outside quotes: space-separated words, as few as the rest of the line allows
REQUEST = _string(rb"[^ ]+(?: [^ ]+)*?", quoted=QUOTED)
# a path without its query string: stops at '?'
URI = _string(rb"[^ ?]+", quoted=_string(rb'(?:[^"\\?]|\\.)*'))
# Apache %q: empty, or '?' and the query
APACHE_QUERY = _string(rb"(?:\?[^ ]*)?", quoted=_string(rb'(?:\?%s)?' % _IN_QUOTES))
# nginx address lists ($upstream_addr, $http_x_forwarded_for outside quotes)
ADDRESS_LIST = _string(rb"[^ ,]+(?:%s[^ ,]+)*" % _LIST_SEPARATOR, quoted=QUOTED)
APACHE_USER = FieldType("string", rb"[^ ]+", to_apache_user, False, quoted=QUOTED)
CONNECTION_STATUS = _string(rb"[X+-]", lambda raw: raw.decode())   # Apache %X: '-' is a value
BINARY_ADDRESS = FieldType("string", rb"[^ ]+", to_binary_addr, False)

INT = FieldType("int", rb"\d+", to_int, True, _digits_column(to_int))
OPTIONAL_INT = FieldType("int", rb"\d+|-", to_optional_int, True, _digits_column(to_optional_int))
HEX_INT = FieldType("int", rb"[0-9A-Fa-f]+|-", to_hex_int, True)
BYTES = FieldType("int", rb"\d+|-", to_bytes_count, True, _digits_column(to_bytes_count))
FLOAT = FieldType("float", _NUMBER + rb"|-", to_float, True, _float_column,
                  check_tokens=_float_numbers)
FLOAT_LIST = FieldType("float", _FLOAT_LIST, to_float_list, True, _float_list_column,
                       check_tokens=_float_list_numbers, spaced=True)
INT_LIST = FieldType("int", _LIST_OF % (rb"\d+", _LIST_SEPARATOR, rb"\d+"), to_int_list, True,
                     _digits_column(to_int_list), spaced=True)
LAST_STATUS = replace(INT_LIST, convert=to_last_status,
                      convert_tokens=_digits_column(to_last_status))


def duration_type(per_second: int) -> FieldType:
    return FieldType("float", rb"\d+|-", duration(per_second), True)


_CLF = rb"\d\d?/[A-Z][a-z]{2}/\d{4}:\d\d?:\d\d?:\d\d? [+-]\d{4}"
TIME = _string(_CLF)
_ISO = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"
ISO_TIME = _string(_ISO)

# The type of each known nginx variable (Apache directives are named after them); any other
# variable is a string, possibly empty: nginx logs a variable that is set but empty as
# nothing (only an unset one as '-').
KNOWN_TYPES: dict[str, FieldType] = {
    "remote_addr": HOST,
    "time_local": TIME,
    "time_iso8601": ISO_TIME,
    "msec": FLOAT,
    "status": OPTIONAL_INT,
    "server_port": INT,
    "body_bytes_sent": BYTES,
    "bytes_sent": BYTES,
    "bytes_received": BYTES,
    "request_length": BYTES,
    "request_time": FLOAT,
    "gzip_ratio": FLOAT,
    "upstream_response_time": FLOAT_LIST,
    "upstream_connect_time": FLOAT_LIST,
    "upstream_header_time": FLOAT_LIST,
    "upstream_queue_time": FLOAT_LIST,
    "upstream_response_length": INT_LIST,
    "upstream_bytes_received": INT_LIST,
    "upstream_bytes_sent": INT_LIST,
    "upstream_status": LAST_STATUS,
    "upstream_addr": ADDRESS_LIST,
    "http_x_forwarded_for": ADDRESS_LIST,
    "request": REQUEST,
    "uri": URI,
    "document_uri": URI,
    "binary_remote_addr": BINARY_ADDRESS,
    **dict.fromkeys(["remote_port", "realip_remote_port", "proxy_protocol_port",
                     "proxy_protocol_server_port", "connection", "connection_requests", "pid",
                     "content_length", "tcpinfo_rtt", "tcpinfo_rttvar", "tcpinfo_snd_cwnd",
                     "tcpinfo_rcv_space"], OPTIONAL_INT),
}


def field_type(name: str, quoted: bool) -> FieldType:
    return KNOWN_TYPES.get(name, MAYBE_EMPTY).in_context(quoted)


# -- derived fields ------------------------------------------------------------------------

def _keep_none(convert: Callable[[str], object]) -> Callable[[str | None], object]:
    return lambda value: None if value is None else convert(value)


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


def first_forwarded(forwarded_for: str | None, remote_addr: str | None) -> str | None:
    """The first address of X-Forwarded-For (the client as the proxies tell it: the client
    can write anything there), else the address of the peer."""
    first = forwarded_for.split(",", 1)[0].strip() if forwarded_for else ""
    return first or remote_addr


def _same(value):
    return value


@dataclass(frozen=True)
class Derived:
    sources: tuple[str, ...]                # the logged fields it is computed from
    convert: Callable[..., object]          # from the sources' typed values
    type_name: str


# Fields computed from logged ones: for each, the candidates in order of precedence; the
# first whose sources are all logged is used (a logged field of the same name wins).
DERIVED: dict[str, tuple[Derived, ...]] = {
    # nginx logs all three at the end of the request: the same instant
    "timestamp": (Derived(("time_local",), time_local_epoch, "epoch seconds"),
                  Derived(("time_iso8601",), _keep_none(iso_epoch), "epoch seconds"),
                  Derived(("msec",), _keep_none(int), "epoch seconds")),
    "method": (Derived(("request",), _request_part(0), "string"),
               Derived(("request_method",), _same, "string")),
    "path": (Derived(("request",), _request_part(1), "string"),
             Derived(("request_uri",), _same, "string")),
    "protocol": (Derived(("request",), _request_part(2), "string"),
                 Derived(("server_protocol",), _same, "string")),
    "status_class": (Derived(("status",), to_status_class, "string"),),
    "client_addr": (Derived(("http_x_forwarded_for", "remote_addr"), first_forwarded, "string"),),
}


def derived_fields(logged: dict, chosen: dict[str, Derived] | None = None) -> dict[str, Derived]:
    """The derived fields of a format logging `logged`: `chosen` ones (a compiler's own
    choice, e.g. an Apache timestamp) first, then the first fitting candidate of DERIVED."""
    fields = dict(chosen or {})
    for name, candidates in DERIVED.items():
        if name in logged or name in fields:
            continue
        for derived in candidates:
            if all(source in logged for source in derived.sources):
                fields[name] = derived
                break
    return fields
