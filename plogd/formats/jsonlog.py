"""JSON logs: one object per line, keys in any order and nested, read through a mapping from
plogd's field names to JSON paths ('request.uri'), with presets for Caddy, Traefik and nginx
`escape=json`.

A field's type is the type of its name (fields.KNOWN_TYPES: status an int, request_time a
float, …; other names are strings): a JSON number is taken as it is, a JSON string is read as
the logged text of that type would be ('200', '0.010, 0.020', '-' for absent). A key that is
missing, or null, is an absent field. The time field is read as epoch seconds when it is a
JSON number and in its `time_format` (default iso8601) when it is a string.

The decoder is orjson: measured on the replay benchmark's lines against the standard
library's json and msgspec (README, Tests and benchmark).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .fields import Derived, FieldType, KNOWN_TYPES, MAYBE_EMPTY
from .logformat import FormatError, LogFormat
from .strftime import TimeLayout

# a duration's unit -> seconds
UNITS = {"s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass(frozen=True)
class Source:
    """Where a field is in the object: its path (keys), and for a duration its unit."""
    path: tuple[str, ...]
    unit: str = "s"


def _dig(obj, path: tuple[str, ...]):
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _text(value) -> str | None:
    """A JSON value as text: lists (Caddy's header values) joined with ', '."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else None
    if isinstance(value, (dict, bool)):
        import orjson
        return orjson.dumps(value).decode()
    return value if isinstance(value, str) else str(value)


def _converter(ftype: FieldType, unit: str) -> Callable[[object], object]:
    """JSON value -> the field's typed value (None: absent); ValueError when it is not of
    the field's type."""
    scale = UNITS[unit]

    def number(value):
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, (int, float)):
            if ftype.name == "int" and value != int(value):
                raise ValueError(value)
            typed = int(value) if ftype.name == "int" else float(value)
        else:
            typed = ftype.convert(_text(value).encode())
        return typed if typed is None or scale == 1 else typed * scale

    def string(value):
        text = _text(value)
        return None if text == "-" else text
    return number if ftype.numeric else string


_EPOCH = TimeLayout("epoch")


def _epoch_reader(layout: TimeLayout) -> Callable[[str], int | None]:
    """A time's text -> epoch seconds: in `layout`; digits (a JSON number, or nginx's $msec
    as a string) are epoch seconds unless the layout says milliseconds."""
    numeric = layout.layout in ("epoch", "epoch_ms")

    def epoch(text: str) -> int | None:
        raw = text.encode()
        if not numeric and raw[:1].isdigit() and raw.replace(b".", b"", 1).isdigit():
            return _EPOCH.epoch(raw)
        return layout.epoch(raw)
    return epoch


def _time_converter(layout: TimeLayout) -> Callable[[object], str]:
    """A JSON time (a string, or a number: epoch seconds) -> its text, checked to be a time."""
    epoch = _epoch_reader(layout)

    def convert(value) -> str:
        if isinstance(value, bool):
            raise ValueError(value)
        text = repr(value) if isinstance(value, (int, float)) else _text(value)
        if text is None:            # an empty list
            raise ValueError(value)
        epoch(text)
        return text
    return convert


class JsonFormat(LogFormat):
    """`sources`: field -> Source; `times`: the fields holding the time, each with its
    layout: the timestamp is the first of them that a line has."""

    def __init__(self, name: str, sources: dict[str, Source], times: dict[str, TimeLayout]):
        missing = [f for f in times if f not in sources]
        if missing:
            raise FormatError(f"fields: has no {missing[0]!r}, the field holding the time "
                              f"(time_field:); it maps {', '.join(sources) or 'nothing'}")
        types = {f: KNOWN_TYPES.get(f, MAYBE_EMPTY) for f in sources}
        types.update({f: layout.field_type() for f, layout in times.items()})
        self.sources = sources
        readers = [_epoch_reader(layout) for layout in times.values()]

        def timestamp(*texts):
            return next((read(t) for read, t in zip(readers, texts) if t is not None), None)
        origins = {f: "JSON " + ".".join(s.path) for f, s in sources.items()}
        super().__init__(name, None, types, origins=origins, derived={
            "timestamp": Derived(tuple(times), timestamp, "epoch seconds")})
        self._converters = {f: _time_converter(times[f]) if f in times else
                            _converter(types[f], s.unit) for f, s in sources.items()}

    def _regex_extractor(self, names: list[str]) -> Callable[[bytes], tuple | None]:
        """line -> typed values of `names`, or None (not an object, or a value not of its
        field's type)."""
        logged: list[str] = []
        for name in names:
            logged += [s for s in self._sources(name) if s not in logged]
        getters = [(self.sources[f].path, self._converters[f]) for f in logged]
        position = {field: k for k, field in enumerate(logged)}
        # (position, None) for a logged field, (positions, convert) for a derived one
        outputs: list[tuple[Any, Callable | None]] = [
            (position[n], None) if n in self._types else
            (tuple(position[s] for s in self._derived[n].sources), self._derived[n].convert)
            for n in names]
        import orjson          # only where a JSON format is used (it loads uuid, platform)
        loads = orjson.loads

        def extract(line: bytes):
            try:
                obj = loads(line)
            except orjson.JSONDecodeError:
                return None
            if not isinstance(obj, dict):
                return None
            try:
                values = []
                for path, convert in getters:
                    value = obj.get(path[0]) if len(path) == 1 else _dig(obj, path)
                    values.append(None if value is None else convert(value))
                return tuple(values[at] if derive is None else
                             derive(*map(values.__getitem__, at)) for at, derive in outputs)
            except (ValueError, OverflowError, TypeError):
                return None
        return extract

    def invalid_value(self, line: bytes) -> tuple[str, bytes] | None:
        import orjson
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        for field, source in self.sources.items():
            value = _dig(obj, source.path)
            try:
                if value is not None:
                    self._converters[field](value)
            except (ValueError, OverflowError, TypeError):
                return self.origins[field], orjson.dumps(value)
        return None


