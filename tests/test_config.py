"""Every configuration mistake stops start-up with one message: file, line, key, what was
found, what is allowed (and the closest name for a typo). `plogd check` shows it (exit 2)
or prints the summary (exit 0)."""
import logging
import os
import re
import socket
import time

import pytest

from helpers import ROOT, plogd
from plogd.config import ConfigError, from_data, load

GOOD = """\
interval: 60
state_dir: /tmp/plogd-test
zabbix:
  server: 127.0.0.1
  port: 10051
  host: web01
inputs:
  - name: nginx
    path: /var/log/nginx/access.log
    format: nginx_timed
    start: end
    metrics:
      - {key: nginx.requests, type: count}
      - {key: "nginx.status[{status}]", type: count, by: status}
      - {key: nginx.errors, type: count, where: "status >= 500"}
      - {key: nginx.bytes, type: sum, field: body_bytes_sent}
      - {key: nginx.request_time.avg, type: avg, field: request_time}
      - {key: nginx.request_time.max, type: max, field: request_time}
"""


def write(tmp_path, text):
    path = tmp_path / "plogd.yaml"
    path.write_text(text)
    return path


def test_the_issue_example_loads(tmp_path):
    config = load(str(write(tmp_path, GOOD)))
    assert config.zabbix.host == "web01" and config.inputs[0].format.name == "nginx_timed"
    assert [m.key for m in config.inputs[0].metrics][:2] == ["nginx.requests", "nginx.status[{status}]"]


@pytest.mark.parametrize("old,new,expected", [
    ("interval: 60", "intervall: 60", ":1: intervall: unknown key 'intervall'; allowed here: "
     "interval, state_dir, host, zabbix, outputs, inputs, max_line_length, stall_timeout, "
     "damaged_checkpoint, result_rotate_bytes (did you mean 'interval'?)"),
    ("interval: 60", "interval: soon", ":1: interval: found 'soon'; expected a whole number"),
    ("interval: 60", "interval: 0", ":1: interval: found 0; expected a number greater than 0"),
    ("  port: 10051", "  port: 70000", ":5: zabbix.port: found 70000; a port is 1 to 65535"),
    ("format: nginx_timed", "format: nginx_timd", ":10: inputs[0].format: unknown format "
     "'nginx_timd'; allowed: nginx_combined, nginx_main, nginx_timed"),
    ("format: nginx_timed", "format: 'regex:(?P<status>'", ":10: inputs[0].format: not a valid "
     "regular expression"),
    ("start: end", "start: middle", ":11: inputs[0].start: found 'middle'; allowed: end, beginning"),
    ("type: avg, field: request_time}", "type: avgg, field: request_time}",
     ":17: inputs[0].metrics[4].type: found 'avgg'; allowed: count, sum, avg, min, max "
     "(did you mean 'avg'?)"),
    ("field: body_bytes_sent}", "field: body_bytes}", ":16: inputs[0].metrics[3].field: found "
     "'body_bytes', a field format nginx_timed does not have"),
    ('"nginx.status[{status}]", type: count, by: status}', '"nginx.status", type: count, by: status}',
     ":14: inputs[0].metrics[1].key: found 'nginx.status', without the placeholder {status}"),
    ('where: "status >= 500"', 'where: "stauts >= 500"', ":15: inputs[0].metrics[2].where: "
     "'stauts' is not a field of this format (did you mean 'status'?)"),
    ("type: sum, field: body_bytes_sent}", "type: sum, field: method}",
     ":16: inputs[0].metrics[3].field: found 'method', which holds text"),
    ("{key: nginx.requests, type: count}", "{key: nginx.requests, type: count, colour: red}",
     ":13: inputs[0].metrics[0].colour: unknown key 'colour'"),
])
def test_mistakes_are_named_with_file_line_and_key(tmp_path, old, new, expected):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load(str(path))
    assert str(err.value).startswith(str(path) + expected.split(" (did")[0].split("; allowed: n")[0])
    assert expected in str(err.value) or expected.split(";")[0] in str(err.value)


def test_missing_inputs_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"plogd.yaml:1: top level: missing required key 'inputs'"):
        load(str(write(tmp_path, "interval: 60\n")))
    with pytest.raises(ConfigError, match=r"plogd.yaml:3: not valid YAML"):
        load(str(write(tmp_path, "interval: 60\ninputs: [\n")))
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load(str(tmp_path / "absent.yaml"))


