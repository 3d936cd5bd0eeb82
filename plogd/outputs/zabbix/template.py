"""`plogd zabbix template`: a Zabbix template export (the 6.0 YAML format, which 6.0 and
later import) made from a configuration — what plogd.outputs.zabbix.items says plogd sends:

- a trapper item per key, a trapper discovery rule per `by:` metric with its item and graph
  prototypes, plogd's own items (the per-input ones discovered over `{#INPUT}`);
- triggers whose thresholds are user macros: plogd silent (nodata on plogd.heartbeat), values
  given up, restarts, the spool backlog, a log missing, the unmatched share of an input, and
  one per `alert:` of a metric (a trigger prototype with a context macro for a `by:` metric,
  `{$PLOGD.NGINX.STATUS.MAX:"503"}`, so a member can be tuned alone);
- a value map for plogd.zabbix_up, graphs and a template dashboard.

The output is deterministic: every UUID is derived from the template name and the object's
identity, so the same configuration gives the same bytes and a changed one updates the
imported template in place.
"""
from __future__ import annotations

import os
import re
import uuid
from typing import Any

import yaml

from ...metrics import Alert
from .items import (FLOAT, INPUT_MACRO, OUTPUT_MACRO, ZABBIX_STATE, Discovery, Item, Items,
                    zabbix_items)

GROUP = "Templates/Applications"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "plogd.zabbix.template")
SEVERITY = {"info": "INFO", "warning": "WARNING", "average": "AVERAGE", "high": "HIGH",
            "disaster": "DISASTER"}
COLORS = ("1A7C11", "F63100", "2774A4", "A54F10", "FC6EA3", "6C59DC", "AC8C14", "611F27")
DASHBOARD_WIDTH = 24            # a 6.0 dashboard's columns
UNMATCHED_SETS = 5              # the unmatched share is taken over this many of plogd's sets
OFF = Alert(threshold=-1, above=True)      # a by: metric's trigger without alert: (-1: off)


def default_name(config) -> str:
    """`plogd` for plogd.yaml, `plogd nginx` for nginx.yaml."""
    stem = os.path.splitext(os.path.basename(config.path))[0]
    return "plogd" if stem in ("plogd", "") else f"plogd {stem}"