def sources_of(mapping: dict[str, object]) -> dict[str, Source]:
    """`fields:` {field: 'a.b'} or {field: {path: 'a.b', unit: ns}} -> Sources; FormatError
    names the field that is wrong."""
    sources = {}
    for field, spec in mapping.items():
        path, unit = (spec.get("path"), spec.get("unit", "s")) if isinstance(spec, dict) \
            else (spec, "s")
        if not isinstance(path, str) or not path or set(spec if isinstance(spec, dict)
                                                        else ()) - {"path", "unit"}:
            raise FormatError(f"{field}: found {spec!r}; expected a JSON path such as "
                              f"request.uri, or {{path: Duration, unit: ns}}")
        if unit not in UNITS:
            raise FormatError(f"{field}: unit {unit!r}; allowed: {', '.join(UNITS)}")
        if unit != "s" and KNOWN_TYPES.get(field, MAYBE_EMPTY).name != "float":
            raise FormatError(f"{field}: a unit goes with a duration (a float field such as "
                              f"request_time), not with {field}")
        sources[field] = Source(tuple(path.split(".")), unit)
    return sources


# -- presets: what each server writes ------------------------------------------------------

_NGINX_VARIABLES = ("remote_addr", "remote_user", "time_local", "time_iso8601", "msec",
                    "request", "request_method", "request_uri", "uri", "server_protocol",
                    "status", "body_bytes_sent", "bytes_sent", "request_length",
                    "request_time", "upstream_response_time", "upstream_connect_time",
                    "upstream_header_time", "upstream_status", "upstream_addr",
                    "http_referer", "http_user_agent", "http_x_forwarded_for", "host",
                    "server_name")
PRESETS: dict[str, tuple[dict[str, object], dict[str, str]]] = {
    # Caddy's `log` directive (format json, the default): its access log entry
    "caddy_json": ({"time_local": "ts", "remote_addr": "request.remote_ip",
                    "client_addr": "request.client_ip", "request_method": "request.method",
                    "request_uri": "request.uri", "server_protocol": "request.proto",
                    "host": "request.host", "status": "status", "body_bytes_sent": "size",
                    "request_length": "bytes_read", "request_time": "duration",
                    "http_user_agent": "request.headers.User-Agent",
                    "http_referer": "request.headers.Referer", "level": "level",
                    "logger": "logger"}, {"time_local": "iso8601"}),
    # Traefik's accessLog with format: json (durations in nanoseconds)
    "traefik_json": ({"time_local": "StartUTC", "remote_addr": "ClientHost",
                      "request_method": "RequestMethod", "request_uri": "RequestPath",
                      "server_protocol": "RequestProtocol", "host": "RequestHost",
                      "status": "DownstreamStatus", "upstream_status": "OriginStatus",
                      "body_bytes_sent": "DownstreamContentSize",
                      "request_time": {"path": "Duration", "unit": "ns"},
                      "upstream_response_time": {"path": "OriginDuration", "unit": "ns"},
                      "router_name": "RouterName", "service_name": "ServiceName",
                      "http_user_agent": "request_User-Agent",
                      "http_referer": "request_Referer"}, {"time_local": "iso8601"}),
    # nginx `log_format NAME escape=json '{"time_local":"$time_local", …}'`: every key is
    # the variable of its name (those logged are read, the others absent); the time is the
    # first of $time_local, $time_iso8601 and $msec that the line has
    "nginx_json": ({v: v for v in _NGINX_VARIABLES},
                   {"time_local": "clf", "time_iso8601": "iso8601", "msec": "epoch"}),
}


def json_format(name: str, mapping: dict[str, object], time_field: str = "time_local",
                layout: TimeLayout | None = None) -> JsonFormat:
    """`format: json` with `fields:` (`mapping`), its time in `time_field` (`layout`: the
    input's time_format, default iso8601)."""
    return JsonFormat(name, sources_of(mapping), {time_field: layout or TimeLayout("iso8601")})


def preset(name: str) -> JsonFormat:
    mapping, times = PRESETS[name]
    return JsonFormat(name, sources_of(mapping),
                      {field: TimeLayout(layout) for field, layout in times.items()})