def test_check_prints_the_summary_or_the_error(tmp_path):
    good = plogd("check", "-c", str(write(tmp_path, GOOD)))
    out = good.stdout.decode()
    assert "input nginx: /var/log/nginx/access.log, format nginx_timed" in out
    assert "nginx.status[{#STATUS}]" in out and "one key per status" in out
    assert re.search(r"\n    status +int, \$status\n", out)
    assert re.search(r"\n    request_time +float, \$request_time\n", out)
    bad = plogd("check", "-c", str(write(tmp_path, GOOD.replace("type: count}", "type: cnt}", 1))),
                check=False)
    assert bad.returncode == 2
    assert b"inputs[0].metrics[0].type: found 'cnt'" in bad.stderr
    assert b"Traceback" not in bad.stderr


@pytest.mark.parametrize("name", ["plogd.yaml", "nginx.yaml", "apache.yaml"])
def test_shipped_configurations_are_valid(name):
    result = plogd("check", "-c", str(ROOT / "conf" / name))
    assert b"OK" in result.stdout


def test_an_input_may_paste_the_servers_own_format(tmp_path):
    text = GOOD.replace("format: nginx_timed", "log_format: '$remote_addr - $remote_user "
                        "[$time_local] \"$request\" $status $body_bytes_sent $request_time'")
    text = text.replace("{key: nginx.request_time.max, type: max, field: request_time}",
                        "{key: nginx.request_time.max, type: max, field: request_time}")
    config = load(str(write(tmp_path, text)))
    assert config.inputs[0].format.fields["request_time"] == "float"
    apache = GOOD.replace("format: nginx_timed", "apache_format: '%h %l %u %t \"%r\" %>s %b %D'")
    config = load(str(write(tmp_path, apache)))
    assert config.inputs[0].format.fields["request_time"] == "float"


def test_time_locale_names_the_locale_of_apache_times(tmp_path):
    apache = GOOD.replace("format: nginx_timed", "apache_format: '%h %{%d/%b/%Y:%T %z}t %>s "
                          "%b %D'\n    time_locale: de_DE.UTF-8")
    config = load(str(write(tmp_path, apache)))
    assert config.inputs[0].time_locale == "de_DE.UTF-8"
    line = "1.2.3.4 19/Mär/2019:01:39:12 +0000 200 5 1000".encode()
    assert config.inputs[0].format.parse(line)["timestamp"] == 1552959552
    out = plogd("check", "-c", str(write(tmp_path, apache))).stdout.decode()
    assert "format apache_format (time names of de_DE.UTF-8)" in out


@pytest.mark.parametrize("old,new,expected", [
    ("format: nginx_timed", "apache_format: '%h %Z'", ":10: inputs[0].apache_format: "),
    ("format: nginx_timed", "format: nginx_timed\n    time_locale: de_DE.UTF-8",
     ":11: inputs[0].time_locale: found 'de_DE.UTF-8' with format:; time_locale is the locale "
     "of the month and day names in Apache's %{...}t times or in a time_format:, and goes "
     "only with apache_format: or time_format:"),
    ("format: nginx_timed", "apache_format: '%h %t'\n    time_locale: xx_YY.UTF-8",
     ":11: inputs[0].time_locale: the locale 'xx_YY.UTF-8' is not installed on this machine "
     "(`locale -a` lists the installed ones; as root, `localedef -i xx_YY -f UTF-8 "
     "xx_YY.UTF-8` generates it"),
    ("format: nginx_timed", "apache_format: '%h %t'\n    time_locale: 5",
     ":11: inputs[0].time_locale: found 5; expected a string"),
    ("format: nginx_timed", "log_format: '$remote_addr $status'",
     ":10: inputs[0].log_format: the format logs no date and time"),
    ("format: nginx_timed", "format: nginx_timed\n    log_format: '$status'",
     ":8: inputs[0]: found format and log_format; an input needs exactly one of"),
])
def test_format_mistakes(tmp_path, old, new, expected):
    with pytest.raises(ConfigError) as err:
        load(str(write(tmp_path, GOOD.replace(old, new, 1))))
    assert expected in str(err.value)


NEW_TYPES = GOOD.replace("    metrics:\n", """    late: current
    max_skew: 600
    rewrite:
      - {field: path, match: '^/items/\\d+', replace: '/items/{id}'}
    metrics:
      - {key: "nginx.request_time[p{q}]", type: percentile, field: request_time, q: [50, 95, 99, 99.9]}
      - {key: nginx.request_time.p99, type: percentile, field: request_time, q: 99}
      - {key: nginx.rps, type: rate, where: 'uri ^= "/api/"'}
      - {key: nginx.5xx_share, type: ratio, where: "status >= 500", of: 'method == "GET"'}
      - {key: nginx.clients, type: distinct, field: remote_addr}
      - {key: "nginx.hits[{uri}]", type: count, by: uri, top: 20}
      - {key: nginx.items, type: count, where: 'path ~ "^/items/[{]id[}]$"'}
""")


