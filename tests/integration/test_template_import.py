"""The template of conf/nginx.yaml imported into the real Zabbix 6.0 server: its items,
discovery rules, prototypes, triggers, dashboard and value map are what the configuration
says; a second import changes nothing; a host linked to it accepts plogd's values (plain,
float, discovered), which a wrong value type or a missing item would refuse."""
import json
import time

import pytest

from helpers import ROOT
from plogd.config import load
from plogd.outputs.zabbix.items import FLOAT, zabbix_items
from plogd.outputs.zabbix.template import render_template

PREFIX = "zbx-template"            # every name this file creates starts with it
TEMPLATE = f"{PREFIX} plogd nginx"
HOST = f"{PREFIX}-web"
GROUP = f"{PREFIX} hosts"
ITEM_TYPE = {FLOAT: "0", "unsigned": "3"}
UPDATE = {"createMissing": True, "updateExisting": True}
RULES = {"groups": {"createMissing": True}, "templates": UPDATE, "items": UPDATE,
         "discoveryRules": UPDATE, "triggers": UPDATE, "graphs": UPDATE,
         "templateDashboards": UPDATE, "valueMaps": UPDATE}


@pytest.fixture
def api(zabbix):
    zabbix.delete_named(PREFIX)         # HOST, GROUP and TEMPLATE
    yield zabbix.api()
    zabbix.delete_named(PREFIX)


def state(api, templateid) -> dict:
    """Everything the import made, with its ids: a second import must leave it as it is.
    (But for the ids of a dashboard's pages and widgets: Zabbix's importer writes the pages
    of a dashboard it updates anew, with the same content.) Lists are sorted (the API's
    order is not stable)."""
    ids = {"templateids": templateid}
    return _canonical({
        "items": api.item.get(**ids, output=["itemid", "key_", "value_type", "units",
                                             "description", "valuemapid"], selectTags="extend"),
        "rules": api.discoveryrule.get(**ids, output=["itemid", "key_", "lifetime"]),
        "prototypes": api.itemprototype.get(**ids, output=["itemid", "key_", "value_type",
                                                           "units"]),
        "triggers": api.trigger.get(**ids, output=["triggerid", "expression", "description",
                                                   "priority"]),
        "trigger_prototypes": api.triggerprototype.get(**ids, output=["triggerid", "expression",
                                                                      "description", "priority"]),
        "graphs": api.graph.get(**ids, output=["graphid", "name"], selectItems=["key_"]),
        "graph_prototypes": api.graphprototype.get(**ids, output=["graphid", "name"]),
        "dashboards": api.templatedashboard.get(**ids, output="extend", selectPages="extend"),
        "macros": api.usermacro.get(hostids=templateid, output=["macro", "value"]),
        "valuemaps": api.valuemap.get(hostids=templateid, output=["valuemapid", "name"],
                                      selectMappings="extend"),
    })


def _canonical(data):
    if isinstance(data, dict):
        return {k: _canonical(v) for k, v in data.items()
                if k not in ("dashboard_pageid", "widgetid")}
    if isinstance(data, list):
        return sorted((_canonical(v) for v in data), key=lambda v: json.dumps(v, sort_keys=True))
    return data


def by_key(rows, key="key_"):
    return {r[key]: r for r in rows}


