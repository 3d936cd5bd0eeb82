"""Prometheus names for plogd's records: pure functions, no I/O.

    {"metric": "nginx.request_time", "host": "web01", "input": "nginx", "q": 95,
     "group": {"status": 200}, ...}
    -> nginx_request_time{host="web01", input="nginx", status="200", quantile="0.95"}
"""
from __future__ import annotations

import re
from decimal import Decimal

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_:]")
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")

# the labels plogd sets itself; a `by:` field of the same name is renamed, as Prometheus
# renames a scraped label that clashes with a target label
OWN_LABELS = ("host", "quantile")


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


def metric_name(metric: str, prefix: str = "") -> str:
    """`nginx.request_time` -> `nginx_request_time`; with prefix `plogd`:
    `plogd_nginx_request_time`. Every character outside [a-zA-Z0-9_:] becomes `_`, and a
    name that would start with a digit gets a leading `_`."""
    name = _NOT_NAME_CHAR.sub("_", f"{prefix}_{metric}" if prefix else metric)
    return name if valid_name(name) else "_" + name


def label_name(field: str) -> str:
    """A `by:` field as a label name: [a-zA-Z_][a-zA-Z0-9_]*, and never starting with `__`
    (reserved by Prometheus)."""
    name = _NOT_LABEL_CHAR.sub("_", field)
    if not _LABEL.match(name):       # empty, or starts with a digit
        name = "_" + name
    return "by_" + name.lstrip("_") if name.startswith("__") else name


def quantile(q: int | float) -> str:
    """A percent as Prometheus' quantile: 95 -> "0.95", 99.9 -> "0.999", 100 -> "1"
    (decimal arithmetic: 99.9 / 100 is 0.9990000000000001 in floats)."""
    return format((Decimal(str(q)) / 100).normalize(), "f")


def labels(record: dict) -> dict[str, str]:
    """host, input, one label per `by:` field, quantile for a percentile. A `by:` field
    named `input` replaces the input label: plogd's own per-input values
    (`{"input": "plogd", "group": {"input": "nginx"}}`) are about input nginx. A field
    named `host` or `quantile` becomes `exported_host` / `exported_quantile`."""
    out = {"host": str(record["host"]), "input": str(record["input"])}
    for field, value in (record.get("group") or {}).items():
        name = label_name(field)
        if name in OWN_LABELS:
            name = "exported_" + name
        out[name] = "-" if value is None else str(value)   # "-": as in the Zabbix key
    if record.get("q") is not None:
        out["quantile"] = quantile(record["q"])
    return out


def help_text(metrics: list[str], inputs: list[str], interval: int) -> str:
    """The HELP line of a metric: the plogd metric(s) and input(s) it comes from."""
    return (f"plogd metric {', '.join(metrics)} (input {', '.join(inputs)}): "
            f"value of the last closed {interval} s window")