def test_the_new_metric_types_and_input_keys_load(tmp_path):
    spec = load(str(write(tmp_path, NEW_TYPES))).inputs[0]
    assert (spec.late, spec.max_skew) == ("current", 600)
    assert spec.rewrite[0].pattern.sub(spec.rewrite[0].replace, "/items/12") == "/items/{id}"
    by_key = {m.key: m for m in spec.metrics}
    assert by_key["nginx.request_time[p{q}]"].q == [50, 95, 99, 99.9]
    assert by_key["nginx.request_time.p99"].q == [99]
    assert by_key["nginx.5xx_share"].of.text == 'method == "GET"'
    assert by_key["nginx.hits[{uri}]"].top == 20 and by_key["nginx.requests"].top == 100
    defaults = load(str(write(tmp_path, GOOD))).inputs[0]
    assert (defaults.late, defaults.max_skew, defaults.rewrite) == ("drop", 3600, [])


@pytest.mark.parametrize("old,new,expected", [
    ("q: [50, 95, 99, 99.9]}", "q: [50, 95]}".replace("}", ", top: 3}"), "metrics[0].top: 'top:' caps"),
    ('"nginx.request_time[p{q}]"', "nginx.request_time", "metrics[0].key: found 'nginx.request_time', "
     "without the placeholder {q} that the 4 percentiles of 'q:' fill in, e.g. nginx.request_time[p{q}]"),
    ("q: [50, 95, 99, 99.9]}", "q: [50, 101]}", "metrics[0].q: found 101; expected a percent from 0 to 100"),
    ("q: [50, 95, 99, 99.9]}", "q: [50, 50]}", "metrics[0].q: found a list; expected one or more different"),
    (", q: [50, 95, 99, 99.9]}", "}", "metrics[0]: a percentile metric needs 'q:'"),
    ("field: request_time, q: 99}", "field: method, q: 99}", "metrics[1].field: found 'method', which holds text"),
    ("type: rate, where", "type: rate, field: status, where", "metrics[2].field: a rate takes no field"),
    ('type: ratio, where: "status >= 500", ', "type: ratio, ", "metrics[3]: a ratio metric needs 'where:'"),
    ('{key: nginx.rps, type: rate,', '{key: nginx.rps, type: rate, of: "status > 1",', "metrics[2].of: 'of:' is the denominator"),
    ("of: 'method == \"GET\"'", "of: 'method ~ \"(\"'", "metrics[3].of: bad regular expression"),
    ("type: distinct, field: remote_addr}", "type: distinct}", "metrics[4]: a distinct metric needs 'field:'"),
    ("top: 20}", "top: 0}", "metrics[5].top: found 0; expected a number greater than 0"),
    ("{key: nginx.requests, type: count}", "{key: nginx.requests, type: count, q: 5}", "'q:' is the percentile"),
    ("late: current", "late: later", "inputs[0].late: found 'later'; allowed: drop, current"),
    ("max_skew: 600", "max_skew: -1", "inputs[0].max_skew: found -1; expected a number greater than 0"),
    ("match: '^/items/\\d+'", "match: '^/items/(\\d+'", "inputs[0].rewrite[0].match: not a valid regular expression"),
    ("replace: '/items/{id}'", "replace: '/items/\\2'", "inputs[0].rewrite[0].replace: found"),
    ("{field: path,", "{field: status,", "inputs[0].rewrite[0].field: found 'status', which holds numbers"),
    ("{field: path,", "{field: pth,", "inputs[0].rewrite[0].field: found 'pth', a field format nginx_timed does not have (did you mean 'path'?)"),
])
def test_mistakes_in_the_new_metric_keys(tmp_path, old, new, expected):
    assert old in NEW_TYPES, old
    with pytest.raises(ConfigError) as err:
        load(str(write(tmp_path, NEW_TYPES.replace(old, new, 1))))
    assert expected in str(err.value)


@pytest.mark.parametrize("name,format_name", [("nginx.yaml", "nginx_timed"),
                                               ("apache.yaml", "apache_combined")])
def test_shipped_metric_sets_are_the_defaults_of_their_format(name, format_name):
    import yaml
    from plogd.defaults import metrics_for
    data = yaml.safe_load((ROOT / "conf" / name).read_text())
    assert data["inputs"][0]["format"] == format_name
    assert data["inputs"][0]["metrics"] == metrics_for(format_name)


