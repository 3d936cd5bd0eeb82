"""The line output's formats: one record (plogd.outputs.base) -> the text lines a receiver
reads. Plain functions, no I/O. A renderer raises ValueError for a record its format cannot
carry (a value that is not a finite number); the output reports such records as refused.

- json:     the record, one JSON object per line.
- graphite: `PREFIX.metric[.group value...][.pQ] value clock` (plaintext protocol).
- influx:   `metric,host=H,input=I[,FIELD=group value][,quantile=Q] value=V clock` (line
            protocol, timestamps in seconds).
- statsd:   `PREFIX.metric[.group value...][.pQ]:V|g` (gauges; statsd has no timestamp).

Percentiles are named `p` + the quantile with its dot as `_`: q 95 -> p95, 99.9 -> p99_9.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

# A Graphite/statsd path component: anything but these becomes "_", so that a group value
# ("/api/v1 x", "1.2.3.4") never adds a path level nor breaks the line.
_UNSAFE_COMPONENT = re.compile(r"[^A-Za-z0-9_-]")


def _component(text: object) -> str:
    return _UNSAFE_COMPONENT.sub("_", str(text)) or "_"


def _dotted(text: str) -> str:
    """A name whose dots are meant as path levels (a metric name, the prefix)."""
    return ".".join(_component(part) for part in text.split(".") if part)


def quantile_name(q: float) -> str:
    """95 -> "p95", 99.9 -> "p99_9", 50.0 -> "p50"."""
    return "p" + f"{q:g}".replace(".", "_")


def _number(record: dict) -> str:
    value = record["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"value {value!r} is not a finite number")
    return repr(value)


def path(record: dict, prefix: str = "") -> str:
    """The Graphite/statsd name of the record's series."""
    parts = [_dotted(prefix)] if _dotted(prefix) else []
    parts.append(_dotted(record["metric"]))
    parts.extend(_component(v) for v in record.get("group", {}).values())
    if "q" in record:
        parts.append(quantile_name(record["q"]))
    return ".".join(parts)


def render_json(record: dict, prefix: str = "") -> list[str]:
    return [json.dumps(record, ensure_ascii=False, separators=(",", ":"))]


def render_graphite(record: dict, prefix: str = "") -> list[str]:
    return [f"{path(record, prefix)} {_number(record)} {record['clock']}"]


def render_statsd(record: dict, prefix: str = "") -> list[str]:
    name, value = path(record, prefix), _number(record)
    if record["value"] < 0:
        # a signed gauge value is a change, not a value: set 0 first, then subtract
        return [f"{name}:0|g", f"{name}:{value}|g"]
    return [f"{name}:{value}|g"]


# Line protocol escapes (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/):
# measurement: comma, space; tag key and value: comma, equals sign, space. A newline cannot
# be escaped: it becomes a space.
def _escape(text: object, special: str) -> str:
    text = str(text).replace("\\", "\\\\").replace("\n", " ").replace("\r", " ")
    for char in special:
        text = text.replace(char, "\\" + char)
    return text


def render_influx(record: dict, prefix: str = "") -> list[str]:
    """A group field named like a built-in tag (host, input, quantile) takes its place:
    plogd's `plogd.lines[nginx]` ({"input": "plogd", "group": {"input": "nginx"}}) is
    tagged input=nginx."""
    tags = {"host": record["host"], "input": record["input"], **record.get("group", {})}
    if "q" in record:
        tags["quantile"] = f"{record['q']:g}"
    tag_text = "".join(f",{_escape(k, ',= ')}={_escape(v, ',= ')}"
                       for k, v in sorted(tags.items()) if str(v) != "")  # no empty tags
    # `value=12` (no `i` suffix) is a float field: a series never changes field type
    return [f"{_escape(record['metric'], ', ')}{tag_text} value={_number(record)} "
            f"{record['clock']}"]


RENDERERS: dict[str, Callable[[dict, str], list[str]]] = {
    "json": render_json, "graphite": render_graphite, "influx": render_influx,
    "statsd": render_statsd}
