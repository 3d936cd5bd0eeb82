"""Prometheus names and labels for plogd's records (plogd/outputs/prometheus/naming.py)."""
import pytest

from plogd.outputs.prometheus.naming import help_text, label_name, labels, metric_name, quantile


@pytest.mark.parametrize("metric, prefix, expected", [
    ("nginx.request_time", "", "nginx_request_time"),
    ("nginx.request_time", "plogd", "plogd_nginx_request_time"),
    ("nginx.5xx-share", "", "nginx_5xx_share"),
    ("5xx.share", "", "_5xx_share"),            # a name cannot start with a digit
    ("app:latency", "", "app:latency"),         # colons are allowed
    ("nginx.hits[{uri}]", "", "nginx_hits__uri__"),
    ("café.hits", "", "caf__hits"),             # one _ per character outside the set
])
def test_metric_names_are_sanitized(metric, prefix, expected):
    assert metric_name(metric, prefix) == expected


@pytest.mark.parametrize("field, expected", [
    ("status", "status"), ("status_class", "status_class"), ("x-forwarded-for", "x_forwarded_for"),
    ("1st", "_1st"), ("__name__", "by_name__"), ("", "_"),
])
def test_label_names_are_sanitized_and_never_reserved(field, expected):
    assert label_name(field) == expected


@pytest.mark.parametrize("q, expected", [
    (95, "0.95"), (99.9, "0.999"), (50, "0.5"), (99.0, "0.99"), (100, "1"), (0, "0"),
    (99.99, "0.9999"), (0.1, "0.001"),
])
def test_quantile_is_the_percent_over_100_written_exactly(q, expected):
    assert quantile(q) == expected


def test_labels_of_a_grouped_percentile():
    record = {"host": "web01", "input": "nginx", "metric": "nginx.request_time", "q": 95,
              "group": {"status": 200}, "key": "nginx.request_time[200,p95]",
              "clock": 1795976400, "ns": 0, "value": 0.25}
    assert labels(record) == {"host": "web01", "input": "nginx", "status": "200",
                              "quantile": "0.95"}


def test_labels_of_a_plain_metric_are_host_and_input():
    assert labels({"host": "web01", "input": "nginx", "metric": "nginx.requests"}) == \
        {"host": "web01", "input": "nginx"}


def test_plogd_own_values_per_input_are_labelled_with_that_input():
    record = {"host": "web01", "input": "plogd", "metric": "plogd.lines",
              "group": {"input": "nginx"}}
    assert labels(record) == {"host": "web01", "input": "nginx"}


def test_a_by_field_named_like_a_label_of_plogd_is_exported_under_another_name():
    # `by: host` on nginx's virtual host must not overwrite the machine's host label
    record = {"host": "web01", "input": "nginx", "metric": "nginx.hits", "q": 99,
              "group": {"host": "example.org", "quantile": "x"}}
    assert labels(record) == {"host": "web01", "input": "nginx", "exported_host": "example.org",
                              "exported_quantile": "x", "quantile": "0.99"}


def test_an_absent_group_value_is_a_dash_as_in_the_zabbix_key():
    record = {"host": "h", "input": "i", "metric": "m", "group": {"uri": None}}
    assert labels(record)["uri"] == "-"


def test_help_names_the_metrics_the_inputs_and_the_window():
    assert help_text(["nginx.requests"], ["a", "b"], 60) == \
        "plogd metric nginx.requests (input a, b): value of the last closed 60 s window"