def test_the_default_nginx_set_has_what_operators_ask_for():
    from plogd.defaults import metrics_for
    keys = {m["key"]: m for m in metrics_for("nginx_timed")}
    assert {"nginx.requests", "nginx.status[{status}]", "nginx.status_class[{status_class}]",
            "nginx.bytes", "nginx.request_time.avg", "nginx.upstream_time.avg"} <= set(keys)
    assert keys["nginx.request_time[p{q}]"]["q"] == [50, 95, 99]


# -- what YAML itself lets through (issue 11, point 13) ----------------------------------

def test_a_duplicate_key_is_refused_with_both_lines(tmp_path):
    text = GOOD.replace("      - {key: nginx.requests, type: count}\n",
                        "      - key: nginx.requests\n        type: count\n        type: sum\n")
    with pytest.raises(ConfigError) as e:
        load(str(write(tmp_path, text)))
    assert re.search(r"plogd\.yaml:15: .*'type' appears a second time.*first at line 14",
                     str(e.value)), str(e.value)


def test_not_utf8_names_the_line_of_the_bad_byte(tmp_path):
    path = tmp_path / "plogd.yaml"
    path.write_bytes(GOOD.replace("web01", "web\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"plogd\.yaml:6: the configuration is not UTF-8 "
                                          r"text: byte 0xe9 at column 12"):
        load(str(path))


@pytest.mark.parametrize("text", ["x: " + "[" * 3000 + "]" * 3000,
                                  "".join(f"{'  ' * i}k{i}:\n" for i in range(3000))])
def test_deep_nesting_is_one_error_not_a_recursion_error(tmp_path, text):
    with pytest.raises(ConfigError, match=r"plogd\.yaml:\d+: not valid YAML: .*nest"):
        load(str(write(tmp_path, text)))


def test_a_deep_filter_is_one_error(tmp_path):
    where = "(" * 3000 + "status >= 500" + ")" * 3000
    text = GOOD.replace('where: "status >= 500"', f'where: "{where}"')
    with pytest.raises(ConfigError, match=r"plogd\.yaml:15: inputs\[0\]\.metrics\[2\]\.where: "
                                          r"more than 100 nested 'not' or parentheses"):
        load(str(write(tmp_path, text)))


@pytest.mark.parametrize("glob_path, why", [
    ("/var/log/[nginx/*.log", "opens a character class that no ']' closes"),
    ("/var/log/nginx/[z-a]*.log", "the range z-a in '[z-a]' is empty"),
    ("/var/log/**/access.log", "'**' is one '*' here")])
def test_invalid_globs_are_named(tmp_path, glob_path, why):
    text = GOOD.replace("path: /var/log/nginx/access.log", f"path: '{glob_path}'")
    with pytest.raises(ConfigError, match=r"plogd\.yaml:9: inputs\[0\]\.path: found .*"
                                          + re.escape(why)):
        load(str(write(tmp_path, text)))


def test_a_fifo_as_configuration_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "plogd.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"the configuration is a FIFO \(named pipe\); "
                                          r"expected a regular file"):
        load(str(fifo))          # before: open() waits for a writer, for ever


def test_a_device_as_agent_config_is_refused(tmp_path):
    text = GOOD.replace("  server: 127.0.0.1\n", "  agent_config: /dev/zero\n")
    with pytest.raises(ConfigError, match=r"zabbix\.agent_config: /dev/zero: the Zabbix agent "
                                          r"configuration is a device"):
        load(str(write(tmp_path, text)))


def test_many_metrics_are_checked_in_linear_time():
    """156k metrics took 400 s: the duplicate checks compared each key with all before."""
    data = {"inputs": [{"name": "web", "path": "/var/log/x.log", "format": "nginx_combined",
                        "metrics": [{"key": f"m{i}", "type": "count"} for i in range(60_000)]}]}
    began = time.monotonic()
    config = from_data("big.yaml", data)
    took = time.monotonic() - began
    assert len(config.inputs[0].metrics) == 60_000
    assert took < 20, f"{took:.1f} s"          # linear: ~2 s here; quadratic: > 60 s


