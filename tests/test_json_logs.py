"""JSON logs: `format: json` with `fields:` mapping plogd's fields to JSON paths, and the
presets caddy_json, traefik_json and nginx_json (nginx `escape=json`): types follow the
field names, times are epoch seconds or ISO 8601, a missing key is an absent field, and the
order of the keys does not matter. The sample lines follow the layouts the servers'
documentation describes (Caddy's access log entry, Traefik's JSON access log fields)."""
import json

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from helpers import plogd, read_records
from plogd.config import ConfigError, load
from plogd.defaults import metrics_for
from plogd.formats import get_format
from plogd.formats.detect import detect
from plogd.traffic import generate

CADDY = {"level": "info", "ts": 1646861401.5241024, "logger": "http.log.access",
         "msg": "handled request",
         "request": {"remote_ip": "127.0.0.1", "remote_port": "41342",
                     "client_ip": "127.0.0.1", "proto": "HTTP/2.0", "method": "GET",
                     "host": "example.com", "uri": "/docs?page=2",
                     "headers": {"User-Agent": ["curl/7.82.0"], "Accept": ["*/*"]},
                     "tls": {"resumed": False, "version": 772, "proto": "h2"}},
         "bytes_read": 0, "user_id": "", "duration": 0.000929675, "size": 10900,
         "status": 200, "resp_headers": {"Server": ["Caddy"]}}
TRAEFIK = {"ClientAddr": "192.168.1.10:51234", "ClientHost": "192.168.1.10",
           "ClientPort": "51234", "ClientUsername": "-", "DownstreamContentSize": 19,
           "DownstreamStatus": 502, "Duration": 1_250_000_000, "OriginContentSize": 19,
           "OriginDuration": 1_200_000_000, "OriginStatus": 502, "Overhead": 50_000_000,
           "RequestAddr": "whoami.localhost", "RequestContentSize": 0, "RequestCount": 7,
           "RequestHost": "whoami.localhost", "RequestMethod": "POST",
           "RequestPath": "/api/items", "RequestPort": "-", "RequestProtocol": "HTTP/1.1",
           "RequestScheme": "http", "RetryAttempts": 0, "RouterName": "whoami@docker",
           "ServiceName": "whoami@docker", "StartLocal": "2024-03-01T11:00:00.123456789+01:00",
           "StartUTC": "2024-03-01T10:00:00.123456789Z", "entryPointName": "web",
           "level": "info", "msg": "", "time": "2024-03-01T11:00:01+01:00"}
# log_format json_log escape=json '{"time_local":"$time_local","remote_addr":…}'
NGINX = {"time_local": "01/Mar/2024:10:00:00 +0000", "remote_addr": "10.0.0.1",
         "remote_user": "", "request": "GET /a?b=1 HTTP/1.1", "status": "404",
         "body_bytes_sent": "153", "request_time": "0.004", "http_referer": "",
         "http_user_agent": "Mozilla/5.0 \"quoted\"", "upstream_response_time": "0.001, 0.002"}


def line(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def test_the_caddy_preset():
    rec = get_format("caddy_json").parse(line(CADDY))
    assert rec["timestamp"] == 1646861401 and rec["status"] == 200
    assert (rec["method"], rec["path"], rec["protocol"]) == ("GET", "/docs?page=2", "HTTP/2.0")
    assert rec["body_bytes_sent"] == 10900 and rec["request_time"] == 0.000929675
    assert rec["http_user_agent"] == "curl/7.82.0" and rec["http_referer"] is None


@pytest.mark.parametrize("ts", [[], {}, True, "", "yesterday"])
def test_a_time_that_is_no_time_is_an_unmatched_line_never_an_error(ts):
    """An empty list once reached the time parser as None (found by mypy)."""
    fmt = get_format("caddy_json")
    assert fmt.parse(line({**CADDY, "ts": ts})) is None
    columns, unmatched = fmt.batch_extractor(["timestamp", "status"])([line({**CADDY, "ts": ts})])
    assert unmatched == 1 and columns["status"] == []


def test_the_traefik_preset_reads_nanoseconds():
    rec = get_format("traefik_json").parse(line(TRAEFIK))
    assert rec["timestamp"] == 1709287200 and rec["status"] == 502
    assert rec["request_time"] == pytest.approx(1.25)
    assert rec["upstream_response_time"] == pytest.approx(1.2)
    assert (rec["method"], rec["path"], rec["status_class"]) == ("POST", "/api/items", "5xx")


def test_the_nginx_preset_reads_strings_as_nginx_writes_them():
    fmt = get_format("nginx_json")
    rec = fmt.parse(line(NGINX))
    assert rec["timestamp"] == 1709287200 and rec["status"] == 404
    assert rec["body_bytes_sent"] == 153 and rec["upstream_response_time"] == pytest.approx(0.003)
    assert rec["http_user_agent"] == 'Mozilla/5.0 "quoted"' and rec["path"] == "/a?b=1"
    assert rec["remote_user"] == "" and rec["http_x_forwarded_for"] is None    # not logged
    # the time from $time_iso8601 or $msec when the format logs that one
    assert fmt.parse(line({"time_iso8601": "2024-03-01T11:00:00+01:00"}))["timestamp"] == \
        1709287200
    assert fmt.parse(line({"msec": "1709287200.250"}))["timestamp"] == 1709287200
    assert fmt.parse(line({**NGINX, "status": "abc"})) is None        # not an int
    assert fmt.parse(b"not json") is None and fmt.parse(b"[1, 2]") is None


def _shuffled(obj, rnd):
    if not isinstance(obj, dict):
        return obj
    items = [(k, _shuffled(v, rnd)) for k, v in obj.items()]
    rnd.shuffle(items)
    return dict(items)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([("caddy_json", CADDY), ("traefik_json", TRAEFIK),
                        ("nginx_json", NGINX)]), st.randoms(), st.booleans())
