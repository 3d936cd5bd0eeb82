"""Apache LogFormat strings (mod_log_config) -> a LogFormat whose fields are named after
nginx's variables: %>s -> status, %h -> remote_addr, %D -> request_time (in seconds),
%{Referer}i -> http_referer, %t -> time_local ...

When several directives would give the same field:
- %>s is `status`; %s and %<s are `status` too, unless %>s is also logged: then they are
  `original_status` (in Apache %s is the original request's status, the same as %<s).
- one directive with different < / > modifiers: the modified ones get `original_` / `final_`
  (%{Referer}i %<{Referer}i -> http_referer, original_http_referer).
- %h with %a: %a (the client's IP) is remote_addr and %h remote_host; %p with %{local}p:
  %{local}p is local_port; %t with %{end}t: the latter is end_time_local.
- request times (%T, %{ms}T, %D, ...): the most precise is request_time, the others are only
  checked.
- a directive logged twice (%r and %400r count as one): the first occurrence without a
  condition gives the value.
- any other two directives giving one field (%b and %B) are rejected.

The timestamp is the first time in the format that has a date and a time of day: %t, or the
%{...}t directives of one clock ('begin:', the default, or 'end:') put together
("%{%Y-%m-%d}t %{%T}t %{%z}t"). See strftime.py for the times' formats; `time_locale` names
the locale whose month and day names a %{...}t holds (the C library's strftime writes them
in the httpd process's LC_TIME), C's by default. %t itself is always English.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from . import fields as f
from .fields import Derived, FieldType
from .logformat import FormatError, LogFormat, Pieces
from .strftime import TimeNames, TimeText, combiner, is_complete, time_names


class _Spec(NamedTuple):
    name: str
    type: FieldType | None = None   # None: the type of its name (fields.field_type)
    alt: str | None = None          # the name when another directive has `name`
    precision: int = 0              # request times: units per second


def _duration(per_second: int) -> _Spec:
    return _Spec("request_time", f.duration_type(per_second), precision=per_second)


# letter -> {its {parameter} (lower case; None: without one) -> the field}
_DIRECTIVES: dict[str, dict[str | None, _Spec]] = {
    "a": {None: _Spec("remote_addr"), "c": _Spec("realip_remote_addr")},
    "A": {None: _Spec("server_addr")},
    "b": {None: _Spec("body_bytes_sent")},
    "B": {None: _Spec("body_bytes_sent")},
    "D": {None: _duration(10 ** 6)},
    "f": {None: _Spec("request_filename")},
    "h": {None: _Spec("remote_addr", alt="remote_host"), "c": _Spec("peer_host")},
    "H": {None: _Spec("protocol")},
    "I": {None: _Spec("request_length")},
    "k": {None: _Spec("keepalive_requests", f.OPTIONAL_INT)},
    "l": {None: _Spec("ident")},
    "L": {None: _Spec("log_id")},
    "m": {None: _Spec("method")},
    "O": {None: _Spec("bytes_sent")},
    "p": {None: _Spec("server_port"), "canonical": _Spec("server_port"),
          "local": _Spec("server_port", alt="local_port"), "remote": _Spec("remote_port")},
    "P": {None: _Spec("pid"), "pid": _Spec("pid"), "tid": _Spec("tid", f.OPTIONAL_INT),
          "hextid": _Spec("tid", f.HEX_INT)},
    "q": {None: _Spec("query_string", f.APACHE_QUERY)},
    "r": {None: _Spec("request")},
    "R": {None: _Spec("handler")},
    "s": {None: _Spec("status")},
    "S": {None: _Spec("bytes_transferred", f.BYTES)},
    "T": {None: _duration(1), "s": _duration(1), "ms": _duration(1000), "us": _duration(10 ** 6)},
    "u": {None: _Spec("remote_user", f.APACHE_USER)},
    "U": {None: _Spec("uri")},
    "v": {None: _Spec("server_name")},
    "V": {None: _Spec("host")},
    "X": {None: _Spec("connection_status", f.CONNECTION_STATUS)},
}
# letter -> the prefix of the field named after its {parameter}: %{User-Agent}i -> http_user_agent
_NAMED = {"i": "http_", "o": "sent_http_", "C": "cookie_", "e": "env_", "n": "note_",
          "^ti": "trailer_", "^to": "sent_trailer_"}
_EPOCH = "epoch seconds"
_CONFIG_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


@dataclass
class _Directive:
    column: int           # of its '%', 1-based
    text: str             # as written: '%>s', '%{Referer}i'
    letter: str           # 's', 'i', '^ti'
    arg: str | None       # what was in {...}
    want: str             # '', '<' (the original request) or '>' (the final one)
    conditional: bool     # %400r, %!200T: '-' when the condition does not hold
    spec: _Spec = _Spec("")          # the field it would be on its own (set by _spec)
    var: str = ""                    # the field it is matched as
    type: FieldType | None = None
    parts: frozenset = frozenset()   # %{...}t: the parts of a time it logs


def compile_apache(text: str, name: str = "apache_format",
                   time_locale: str | None = None) -> LogFormat:
    """The format of `text`: a LogFormat string (as inside the quotes of the LogFormat
    directive, \\" for ", or the whole directive); `time_locale` (e.g. 'de_DE.UTF-8'): the
    locale of the names in its %{...}t times. Raises FormatError for the user (LocaleError,
    a FormatError, when the locale is not installed)."""
    items = _parse(_directive_format(text))
    directives = [d for d in items if isinstance(d, _Directive)]
    if not directives:
        raise FormatError(f"{text!r} has no %directive: it would yield no field")
    timestamp = _name_times([d for d in directives if d.letter == "t"], time_names(time_locale))
    _name_fields([d for d in directives if d.letter != "t"])
    pieces: Pieces = []
    literal = ""
    for item in items:
        if isinstance(item, str):
            literal += item
        elif item.type is f.TIME:           # %t: its brackets are text around $time_local
            pieces.append((literal + "[", item.var))
            literal = "]"
        else:
            pieces.append((literal, item.var))
            literal = ""
    pieces.append((literal, None))
    types = {d.var: d.type for d in directives if d.type is not None}   # all: typed above
    origins = {d.var: d.text for d in directives}
    # '-' for the whole '[%t]' (a condition that did not hold), or for a '"%r"' (a line of
    # dashes): the field is absent
    dashed = frozenset(d.var for d in directives if d.type is f.TIME or d.letter == "r")
    return LogFormat.from_pieces(name, pieces, types, timestamp, origins, dashed)


# -- reading the format --------------------------------------------------------------------

def _directive_format(text: str) -> str:
    """The format string of `LogFormat "..." nickname`, or `text` itself."""
    m = re.match(r"""\s*LogFormat\s+(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""", text)
    if text.lstrip().startswith("LogFormat ") and m is None:
        raise FormatError('a LogFormat directive is: LogFormat "format" [nickname]')
    return text if m is None else m.group(1) if m.group(1) is not None else m.group(2)


def _parse(fmt: str) -> list:
    """Literal text (str) and _Directives, in order; the grammar of mod_log_config."""
    items: list = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char == "\\" and fmt[i + 1:i + 2] in _CONFIG_ESCAPES:
            items.append(_CONFIG_ESCAPES[fmt[i + 1]])
            i += 2
        elif char != "%":
            items.append(char)
            i += 1
        elif fmt[i + 1:i + 2] == "%":
            items.append("%")
            i += 2
        else:
            directive, i = _parse_directive(fmt, i)
            items.append(directive)
    return _join_text(items)


def _parse_directive(fmt: str, start: int) -> tuple[_Directive, int]:
    arg, want, conditional = None, "", False
    i = start + 1
    while i < len(fmt):
        char = fmt[i]
        if char in "<>":
            want = char
        elif char == "!":
            conditional = True
        elif char == ",":
            pass
        elif char.isdigit():
            conditional = True
        elif char == "{":
            end = fmt.find("}", i)
            if end < 0:
                raise FormatError(f"the '{{' of the directive at column {start + 1} is "
                                  f"never closed: {fmt[start:start + 20]!r}")
            arg = fmt[i + 1:end]
            i = end
        else:
            letter = fmt[i:i + 3] if fmt[i:i + 3] in _NAMED else char
            i += len(letter)
            directive = _Directive(start + 1, fmt[start:i], letter, arg, want, conditional)
            if letter not in _DIRECTIVES and letter not in _NAMED and letter != "t":
                raise FormatError(f"unknown directive {directive.text!r} at column "
                                  f"{start + 1} (no %{letter} in mod_log_config; '%%' is a "
                                  f"percent sign)")
            return directive, i
        i += 1
    raise FormatError(f"the directive at column {start + 1} has no letter: "
                      f"{fmt[start:]!r} (write '%%' for a percent sign)")


def _join_text(items: list) -> list:
    joined: list = []
    for item in items:
        if isinstance(item, str) and joined and isinstance(joined[-1], str):
            joined[-1] += item
        else:
            joined.append(item)
    return joined


# -- naming the fields ---------------------------------------------------------------------

def _spec(d: _Directive, final_status: bool) -> _Spec:
    if d.letter in _NAMED:
        if not d.arg:
            raise FormatError(f"{d.text!r} at column {d.column} needs a name in "
                              f"{{...}}, e.g. %{{User-Agent}}{d.letter}")
        field = _NAMED[d.letter] + re.sub(r"\W", "_", d.arg.lower())
        return _Spec(field, f.field_type(field, quoted=False))
    params = _DIRECTIVES[d.letter]
    key = d.arg.lower() if d.arg is not None else None
    if key not in params:
        allowed = ", ".join(p for p in params if p) or "none"
        raise FormatError(f"{d.text!r} at column {d.column}: %{d.letter} takes no "
                          f"{{{d.arg}}} (allowed: {allowed})")
    spec = params[key]
    spec = spec._replace(type=spec.type or f.field_type(spec.name, quoted=False))
    if d.letter == "s" and final_status and d.want != ">":
        return spec._replace(name="original_status")
    return spec


def _name_fields(directives: list[_Directive]) -> None:
    """Give every directive but %t its field (d.var, d.type): the rules of the docstring."""
    final_status = any(d.letter == "s" and d.want == ">" for d in directives)
    for d in directives:
        d.spec = _spec(d, final_status)
    for field in {d.spec.name for d in directives}:
        claims = [d for d in directives if d.spec.name == field]
        if len({_identity(d) for d in claims}) > 1:
            _share(claims, field)
    for d in directives:
        ftype = d.spec.type
        assert ftype is not None            # _spec gives every spec its type
        d.var, d.type = d.spec.name, ftype.or_dash() if d.conditional else ftype
    _hide_repeats(directives)


def _identity(d: _Directive) -> tuple:
    """Directives of one identity log the same value (%s and %<s do)."""
    if d.letter == "s":
        return d.letter, d.spec.name
    return d.letter, d.arg and d.arg.lower(), d.want


def _share(claims: list[_Directive], field: str) -> None:
    """Different directives would give `field`: rename all but one, or FormatError."""
    if len({(d.letter, d.arg and d.arg.lower()) for d in claims}) == 1:   # < and > only
        prefix = {"<": "original_", ">": "final_", "": ""}
        for d in claims:
            d.spec = d.spec._replace(name=prefix[d.want] + field)
    elif all(d.spec.precision for d in claims):                   # request times
        best = _identity(max(claims, key=lambda d: d.spec.precision))
        for d in claims:
            if _identity(d) != best:
                d.spec = d.spec._replace(name="_" + field)    # matched and checked only
    else:
        for d in claims:
            if d.spec.alt:
                d.spec = d.spec._replace(name=d.spec.alt)
        left = list({_identity(d): d for d in claims if d.spec.name == field}.values())
        if len(left) > 1:
            raise FormatError(f"{left[1].text!r} at column {left[1].column} and "
                              f"{left[0].text!r} at column {left[0].column} would both be the "
                              f"field {field}: log only one of them")


def _hide_repeats(directives: list[_Directive]) -> None:
    """A field logged more than once: the first occurrence without a condition gives it, the
    others are matched as hidden fields."""
    by_var: dict[str, list[_Directive]] = {}
    for d in directives:
        by_var.setdefault(d.var, []).append(d)
    for var, same in by_var.items():
        keeper = next((d for d in same if not d.conditional), same[0])
        for k, d in enumerate(same):
            if d is not keeper or var[0] == "_":
                d.var = f"_{var.lstrip('_')}{k + 1}"


# -- times -----------------------------------------------------------------------------------

def _name_times(times: list[_Directive], names: TimeNames) -> dict[str, Derived]:
    """Name the %t directives (d.var, d.type); {'timestamp': ...} from the first clock in
    the format that gives a date and a time of day, or {}. A clock: [%t] (the common log
    format's time), or the %{...}t directives of 'begin:' or of 'end:', put together."""
    clocks: dict[str, list[_Directive]] = {}
    for k, d in enumerate(times, 1):
        clock = "end" if (d.arg or "").startswith("end") else "begin"
        fmt = re.sub(r"^(begin|end):?", "", d.arg or "")
        if fmt:
            try:
                text = TimeText(fmt, names)
            except FormatError as e:
                raise FormatError(f"{d.text!r} at column {d.column}: {e}") from None
            d.var, d.type, d.parts = f"_t{k}", text.field_type(), frozenset(text.parts)
            d.type = d.type.or_dash() if d.conditional else d.type
        else:       # '[...]', or '-' without the brackets (a condition): see `dashed`
            clock = "[%t] " + clock
            d.var, d.type = "time_local", f.TIME
        clocks.setdefault(clock, []).append(d)
    if "[%t] begin" in clocks:
        for d in clocks.get("[%t] end", []):
            d.var = "end_time_local"
    stamps = []     # (column, the timestamp from that clock)
    for clock, logged in clocks.items():
        if clock.startswith("[%t]"):
            _hide_repeats(logged)
            keeper = next(d.var for d in logged if d.var[0] != "_")
            stamps.append((logged[0].column, Derived((keeper,), f.time_local_epoch, _EPOCH)))
        elif is_complete(set().union(*(d.parts for d in logged))):
            sources = tuple(d.var for d in logged)
            stamps.append((logged[0].column, Derived(sources, combiner(), _EPOCH)))
    return {"timestamp": min(stamps, key=lambda stamp: stamp[0])[1]} if stamps else {}