def render_template(config, name: str | None = None) -> str:
    """The template export of `config` as YAML text (the same config: the same bytes)."""
    return yaml.dump(_Template(config, name or default_name(config)).export(),
                     Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def macro_name(key: str, side: str) -> str:
    """`nginx.request_time[p95]`, MAX -> `{$PLOGD.NGINX.REQUEST_TIME.P95.MAX}`."""
    return "{$PLOGD." + re.sub(r"[^A-Z0-9_]+", ".", key.upper()).strip(".") + "." + side + "}"


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _at(widget: dict, x: int, y: int, width: int, fields: list) -> dict:
    """A widget placed at x, y (0 is the default, left out as Zabbix's export does)."""
    widget.update({"x": str(x)} if x else {})
    widget.update({"y": str(y)} if y else {})
    widget.update(width=str(width), height="5", fields=fields)
    return widget


class _Dumper(yaml.SafeDumper):
    """Strings a YAML 1.1 reader (PHP's) would take for booleans are quoted (`'y': '5'`)."""


def _str(dumper, value):
    style = "'" if value.lower() in ("y", "n", "yes", "no", "on", "off") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class _Template:
    def __init__(self, config, name: str):
        self.config = config
        self.name = name                                    # the visible name
        self.host = re.sub(r"[^0-9A-Za-z_. -]", "_", name)  # the technical one: what
        # Zabbix allows in it (expressions, graphs and widgets name the template by it)
        self.items: Items = zabbix_items(config)
        self.macros: dict[str, tuple[str, str]] = {}     # macro: (value, description)

    def uuid(self, *identity: str) -> str:
        """A UUID from the template name and the object's identity, in the form the Zabbix
        API accepts (version-4 bits: it refuses others) — derived, not random."""
        derived = uuid.uuid5(UUID_NAMESPACE, "\x00".join((self.name,) + identity))
        return uuid.UUID(bytes=derived.bytes, version=4).hex

    def macro(self, name: str, value: str, description: str) -> str:
        self.macros[name] = (value, description)
        return name

    def recent(self) -> str:
        return self.macro("{$PLOGD.RECENT}", "1h", "How long values given up, restarts and a "
                          "missing log stay a problem.")

    def ref(self, key: str) -> str:
        return f"/{self.host}/{key}"

    # -- the document ------------------------------------------------------------------------
    def export(self) -> dict:
        items = [self.item(i) for i in self.items.items + self.items.plogd]
        rules = [self.discovery(d) for d in self.items.discovery_rules]
        graphs = self.graphs()
        template = {
            "uuid": self.uuid("template"),
            "template": self.host,
            "name": self.name,
            "description": (f"plogd's values of {os.path.basename(self.config.path)} (inputs "
                            f"{', '.join(s.name for s in self.config.inputs)}), made by "
                            "`plogd zabbix template`: trapper items, discovery, triggers, "
                            "dashboard."),
            "groups": [{"name": GROUP}],
            "items": items,
            "discovery_rules": rules,
            "tags": [{"tag": "class", "value": "application"}, {"tag": "target", "value": "plogd"}],
            "macros": [{"macro": m, "value": v, "description": d}
                       for m, (v, d) in sorted(self.macros.items())],
            "dashboards": [self.dashboard(graphs)],
            "valuemaps": [{"uuid": self.uuid("valuemap", ZABBIX_STATE), "name": ZABBIX_STATE,
                           "mappings": [{"value": "0", "newvalue": "Down"},
                                        {"value": "1", "newvalue": "Up"}]}],
        }
        return {"zabbix_export": {
            "version": "6.0",
            "groups": [{"uuid": self.uuid("group", GROUP), "name": GROUP}],
            "templates": [template],
            "graphs": [g for g, _ in graphs],
        }}

    def item(self, item: Item, prototype: bool = False) -> dict:
        data: dict[str, Any] = {"uuid": self.uuid("item", item.key), "name": item.name,
                                "type": "TRAP", "key": item.key, "delay": "0"}
        if item.value_type == FLOAT:             # unsigned is the default (left out, as
            data["value_type"] = "FLOAT"        # Zabbix's own export does)
        if item.units:
            data["units"] = item.units
        data["description"] = item.description
        if item.valuemap:
            data["valuemap"] = {"name": item.valuemap}
        tags = [{"tag": "component", "value": "plogd" if item.metric is None else "log"}]
        if OUTPUT_MACRO in item.key:
            tags.append({"tag": "output", "value": OUTPUT_MACRO})
        elif item.input or prototype:
            tags.append({"tag": "input", "value": item.input or INPUT_MACRO})
        if item.metric is not None:
            tags.append({"tag": "metric", "value": item.metric.key})
        data["tags"] = tags
        triggers = [] if prototype else self.item_triggers(item)
        if triggers:
            data["triggers"] = triggers
        return data

    def discovery(self, rule: Discovery) -> dict:
        data: dict[str, Any] = {
            "uuid": self.uuid("discovery", rule.key), "name": rule.name, "type": "TRAP",
            "key": rule.key, "delay": "0", "lifetime": "7d", "description": rule.description,
            "item_prototypes": [self.item(p, prototype=True) for p in rule.prototypes]}
        if rule.metric is not None:
            triggers = [t for p in rule.prototypes for t in self.alert_triggers(p, rule)]
        else:
            triggers = self.plogd_input_triggers() if rule.macro == INPUT_MACRO else []
        if triggers:
            data["trigger_prototypes"] = triggers
        data["graph_prototypes"] = self.graph_prototypes(rule)
        return data

    # -- triggers ----------------------------------------------------------------------------
    def trigger(self, identity: str, name: str, expression: str, severity: str,
                description: str, opdata: str = "") -> dict:
        data: dict[str, Any] = {"uuid": self.uuid("trigger", identity),
                                "expression": expression, "name": name}
        if opdata:
            data["opdata"] = opdata
        data["priority"] = severity
        data["description"] = description
        data["tags"] = [{"tag": "scope", "value": "performance" if identity.startswith("alert ")
                         else "availability"}]
        return data

    def item_triggers(self, item: Item) -> list[dict]:
        if item.metric is not None:
            return self.alert_triggers(item, None)
        key, ref = item.key, self.ref(item.key)
        recent = self.recent()
        if key == "plogd.heartbeat":
            interval = max(300, 3 * self.config.interval)
            nodata = self.macro("{$PLOGD.NODATA}", _duration(interval),
                                "plogd is a problem when no heartbeat arrives for this long.")
            return [self.trigger(key, f"plogd sends nothing for {nodata}",
                                 f"nodata({ref},{nodata})=1", "HIGH",
                                 "plogd is stopped, stuck, or cannot reach the Zabbix server "
                                 "(its values wait in its spool meanwhile).")]
        if key in ("plogd.given_up", "plogd.restarts"):
            what = ("gave up values the server refused" if key == "plogd.given_up"
                    else "restarted its pipeline")
            return [self.trigger(key, f"plogd {what} within {recent}",
                                 f"last({ref})>min({ref},{recent})", "WARNING",
                                 "See plogd's log (journalctl -u plogd): given-up values have "
                                 "no item of their key or of the wrong type; a restart means "
                                 "a stage died.", opdata="Total: {ITEM.LASTVALUE1}")]
        if key == "plogd.spool_backlog":
            limit = self.macro("{$PLOGD.SPOOL_BACKLOG.MAX}", "10M",
                               "The spool backlog (bytes not yet accepted) that is a problem.")
            period = self.macro("{$PLOGD.SPOOL_BACKLOG.PERIOD}", "15m",
                                "... when it stays above the maximum for this long.")
            return [self.trigger(key, f"plogd spool backlog above {limit} for {period}",
                                 f"min({ref},{period})>{limit}", "WARNING",
                                 "Results are written faster than Zabbix accepts them.",
                                 opdata="Backlog: {ITEM.LASTVALUE1}")]
        return []

    def alert_triggers(self, item: Item, rule: Discovery | None) -> list[dict]:
        """The trigger of a metric's `alert:`. For a by: metric a prototype, made for every
        one (without `alert:` its threshold is -1, off), whose macro takes the member as
        context so that each member can have its own threshold, or -1 to be left alone."""
        assert item.metric is not None      # only a metric's items and prototypes come here
        alert = item.metric.alert
        if alert is None and rule is not None:
            alert = OFF
        elif alert is None or (item.q is not None and item.q != alert.q):
            return []
        side = "MAX" if alert.above else "MIN"
        name = macro_name(item.key if rule is None else item.key.replace(rule.macro, ""), side)
        what = (f"alert: of {item.metric.key}" if item.metric.alert else
                f"a threshold for {item.metric.key} (-1: none)")
        self.macro(name, format(alert.threshold, "g"),
                   f"{what}, {'above' if alert.above else 'below'}"
                   + (f"; {name[:-1]}:\"member\"}} for one member, -1 for none" if rule else ""))
        used = name if rule is None else f'{name[:-1]}:"{rule.macro}"}}'
        ref = self.ref(item.key)
        if alert.for_seconds:
            period = _duration(alert.for_seconds)
            function = f"min({ref},{period})" if alert.above else f"max({ref},{period})"
            during = f" for {period}"
        else:
            function, during = f"last({ref})", ""
        op = ">" if alert.above else "<"
        word = "above" if alert.above else "below"
        guard = f"{used}>=0 and " if rule is not None else ""     # -1: off
        return [self.trigger(f"alert {item.key}", f"{item.key} {word} {used}{during}",
                             f"{guard}{function}{op}{used}", SEVERITY[alert.severity],
                             f"From alert: of {item.metric.key} in the plogd configuration."
                             if item.metric.alert else f"Off until {name} (or one member's, "
                             f"with its value as context) is set to 0 or more on the host.",
                             opdata="Value: {ITEM.LASTVALUE1}")]

    def plogd_input_triggers(self) -> list[dict]:
        recent = self.recent()
        missing = self.ref(f"plogd.missing[{INPUT_MACRO}]")
        lines = self.ref(f"plogd.lines[{INPUT_MACRO}]")
        unmatched = self.ref(f"plogd.unmatched[{INPUT_MACRO}]")
        share = self.macro("{$PLOGD.UNMATCHED.MAX}", "5",
                           "Per cent of an input's lines unmatched that is a problem (the log "
                           'format changed); {$PLOGD.UNMATCHED.MAX:"INPUT"} for one input.')
        least = self.macro("{$PLOGD.UNMATCHED.MIN_LINES}", "100",
                           "The unmatched share is judged over at least this many lines.")
        back = f"#{UNMATCHED_SETS + 1}"
        read = f"(last({lines})-last({lines},{back}))"
        missed = f"(last({unmatched})-last({unmatched},{back}))"
        return [
            self.trigger(f"plogd.missing {INPUT_MACRO}",
                         f"plogd {INPUT_MACRO}: the log was missing or unreadable within {recent}",
                         f"last({missing})>min({missing},{recent})", "AVERAGE",
                         "plogd could not open the input's file (deleted, not created yet, or "
                         "a permission): see plogd's log. Lines written meanwhile are read "
                         "once the file is back."),
            self.trigger(f"plogd.unmatched {INPUT_MACRO}",
                         f'plogd {INPUT_MACRO}: more than {share[:-1]}:"{INPUT_MACRO}"}} % of '
                         "the lines do not match the format",
                         f'{missed}*100>{share[:-1]}:"{INPUT_MACRO}"}}*{read} and {read}>={least}',
                         "WARNING",
                         f"Over plogd's last {UNMATCHED_SETS} sets of values: the log format "
                         "changed under plogd, or the configuration names the wrong format "
                         "(`plogd check` shows the first line that does not match)."),
        ]

    # -- graphs and the dashboard -----------------------------------------------------------
    def graph(self, name: str, items: list[Item], prototype: bool = False,
              right: tuple[str, ...] = ()) -> dict:
        """A graph of the items, those of `right` (and every max: it would flatten the
        others) on the right axis."""
        graph_items = []
        for n, item in enumerate(items):
            entry: dict[str, Any] = {"sortorder": str(n)} if n else {}
            entry["color"] = COLORS[n % len(COLORS)]
            if item.key in right or (item.metric is not None and item.metric.kind == "max"):
                entry["yaxisside"] = "RIGHT"
            entry["item"] = {"host": self.host, "key": item.key}
            graph_items.append(entry)
        return {"uuid": self.uuid("graph prototype" if prototype else "graph", name),
                "name": name, "show_work_period": "NO", "graph_items": graph_items}

    def graphs(self) -> list[tuple[dict, str]]:
        """(graph, its dashboard row) for the plain items: per input requests, latency,
        bytes and shares; then plogd's spool."""
        def is_ratio(item: Item) -> bool:
            assert item.metric is not None      # self.items.items are the metrics' keys
            return item.metric.kind == "ratio"

        graphs = []
        for spec in self.config.inputs:
            mine = [i for i in self.items.items if i.input == spec.name]
            kinds = {
                "requests": [i for i in mine if i.units not in ("s", "B") and not is_ratio(i)],
                "latency": [i for i in mine if i.units == "s"],
                "bytes": [i for i in mine if i.units == "B"],
                "shares": [i for i in mine if is_ratio(i)],
            }
            graphs += [(self.graph(f"{spec.name}: {kind}", chosen), spec.name)
                       for kind, chosen in kinds.items() if chosen]
        spool = [i for i in self.items.plogd if i.key == "plogd.spool_backlog"]
        graphs.append((self.graph("plogd: spool backlog", spool), "plogd"))
        return graphs

    def graph_prototypes(self, rule: Discovery) -> list[dict]:
        if rule.metric is not None:
            return [self.graph(f"{rule.input}: {rule.metric.key.split('[')[0]} {rule.macro}",
                               list(rule.prototypes), prototype=True)]
        by_name = {p.key.split("[")[0]: p for p in rule.prototypes}
        if rule.macro == OUTPUT_MACRO:
            return [self.graph(f"plogd output {OUTPUT_MACRO}: backlog",
                               [by_name["plogd.output.backlog"]], prototype=True)]
        return [self.graph(f"plogd {INPUT_MACRO}: lines read and unmatched",
                           [by_name["plogd.lines"], by_name["plogd.unmatched"]], prototype=True,
                           right=(by_name["plogd.unmatched"].key,)),
                self.graph(f"plogd {INPUT_MACRO}: lag", [by_name["plogd.lag"]], prototype=True)]

    def dashboard(self, graphs: list[tuple[dict, str]]) -> dict:
        """The metrics' graphs two by two, a row per by: metric (a graph per member), then
        plogd's health in one row. Widgets: (type, field type, what it shows, width)."""
        graph, prototype = ("GRAPH_CLASSIC", "GRAPH"), ("GRAPH_PROTOTYPE", "GRAPH_PROTOTYPE")
        widgets = [(*graph, g["name"], DASHBOARD_WIDTH // 2) for g, row in graphs
                   if row != "plogd"]
        widgets += [(*prototype, g["name"], DASHBOARD_WIDTH)
                    for rule in self.items.discoveries for g in self.graph_prototypes(rule)]
        lines, lag = (g["name"] for g in self.graph_prototypes(self.items.plogd_inputs))
        widgets += [("ITEM", "ITEM", "plogd.zabbix_up", 4),
                    (*graph, "plogd: spool backlog", 7), (*prototype, lines, 7),
                    (*prototype, lag, 6)]
        placed, x, y = [], 0, 0
        for kind, field, shown, width in widgets:
            if x + width > DASHBOARD_WIDTH:
                x, y = 0, y + 5
            if kind == "ITEM":               # its name and value (Up/Down), not its time
                name = "plogd reaches Zabbix"
                fields = [{"type": "ITEM", "name": "itemid",
                           "value": {"host": self.host, "key": shown}},
                          {"type": "INTEGER", "name": "show", "value": "1"},
                          {"type": "INTEGER", "name": "show", "value": "2"}]
            else:
                name, fields = shown, [{"type": field, "name": "graphid",
                                        "value": {"host": self.host, "name": shown}}]
            if kind == "GRAPH_PROTOTYPE":     # a graph per member, side by side
                fields.append({"type": "INTEGER", "name": "columns",
                               "value": str(max(1, width // 6))})
            placed.append(_at({"type": kind, "name": name}, x, y, width, fields))
            x += width
        return {"uuid": self.uuid("dashboard", "plogd"), "name": "plogd",
                "pages": [{"widgets": placed}]}