def test_a_tls_key_readable_by_others_is_used_with_a_warning(tmp_path, caplog):
    psk = tmp_path / "key.psk"
    psk.write_text("0" * 64)
    psk.chmod(0o644)
    text = GOOD.replace("  host: web01\n", f"  host: web01\n  tls_connect: psk\n  "
                        f"tls_psk_identity: web01\n  tls_psk_file: {psk}\n")
    caplog.set_level(logging.WARNING, "plogd.config")
    try:
        load(str(write(tmp_path, text)))
    except ConfigError as e:      # Python < 3.13 has no PSK: the check comes before that
        assert "Python >= 3.13" in str(e)
    assert f"{psk} is readable by every user of this host (mode 0644)" in caplog.text
    caplog.clear()
    psk.chmod(0o600)
    try:
        load(str(write(tmp_path, text)))
    except ConfigError:
        pass
    assert "readable by every user" not in caplog.text


SECOND_INPUT = """\
  - name: api
    path: /var/log/nginx/api.log
    format: nginx_timed
    metrics:
      - {key: api.requests, type: count}
      - {key: "api.request_time[p{q}]", type: percentile, field: request_time, q: [50, 95]}
"""


@pytest.mark.parametrize("old,new,expected", [
    ("{key: api.requests, type: count}", "{key: nginx.requests, type: count}",
     ":23: inputs[1].metrics[0].key: found 'nginx.requests', which sends nginx.requests, a key "
     "inputs[0].metrics[0] (line 13) sends too; every key of host web01 comes from one metric "
     "of one input: rename one of them"),
    ('"api.request_time[p{q}]"', '"nginx.request_time[{q}]"', None),
    ('"api.request_time[p{q}]", type: percentile, field: request_time, q: [50, 95]}',
     '"nginx.request_time.avg[p{q}]", type: percentile, field: request_time, q: [50]}', None),
    ("{key: api.requests, type: count}", '{key: "nginx.status[{status},api]", type: count, by: status}',
     ":23: inputs[1].metrics[0].key: found 'nginx.status[{status},api]', whose discovery key "
     "nginx.status.discovery is that of 'nginx.status[{status}]' in inputs[0].metrics[1] "
     "(line 14) too; each by: metric needs its own: give one of them another name before "
     "the '['"),
])
def test_keys_shared_by_two_inputs_of_the_host_stop_start_up(tmp_path, old, new, expected):
    """All inputs send to one host: a key, or a discovery key, in two places is refused."""
    path = write(tmp_path, GOOD + SECOND_INPUT.replace(old, new, 1))
    if expected is None:        # a different key that does not collide loads
        load(str(path))
        return
    with pytest.raises(ConfigError) as err:
        load(str(path))
    assert str(err.value) == str(path) + expected


def test_a_percentile_key_equal_to_a_plain_one_stops_start_up(tmp_path):
    text = GOOD.replace("      - {key: nginx.request_time.max, type: max, field: request_time}\n",
                        "      - {key: \"nginx.request_time[p95]\", type: max, field: request_time}\n"
                        "      - {key: \"nginx.request_time[p{q}]\", type: percentile, "
                        "field: request_time, q: [50, 95]}\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(str(path))
    assert str(err.value).startswith(
        f"{path}:19: inputs[0].metrics[6].key: found 'nginx.request_time[p{{q}}]', which sends "
        "nginx.request_time[p95], a key inputs[0].metrics[5] (line 18) sends too")


def test_two_by_metrics_of_one_input_with_one_discovery_key_stop_start_up(tmp_path):
    text = GOOD.replace("      - {key: nginx.errors,",
                        "      - {key: \"nginx.status[{status},bytes]\", type: sum, "
                        "field: body_bytes_sent, by: status}\n      - {key: nginx.errors,")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"plogd.yaml:15: inputs\[0\]\.metrics\[2\]\.key: found "
                       r"'nginx.status\[\{status\},bytes\]', whose discovery key "
                       r"nginx.status.discovery is that of 'nginx.status\[\{status\}\]' in "
                       r"inputs\[0\]\.metrics\[1\] \(line 14\) too"):
        load(str(path))


def test_the_host_of_the_values_is_named_without_zabbix_too(tmp_path):
    """Graphite, InfluxDB and Prometheus users name the host with a top-level `host:`;
    with Zabbix, its host (given or from the agent) names every output's values."""
    base = "inputs: [{path: /x, format: nginx_combined, metrics: [{key: r, type: count}]}]\n"
    path = tmp_path / "c.yaml"
    path.write_text("host: web07\n" + base)
    assert load(str(path)).host == "web07"
    path.write_text("host: web07\nzabbix: {host: zbx-web07}\n" + base)
    assert load(str(path)).host == "zbx-web07"
    path.write_text(base)
    assert load(str(path)).host == socket.gethostname()
