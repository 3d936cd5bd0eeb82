"""The default metric set of each built-in format (used by `plogd replay --format` and the
demo); conf/nginx.yaml and conf/apache.yaml spell the same sets out for editing. Each has the
share of 5xx responses and, when the format logs a time, latency percentiles, both with an
`alert:` (the triggers of `plogd zabbix template`)."""
from __future__ import annotations

from .formats import BUILTIN_TEMPLATES


def metrics_for(format_name: str) -> list[dict]:
    prefix = "nginx" if format_name.startswith("nginx") else "apache"
    fields = BUILTIN_TEMPLATES.get(format_name, "")
    bytes_field = "bytes_sent" if "$bytes_sent" in fields else "body_bytes_sent"
    metrics = [
        {"key": f"{prefix}.requests", "type": "count"},
        {"key": f"{prefix}.status[{{status}}]", "type": "count", "by": "status"},
        {"key": f"{prefix}.status_class[{{status_class}}]", "type": "count", "by": "status_class"},
        {"key": f"{prefix}.errors", "type": "count", "where": "status >= 500"},
        {"key": f"{prefix}.5xx_share", "type": "ratio", "where": "status >= 500",
         "alert": {"above": 0.05, "for": "5m", "severity": "average"}},
        {"key": f"{prefix}.bytes", "type": "sum", "field": bytes_field},
    ]
    if "$request_time" in fields:
        metrics += [
            {"key": f"{prefix}.request_time.avg", "type": "avg", "field": "request_time"},
            {"key": f"{prefix}.request_time[p{{q}}]", "type": "percentile",
             "field": "request_time", "q": [50, 95, 99],
             "alert": {"above": 1, "for": "5m", "severity": "warning", "q": 95}},
            {"key": f"{prefix}.request_time.max", "type": "max", "field": "request_time"},
            {"key": f"{prefix}.upstream_time.avg", "type": "avg", "field": "upstream_response_time"},
        ]
    return metrics


def config_for_format(format_name: str, interval: int = 60) -> dict:
    return {"interval": interval,
            "inputs": [{"name": format_name, "path": "-", "format": format_name,
                        "metrics": metrics_for(format_name)}]}