def test_any_key_order_and_spacing_give_the_same_record(preset, rnd, spaced):
    name, obj = preset
    fmt = get_format(name)
    text = json.dumps(_shuffled(obj, rnd), indent=None if not spaced else 0)
    assert fmt.parse(text.replace("\n", " ").encode()) == fmt.parse(line(obj))


def test_json_with_a_mapping_as_in_the_issue(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"\n".join(line(o) for o in [
        {"ts": 1709287200, "status": 200, "size": 10, "duration": 0.5,
         "request": {"method": "GET", "uri": "/a"}},
        {"request": {"uri": "/b", "method": "POST"}, "duration": 1.5, "status": 500,
         "ts": 1709287201.9},
        {"ts": 1709287260, "status": 204}]) + b"\n")
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
inputs:
  - path: {log}
    format: json
    fields: {{time_local: ts, status: status, body_bytes_sent: size, request_time: duration,
             method: request.method, path: request.uri}}
    time_format: epoch
    metrics:
      - {{key: requests, type: count}}
      - {{key: "by_method[{{method}}]", type: count, by: method}}
      - {{key: bytes, type: sum, field: body_bytes_sent}}
      - {{key: slow, type: max, field: request_time}}
""")
    records = read_records(plogd("replay", "-c", str(config), str(log)).stdout)
    values = {(r["clock"], r["key"]): r["value"] for r in records}
    assert values[(1709287200, "requests")] == 2 and values[(1709287260, "requests")] == 1
    assert values[(1709287200, "by_method[POST]")] == 1
    assert values[(1709287200, "bytes")] == 10 and values[(1709287200, "slow")] == 1.5
    out = plogd("check", "-c", str(config)).stdout.decode()
    assert "request_time" in out and "float, JSON duration" in out


@pytest.mark.parametrize("fields,expected", [
    ("{status: status}", "fields: has no 'time_local', the field holding the time"),
    ("{time_local: ts, status: [a]}", "fields: status: found ['a']; expected a JSON path"),
    ("{time_local: ts, status: {path: s, unit: ms}}", "fields: status: a unit goes with a "
                                                      "duration"),
    ("[ts]", "fields: found a list"),
])
def test_mapping_mistakes_are_named(tmp_path, fields, expected):
    config = tmp_path / "plogd.yaml"
    config.write_text(f"inputs:\n  - path: x\n    format: json\n    fields: {fields}\n"
                      "    metrics: [{key: n, type: count}]\n")
    with pytest.raises(ConfigError) as err:
        load(str(config))
    assert expected in str(err.value)


def test_the_nginx_preset_gives_the_windows_of_the_same_requests_in_nginx_timed(tmp_path):
    plain = list(generate(3000, seed=5))
    timed = get_format("nginx_timed")
    keys = ("time_local", "remote_addr", "remote_user", "request", "status",
            "body_bytes_sent", "http_referer", "http_user_agent", "request_time",
            "upstream_response_time")
    as_json = []
    for text in plain:
        rec = timed.parse(text.rstrip(b"\n"))
        as_json.append(line({k: "-" if rec[k] is None else str(rec[k]) for k in keys}))
    (tmp_path / "plain.log").write_bytes(b"".join(plain))
    (tmp_path / "json.log").write_bytes(b"\n".join(as_json) + b"\n")
    assert metrics_for("nginx_json") == metrics_for("nginx_timed")
    want = plogd("replay", "--format", "nginx_timed", str(tmp_path / "plain.log")).stdout
    got = plogd("replay", "--format", "nginx_json", str(tmp_path / "json.log")).stdout
    # the same values (floats summed in another order may differ in the last digit)
    expected = {(r["clock"], r["key"]): r["value"] for r in read_records(want)}
    assert {(r["clock"], r["key"]): r["value"] for r in read_records(got)} == \
        {key: pytest.approx(value, rel=1e-12) for key, value in expected.items()}
    assert detect([as_json[0], line(CADDY), line(TRAEFIK)] * 2)[0][1] == pytest.approx(1 / 3)
    assert detect([line(CADDY)])[0][0] == "caddy_json"
    assert detect([line(TRAEFIK)])[0][0] == "traefik_json"


def test_the_shipped_json_configuration_holds_the_presets_default_sets():
    from helpers import ROOT
    data = yaml.safe_load((ROOT / "conf" / "json-logs.yaml").read_text())
    presets = [i for i in data["inputs"] if i["format"] != "json"]
    assert [i["metrics"] for i in presets] == [metrics_for(i["format"]) for i in presets]
    assert b"OK" in plogd("check", "-c", str(ROOT / "conf" / "json-logs.yaml")).stdout
