"""The line output's pure parts: each format's lines for a record, the UDP packing, the url
and option checks. No sockets here."""
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, strategies as st

from plogd.outputs.line import LineOutput
from plogd.outputs.line.formats import (RENDERERS, quantile_name, render_graphite, render_influx,
                                        render_json, render_statsd)
from plogd.outputs.line.transport import Address, datagrams, parse_url

CLOCK = 1795976400      # a window start (a multiple of 60)


def record(metric="nginx.status", value=12, group=None, q=None, input="nginx"):
    r = {"host": "web01", "key": "k", "clock": CLOCK, "ns": 0, "value": value,
         "input": input, "metric": metric}
    if group is not None:
        r["group"] = group
    if q is not None:
        r["q"] = q
    return r


def test_json_line_is_the_record_as_it_stands():
    r = record(group={"uri": "/api/ü x"}, q=99.9, value=0.25)
    [line] = render_json(r)
    assert "\n" not in line
    assert json.loads(line) == r


def test_graphite_line_path_value_clock():
    assert render_graphite(record(group={"status": 200})) == \
        [f"nginx.status.200 12 {CLOCK}"]
    assert render_graphite(record(metric="nginx.request_time", value=0.125, q=95),
                           "web01.plogd") == \
        [f"web01.plogd.nginx.request_time.p95 0.125 {CLOCK}"]


def test_graphite_group_values_never_add_path_levels():
    """A dot, a slash or a space in a group value becomes "_"; `other` stays."""
    assert render_graphite(record(group={"uri": "/api/v1 x"})) == \
        [f"nginx.status._api_v1_x 12 {CLOCK}"]
    assert render_graphite(record(group={"ip": "1.2.3.4"})) == \
        [f"nginx.status.1_2_3_4 12 {CLOCK}"]
    assert render_graphite(record(group={"ip": "other"})) == \
        [f"nginx.status.other 12 {CLOCK}"]
    assert render_graphite(record(group={"ip": ""})) == [f"nginx.status._ 12 {CLOCK}"]


def test_graphite_prefix_empty_has_no_leading_dot_and_dots_are_trimmed():
    assert render_graphite(record(), "")[0].startswith("nginx.status ")
    assert render_graphite(record(), ".web01.plogd.")[0].startswith("web01.plogd.nginx.status ")
    assert render_graphite(record(), "web 01")[0].startswith("web_01.nginx.status ")


@given(st.text(), st.floats(min_value=0.1, max_value=99.99))
def test_graphite_any_group_value_gives_one_well_formed_line(value, q):
    [line] = render_graphite(record(group={"uri": value}, q=q), "web01.plogd")
    path, number, clock = line.split(" ")
    assert path.split(".")[:4] == ["web01", "plogd", "nginx", "status"]
    assert len(path.split(".")) == 6 and all(path.split("."))
    assert (number, clock) == ("12", str(CLOCK))


def test_quantile_names():
    assert [quantile_name(q) for q in (95, 99.9, 50.0, 99.99)] == \
        ["p95", "p99_9", "p50", "p99_99"]


def test_statsd_gauges_without_clock():
    assert render_statsd(record(group={"status": 200})) == ["nginx.status.200:12|g"]
    assert render_statsd(record(value=0.5, q=99.9), "web01") == \
        ["web01.nginx.status.p99_9:0.5|g"]


def test_statsd_negative_gauge_is_set_not_subtracted():
    """`name:-3|g` would subtract 3 from the gauge: set it to 0 first."""
    assert render_statsd(record(value=-3)) == ["nginx.status:0|g", "nginx.status:-3|g"]


def test_influx_measurement_tags_float_value_seconds():
    assert render_influx(record(group={"status": 200})) == \
        [f"nginx.status,host=web01,input=nginx,status=200 value=12 {CLOCK}"]
    assert render_influx(record(metric="nginx.request_time", value=0.125, q=99.9)) == \
        [f"nginx.request_time,host=web01,input=nginx,quantile=99.9 value=0.125 {CLOCK}"]


def test_influx_escapes_commas_spaces_equals():
    [line] = render_influx(record(metric="a b,c", group={"u ri": "/a,b=c d"}))
    assert line == f"a\\ b\\,c,host=web01,input=nginx,u\\ ri=/a\\,b\\=c\\ d value=12 {CLOCK}"


