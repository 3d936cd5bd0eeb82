"""The default metric set of each built-in format (used by `plogd replay --format` and the
demo); conf/nginx.yaml, conf/apache.yaml, conf/error-logs.yaml and conf/json-logs.yaml
spell the same sets out for editing. Each access-log set has the share of 5xx responses and,
when the format logs a time, latency percentiles, both with an `alert:` (the triggers of
`plogd zabbix template`)."""
from __future__ import annotations

from .formats import ERROR_FORMATS, get_format


_SERIOUS = 'level in ["error", "crit", "alert", "emerg"]'


def error_metrics_for(format_name: str) -> list[dict]:
    """Error logs: lines by level, and what went wrong — by Apache's AH code, by nginx's
    message with its variable parts made constant (message_kind) — capped by `top:`."""
    prefix = "nginx" if format_name.startswith("nginx") else "apache"
    metrics = [
        {"key": f"{prefix}.error.lines", "type": "count"},
        {"key": f"{prefix}.error.level[{{level}}]", "type": "count", "by": "level"},
    ]
    if prefix == "apache":
        return metrics + [{"key": "apache.error.code[{ah_code}]", "type": "count",
                           "by": "ah_code", "top": 20}]
    return metrics + [
        {"key": "nginx.error.kind[{message_kind}]", "type": "count", "by": "message_kind",
         "top": 20, "where": _SERIOUS},
        {"key": "nginx.error.upstream", "type": "count",
         "where": f'upstream ~ "." and {_SERIOUS}'},
        {"key": "nginx.error.limited", "type": "count", "where": "excess >= 0"},   # limit_req
    ]


def metrics_for(format_name: str) -> list[dict]:
    """The default set of a format: of the metrics below, those whose fields it logs (a
    plugin's format too, named after nginx's fields or not)."""
    if format_name in ERROR_FORMATS:
        return error_metrics_for(format_name)
    prefix = format_name.split("_")[0]          # nginx, apache, caddy, traefik, haproxy
    fields = get_format(format_name).fields
    metrics: list[dict] = [{"key": f"{prefix}.requests", "type": "count"}]
    if "status" in fields:
        metrics += [
            {"key": f"{prefix}.status[{{status}}]", "type": "count", "by": "status"},
            {"key": f"{prefix}.status_class[{{status_class}}]", "type": "count",
             "by": "status_class"},
            {"key": f"{prefix}.errors", "type": "count", "where": "status >= 500"},
            {"key": f"{prefix}.5xx_share", "type": "ratio", "where": "status >= 500",
             "alert": {"above": 0.05, "for": "5m", "severity": "average"}},
        ]
    bytes_field = next((f for f in ("body_bytes_sent", "bytes_sent") if f in fields), None)
    if bytes_field is not None:
        metrics.append({"key": f"{prefix}.bytes", "type": "sum", "field": bytes_field})
    if "request_time" in fields:
        metrics += [
            {"key": f"{prefix}.request_time.avg", "type": "avg", "field": "request_time"},
            {"key": f"{prefix}.request_time[p{{q}}]", "type": "percentile",
             "field": "request_time", "q": [50, 95, 99],
             "alert": {"above": 1, "for": "5m", "severity": "warning", "q": 95}},
            {"key": f"{prefix}.request_time.max", "type": "max", "field": "request_time"},
        ]
    if "upstream_response_time" in fields:
        metrics.append({"key": f"{prefix}.upstream_time.avg", "type": "avg",
                        "field": "upstream_response_time"})
    return metrics


def config_for_format(format_name: str, interval: int = 60) -> dict:
    return {"interval": interval,
            "inputs": [{"name": format_name, "path": "-", "format": format_name,
                        "metrics": metrics_for(format_name)}]}
