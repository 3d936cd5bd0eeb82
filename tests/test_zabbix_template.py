"""`plogd zabbix template` and `plogd check`'s item list: the template's keys are exactly the
keys plogd sends (its metrics', with percentiles expanded and by: members discovered, and
plogd.monitoring's own), with the value types the server needs; UUIDs are unique and derived
from names (same config -> same bytes); `alert:` becomes a trigger with its own macro and
is validated like every other key. The import into a real server is in
tests/integration/test_template_import.py."""
import json
import re
import uuid
from types import SimpleNamespace

import pytest
import yaml

from helpers import ROOT, plogd
from plogd import monitoring
from plogd.config import ConfigError, load
from plogd.stages.aggregate import InputCounters
from plogd.outputs.zabbix.template import render_template

NGINX = ROOT / "conf" / "nginx.yaml"


def template_of(path, name="t"):
    return yaml.safe_load(render_template(load(str(path)), name))["zabbix_export"]


def all_items(tpl):
    """{key: item} of the template's items and item prototypes."""
    found = {i["key"]: i for i in tpl.get("items", [])}
    for rule in tpl.get("discovery_rules", []):
        found.update({p["key"]: p for p in rule["item_prototypes"]})
    return found


def plogd_keys_sent(input_name: str) -> set[str]:
    """The keys plogd.monitoring really sends for one input, with the outputs'."""
    aggregator = SimpleNamespace(counters=InputCounters(), newest=0)
    stats = {input_name: {s: 0 for s in monitoring.READER}}
    outputs = [SimpleNamespace(name="zabbix", type="zabbix")]
    values = monitoring.values(100.0, {input_name: aggregator}, stats, 0,
                               ("/nonexistent/results.jsonl", "/nonexistent", outputs))
    return {v.key for v in values}


def test_export_is_the_6_0_format_with_top_level_groups():
    export = template_of(NGINX)
    assert export["version"] == "6.0"
    assert "template_groups" not in export
    assert export["groups"][0]["name"] == "Templates/Applications"
    [template] = export["templates"]
    assert template["template"] == template["name"] == "t"


def test_keys_are_exactly_the_configs_and_plogds_own():
    tpl = template_of(NGINX)["templates"][0]
    keys = set(all_items(tpl))
    config_keys = {"nginx.requests", "nginx.errors", "nginx.5xx_share", "nginx.bytes",
                   "nginx.request_time.avg", "nginx.request_time[p50]",
                   "nginx.request_time[p95]", "nginx.request_time[p99]",
                   "nginx.request_time.max", "nginx.upstream_time.avg",
                   "nginx.status[{#STATUS}]", "nginx.status_class[{#STATUS_CLASS}]"}
    own = {k.replace("[nginx]", "[{#INPUT}]").replace("[zabbix]", "[{#OUTPUT}]")
           for k in plogd_keys_sent("nginx")}
    assert keys == config_keys | own
    rules = {r["key"]: r for r in tpl["discovery_rules"]}
    assert set(rules) == {"nginx.status.discovery", "nginx.status_class.discovery",
                          "plogd.inputs.discovery", "plogd.outputs.discovery"}
    assert all(r["type"] == "TRAP" for r in rules.values())
    assert all(i["type"] == "TRAP" for i in all_items(tpl).values())


def test_value_types_and_units_are_what_the_server_needs():
    items = all_items(template_of(NGINX)["templates"][0])

    def kind(key):      # Zabbix's default (left out) is unsigned
        return items[key].get("value_type", "UNSIGNED")
    for key in ("nginx.requests", "nginx.errors", "nginx.bytes", "nginx.status[{#STATUS}]",
                "plogd.heartbeat", "plogd.lines[{#INPUT}]", "plogd.spool_backlog"):
        assert kind(key) == "UNSIGNED", key
    for key in ("nginx.5xx_share", "nginx.request_time.avg", "nginx.request_time[p95]",
                "nginx.request_time.max", "plogd.lag[{#INPUT}]"):
        assert kind(key) == "FLOAT", key
    assert items["nginx.bytes"]["units"] == "B"
    assert items["nginx.request_time[p95]"]["units"] == "s"
    assert "units" not in items["nginx.requests"]
    assert items["plogd.zabbix_up"]["valuemap"] == {"name": "plogd Zabbix state"}
    tags = {t["tag"]: t["value"] for t in items["nginx.status[{#STATUS}]"]["tags"]}
    assert tags["input"] == "nginx" and tags["metric"] == "nginx.status[{status}]"
    assert "95 %" in items["nginx.request_time[p95]"]["description"]