def test_imported_template_is_what_the_config_says_and_reimport_changes_nothing(api):
    config = load(str(ROOT / "conf" / "nginx.yaml"))
    wanted = zabbix_items(config)
    text = render_template(config, TEMPLATE)
    assert api.configuration.import_(format="yaml", source=text, rules=RULES) is True
    [template] = api.template.get(filter={"host": [TEMPLATE]}, output=["templateid"])
    first = state(api, template["templateid"])

    items = by_key(first["items"])
    assert set(items) == {i.key for i in wanted.items + wanted.plogd}
    for item in wanted.items + wanted.plogd:
        assert (items[item.key]["value_type"], items[item.key]["units"]) == (
            ITEM_TYPE[item.value_type], item.units), item.key
    assert {t["tag"]: t["value"] for t in items["nginx.bytes"]["tags"]} == {
        "component": "log", "input": "nginx", "metric": "nginx.bytes"}
    assert set(by_key(first["rules"])) == {d.key for d in wanted.discovery_rules}
    prototypes = by_key(first["prototypes"])
    assert set(prototypes) == {p.key for d in wanted.discovery_rules for p in d.prototypes}
    assert prototypes["plogd.lag[{#INPUT}]"]["value_type"] == "0"
    assert prototypes["nginx.status[{#STATUS}]"]["value_type"] == "3"

    triggers = {t["description"]: t for t in first["triggers"]}
    assert {"plogd sends nothing for {$PLOGD.NODATA}",
            "nginx.5xx_share above {$PLOGD.NGINX.5XX_SHARE.MAX} for 5m",
            "nginx.request_time[p95] above {$PLOGD.NGINX.REQUEST_TIME.P95.MAX} for 5m"} <= set(
        triggers)
    assert "{$PLOGD.NGINX.5XX_SHARE.MAX}" in json.dumps(first["triggers"])
    prototype_triggers = {t["description"]: t["expression"] for t in first["trigger_prototypes"]}
    assert any('{$PLOGD.UNMATCHED.MAX:"{#INPUT}"}' in e for e in prototype_triggers.values())
    assert prototype_triggers['nginx.status[{#STATUS}] above {$PLOGD.NGINX.STATUS.MAX:"{#STATUS}"}']
    macros = {m["macro"]: m["value"] for m in first["macros"]}
    assert macros["{$PLOGD.NGINX.5XX_SHARE.MAX}"] == "0.05" and macros["{$PLOGD.NODATA}"] == "5m"

    [valuemap] = first["valuemaps"]
    assert valuemap["name"] == "plogd Zabbix state"
    assert {m["value"]: m["newvalue"] for m in valuemap["mappings"]} == {"0": "Down", "1": "Up"}
    assert items["plogd.zabbix_up"]["valuemapid"] == valuemap["valuemapid"]

    [dashboard] = first["dashboards"]
    widgets = dashboard["pages"][0]["widgets"]
    assert len(widgets) == len(render_template(config, TEMPLATE).split("fields:")) - 1
    kinds = [w["type"] for w in widgets]
    assert kinds.count("graphprototype") == len(wanted.discoveries) + 2   # + plogd's inputs
    assert kinds.count("graph") == len(first["graphs"]) and kinds.count("item") == 1
    assert {g["name"] for g in first["graph_prototypes"]} >= {
        "nginx: nginx.status {#STATUS}", "nginx: nginx.status_class {#STATUS_CLASS}"}

    assert api.configuration.import_(format="yaml", source=text, rules=RULES) is True
    assert state(api, template["templateid"]) == first


def send_until_accepted(zabbix, values: list[tuple[str, object]], timeout=60) -> None:
    """Values for HOST until the server accepts all of them (its configuration cache has to
    learn the new items first)."""
    deadline = time.monotonic() + timeout
    while True:
        zabbix._runtime_control("config_cache_reload")
        failed = [(k, v) for k, v in values
                  if zabbix.sender().send_value(HOST, k, v).processed != 1]
        if not failed:
            return
        assert time.monotonic() < deadline, f"refused: {failed}"
        time.sleep(1)


def problems(api, hostid, timeout=60) -> set[str]:
    """The names of the host's triggers in problem state, once the expected ones are there
    (the trigger of a value is evaluated when the history syncer stores it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {t["description"] for t in api.trigger.get(
            hostids=hostid, filter={"value": 1}, output=["description"], expandDescription=True)}
        if len(found) >= 2 or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_host_with_the_template_accepts_plogds_values_and_its_triggers_fire(api, zabbix):
    config = load(str(ROOT / "conf" / "nginx.yaml"))
    assert api.configuration.import_(format="yaml", source=render_template(config, TEMPLATE),
                                     rules=RULES) is True
    [template] = api.template.get(filter={"host": [TEMPLATE]}, output=["templateid"])
    groupid = api.hostgroup.create(name=GROUP)["groupids"][0]
    # one member of a by: metric tuned alone, by the macro's context
    hostid = api.host.create(host=HOST, groups=[{"groupid": groupid}],
                             templates=[{"templateid": template["templateid"]}],
                             macros=[{"macro": '{$PLOGD.NGINX.STATUS.MAX:"500"}', "value": "5"}]
                             )["hostids"][0]
    now = int(time.time())
    send_until_accepted(zabbix, [("nginx.requests", 12), ("nginx.request_time[p95]", 0.25),
                                 ("nginx.5xx_share", 0.0833), ("plogd.heartbeat", now),
                                 ("plogd.zabbix_up", 1)])
    # the discovery plogd sends (another stage's job; here by hand, as plogd does)
    send_until_accepted(zabbix, [("plogd.inputs.discovery", json.dumps([{"{#INPUT}": "nginx"}])),
                                 ("nginx.status.discovery",
                                  json.dumps([{"{#STATUS}": "200"}, {"{#STATUS}": "500"}]))])
    send_until_accepted(zabbix, [("plogd.lines[nginx]", 120), ("plogd.lag[nginx]", 1.5),
                                 ("nginx.status[200]", 110), ("nginx.status[500]", 11)])
    # 5xx share above 0.05 (the default set's alert:), 500s above the host's 5; 200s are
    # above 5 too but their threshold is the template's -1: off
    assert problems(api, hostid) == {
        "nginx.5xx_share above 0.05 for 5m", "nginx.status[500] above 5"}