def test_influx_group_named_like_a_tag_takes_its_place_and_empty_tags_are_left_out():
    assert render_influx(record(metric="plogd.lines", input="plogd",
                                group={"input": "nginx"})) == \
        [f"plogd.lines,host=web01,input=nginx value=12 {CLOCK}"]
    assert render_influx(record(group={"uri": ""})) == \
        [f"nginx.status,host=web01,input=nginx value=12 {CLOCK}"]


@pytest.mark.parametrize("render", [render_graphite, render_influx, render_statsd])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), None, "12"])
def test_a_value_that_is_not_a_finite_number_is_refused(render, value):
    with pytest.raises(ValueError):
        render(record(value=value))


def test_datagrams_pack_whole_lines_up_to_the_limit():
    lines = [b"a" * 9 + b"\n", b"b" * 4 + b"\n", b"c" * 4 + b"\n", b"d" * 30 + b"\n",
             b"e\n"]
    packed = datagrams(lines, 12)
    assert packed == [lines[0], lines[1] + lines[2], lines[3], lines[4]]


@given(st.lists(st.binary(min_size=0, max_size=50).map(lambda b: b.replace(b"\n", b"")
                                                        + b"\n"), max_size=60),
       st.integers(min_value=1, max_value=200))
def test_datagrams_never_cut_a_line(lines, limit):
    packed = datagrams(lines, limit)
    assert b"".join(packed) == b"".join(lines)
    for datagram in packed:
        assert datagram.endswith(b"\n")
        assert len(datagram) <= limit or datagram.count(b"\n") == 1


def test_urls():
    assert parse_url("tcp://127.0.0.1:2003") == Address("tcp", "127.0.0.1", 2003)
    assert parse_url("udp://graphite.example:8125/") == Address("udp", "graphite.example", 8125)
    assert parse_url("tcp://[::1]:2003") == Address("tcp", "::1", 2003)
    assert parse_url("unix:///run/carbon.sock") == Address("unix", path="/run/carbon.sock")


@pytest.mark.parametrize("url", [None, "", "127.0.0.1:2003", "http://h:1", "tcp://h",
                                 "tcp://:2003", "tcp://h:99999", "udp://h:x", "tcp://h:1/p",
                                 "unix://run/x.sock", "unix:///", 2003])
def test_bad_urls_say_what_is_accepted(url):
    with pytest.raises(ValueError, match="url: .*accepted: tcp://HOST:PORT, "
                                         "udp://HOST:PORT or unix:///PATH"):
        LineOutput.check({"url": url})


@pytest.mark.parametrize("options, message", [
    ({"format": "carbon"}, "format: 'carbon' is not a format; accepted: json, graphite, "
                           "influx, statsd"),
    ({"prefix": 3}, "prefix: 3 is not text"),
    ({"timeout": 0}, "timeout: 0 is not a duration; accepted: seconds > 0"),
    ({"max_datagram": 70000}, "max_datagram: 70000 .* accepted: bytes from 64 to 65507"),
])
def test_bad_options_say_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        LineOutput.check({"url": "udp://127.0.0.1:8125", **options})


def test_defaults_are_accepted():
    LineOutput.check({"url": "tcp://127.0.0.1:2003"})
    assert LineOutput.type == "line"
    assert LineOutput.OPTIONS == {"url": None, "format": "json", "prefix": "", "timeout": 10,
                                  "max_datagram": 1400}


HERE = Path(__file__).parent.parent


def test_sample_yaml_line_outputs_are_accepted():
    outputs = yaml.safe_load((HERE / "sample.yaml").read_text())["outputs"]
    assert {o["format"] for o in outputs} == set(RENDERERS)
    for o in outputs:
        LineOutput.check({k: v for k, v in o.items() if k in LineOutput.OPTIONS})


def test_readme_examples_are_what_the_formats_write():
    """The README's example lines for its three records are the renderers' output."""
    blocks = re.findall(r"```(\w*)\n(.*?)```", (HERE / "README.md").read_text(), re.S)
    records = [json.loads(line) for line in
               next(text for lang, text in blocks if lang == "json").splitlines()]
    examples = {
        "graphite": [render_graphite(r, "web01.plogd")[0] for r in records],
        "influx": [render_influx(r)[0] for r in records],
        "statsd": [render_statsd(r, "web01.plogd")[0] for r in records],
        "json": render_json(records[0])}
    plain = [text.splitlines() for lang, text in blocks if lang == ""]
    for lines in examples.values():
        assert lines in plain