def test_sum_min_max_take_the_type_of_their_field(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("inputs:\n  - {name: w, path: /x, format: nginx_timed, metrics: [\n"
                      "    {key: s.int, type: sum, field: status},\n"
                      "    {key: s.float, type: sum, field: request_time},\n"
                      "    {key: m.int, type: min, field: body_bytes_sent},\n"
                      "    {key: d, type: distinct, field: remote_addr},\n"
                      "    {key: r, type: rate}]}\n")
    items = all_items(template_of(config)["templates"][0])
    assert "value_type" not in items["s.int"] and "value_type" not in items["m.int"]
    assert "value_type" not in items["d"]
    assert items["s.float"]["value_type"] == items["r"]["value_type"] == "FLOAT"


def test_uuids_are_unique_valid_and_the_same_every_run():
    text = render_template(load(str(NGINX)), "t")
    found = re.findall(r"uuid: (\S+)", text)
    assert len(found) > 40 and len(found) == len(set(found))
    for value in found:
        parsed = uuid.UUID(hex=value)
        assert value == parsed.hex and parsed.version == 4     # the API refuses other versions
    assert render_template(load(str(NGINX)), "t") == text
    assert render_template(load(str(NGINX)), "other") != text  # another template, other UUIDs


def test_the_command_writes_the_same_bytes(tmp_path):
    out = tmp_path / "t.yaml"
    result = plogd("zabbix", "template", "-c", str(NGINX), "-o", str(out), "--name", "t")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == render_template(load(str(NGINX)), "t")
    default = plogd("zabbix", "template", "-c", str(NGINX)).stdout.decode()
    assert "template: plogd nginx" in default


def test_triggers_have_macros_with_defaults():
    tpl = template_of(NGINX)["templates"][0]
    macros = {m["macro"]: m["value"] for m in tpl["macros"]}
    items = all_items(tpl)
    [nodata] = items["plogd.heartbeat"]["triggers"]
    assert nodata["expression"] == "nodata(/t/plogd.heartbeat,{$PLOGD.NODATA})=1"
    assert macros["{$PLOGD.NODATA}"] == "5m"
    [share] = items["nginx.5xx_share"]["triggers"]
    assert share["expression"] == "min(/t/nginx.5xx_share,5m)>{$PLOGD.NGINX.5XX_SHARE.MAX}"
    assert share["priority"] == "AVERAGE" and macros["{$PLOGD.NGINX.5XX_SHARE.MAX}"] == "0.05"
    [p95] = items["nginx.request_time[p95]"]["triggers"]
    assert p95["expression"] == ("min(/t/nginx.request_time[p95],5m)"
                                 ">{$PLOGD.NGINX.REQUEST_TIME.P95.MAX}")
    assert "triggers" not in items["nginx.request_time[p50]"]
    for key in ("plogd.given_up", "plogd.restarts", "plogd.spool_backlog"):
        assert items[key]["triggers"], key
    rules = {r["key"]: r for r in tpl["discovery_rules"]}
    names = [t["name"] for t in rules["plogd.inputs.discovery"]["trigger_prototypes"]]
    assert any("missing" in n for n in names) and any("do not match" in n for n in names)
    assert any('{$PLOGD.UNMATCHED.MAX:"{#INPUT}"}' in t["expression"]
               for t in rules["plogd.inputs.discovery"]["trigger_prototypes"])


def test_alert_of_a_by_metric_is_a_trigger_prototype_with_a_context_macro(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("inputs:\n  - {name: w, path: /x, format: nginx_timed, metrics: [\n"
                      "    {key: 'w.status[{status}]', type: count, by: status,\n"
                      "     alert: {above: 10, severity: high}},\n"
                      "    {key: w.rps, type: rate, alert: {below: 0.5, for: 600}}]}\n")
    tpl = template_of(config)["templates"][0]
    rule = next(r for r in tpl["discovery_rules"] if r["key"] == "w.status.discovery")
    [proto] = rule["trigger_prototypes"]
    assert proto["expression"] == ('{$PLOGD.W.STATUS.MAX:"{#STATUS}"}>=0 and '
                                   'last(/t/w.status[{#STATUS}])>{$PLOGD.W.STATUS.MAX:"{#STATUS}"}')
    assert proto["priority"] == "HIGH"
    assert rule["graph_prototypes"][0]["graph_items"][0]["item"]["key"] == "w.status[{#STATUS}]"
    [below] = all_items(tpl)["w.rps"]["triggers"]
    assert below["expression"] == "max(/t/w.rps,10m)<{$PLOGD.W.RPS.MIN}"
    macros = {m["macro"]: m["value"] for m in tpl["macros"]}
    assert macros["{$PLOGD.W.STATUS.MAX}"] == "10" and macros["{$PLOGD.W.RPS.MIN}"] == "0.5"


def test_a_by_metric_without_alert_has_a_trigger_prototype_that_is_off_until_tuned():
    tpl = template_of(NGINX)["templates"][0]
    rule = next(r for r in tpl["discovery_rules"] if r["key"] == "nginx.status.discovery")
    [proto] = rule["trigger_prototypes"]
    assert proto["expression"] == ('{$PLOGD.NGINX.STATUS.MAX:"{#STATUS}"}>=0 and '
                                   'last(/t/nginx.status[{#STATUS}])'
                                   '>{$PLOGD.NGINX.STATUS.MAX:"{#STATUS}"}')
    macros = {m["macro"]: m["value"] for m in tpl["macros"]}
    assert macros["{$PLOGD.NGINX.STATUS.MAX}"] == "-1"


def test_dashboard_shows_graphs_and_a_graph_prototype_per_by_metric():
    export = template_of(NGINX)
    tpl = export["templates"][0]
    graphs = {g["name"]: g for g in export["graphs"]}
    assert {"nginx: requests", "nginx: latency", "nginx: bytes", "nginx: shares",
            "plogd: spool backlog"} <= set(graphs)
    latency = [gi["item"]["key"] for gi in graphs["nginx: latency"]["graph_items"]]
    assert "nginx.request_time[p95]" in latency
    [board] = tpl["dashboards"]
    widgets = board["pages"][0]["widgets"]
    shown = {w["fields"][0]["value"]["name"] for w in widgets if w["type"] != "ITEM"}
    assert set(graphs) <= shown
    prototypes = [w for w in widgets if w["type"] == "GRAPH_PROTOTYPE"]
    assert {"nginx: nginx.status {#STATUS}", "nginx: nginx.status_class {#STATUS_CLASS}"} <= {
        w["name"] for w in prototypes}
    for w in widgets:
        assert int(w.get("x", 0)) + int(w["width"]) <= 24


ALERT = """\
inputs:
  - name: w
    path: /x
    format: nginx_timed
    metrics:
      - {key: "w.t[p{q}]", type: percentile, field: request_time, q: [50, 95],
         alert: {above: 1, for: 5m, q: 95}}
"""


@pytest.mark.parametrize("old,new,expected", [
    ("above: 1,", "", ":7: inputs[0].metrics[0].alert: found neither; an alert needs exactly one of above: or below:"),
    ("above: 1,", "above: 1, below: 2,", "found above and below;"),
    ("above: 1,", "above: x,", ":7: inputs[0].metrics[0].alert.above: found 'x'; expected a number"),
    ("for: 5m", "for: 5 minutes", "alert.for: found '5 minutes'; expected how long, in seconds or with a unit: 300, 30s, 5m"),
    ("q: 95}", "q: 90}", "alert.q: found 90; allowed: 50, 95 (the metric's q)"),
    (", q: 95}", "}", "this percentile has several q (50, 95); say which one the alert watches with q:"),
    ("q: 95}", "q: 95, severity: urgent}", "alert.severity: found 'urgent'; allowed: info, warning, average, high, disaster"),
    ("q: 95}", "q: 95, when: now}", "alert.when: unknown key 'when'; allowed here: above, below, for, severity, q"),
])
def test_alert_mistakes_name_the_file_line_and_key(tmp_path, old, new, expected):
    assert old in ALERT
    config = tmp_path / "c.yaml"
    config.write_text(ALERT.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load(str(config))
    assert str(config) in str(err.value) and expected in str(err.value)


def test_alert_is_read(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(ALERT)
    alert = load(str(config)).inputs[0].metrics[0].alert
    assert (alert.threshold, alert.above, alert.for_seconds, alert.severity, alert.q) == (
        1, True, 300, "warning", 95)


def test_check_lists_types_units_discovery_and_plogds_keys():
    out = plogd("check", "-c", str(NGINX)).stdout.decode()
    assert re.search(r"nginx\.request_time\[p95\] +float +s ", out)
    assert re.search(r"nginx\.bytes +unsigned +B ", out)
    assert "discovery rule nginx.status.discovery, macro {#STATUS}" in out
    assert "discovery rule plogd.inputs.discovery, macro {#INPUT}" in out
    assert re.search(r"plogd\.lag\[\{#INPUT\}\] +float +s", out)
    data = json.loads(plogd("check", "--json", "-c", str(NGINX)).stdout)
    items = {i["key"]: i for i in data["items"]}
    assert items["nginx.5xx_share"] == {"key": "nginx.5xx_share", "value_type": "float",
                                        "units": "", "input": "nginx",
                                        "metric": "nginx.5xx_share"}
    assert items["plogd.heartbeat"]["value_type"] == "unsigned"
    rules = {r["key"]: r for r in data["discovery_rules"]}
    assert rules["nginx.status.discovery"]["macro"] == "{#STATUS}"
    assert [p["key"] for p in rules["nginx.status.discovery"]["item_prototypes"]] == [
        "nginx.status[{#STATUS}]"]
    template = yaml.safe_load(render_template(load(str(NGINX)), "t"))["zabbix_export"]
    assert set(items) | {p["key"] for r in rules.values() for p in r["item_prototypes"]} == set(
        all_items(template["templates"][0]))
