"""Which Zabbix items a configuration needs, computed once: every key plogd sends with the
value type Zabbix must store it as (a wrong type makes the server refuse the value), its
units and a description; the discovery rule of each `by:` metric with its item prototypes;
plogd's own `plogd.*` items, the per-input ones as prototypes of the `plogd.inputs.discovery`
rule over `{#INPUT}`. `plogd check` lists them, plogd.outputs.zabbix.template makes a template
of them.

    value type   unsigned: count, distinct, and sum/min/max of an integer field
                 float:    avg, rate, ratio, percentile, and sum/min/max of a float field
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import monitoring
from ...metrics import NUMERIC_FIELD, Metric, q_text
from ...stages.parse import input_fields
from .sender import discovery_key, discovery_macro

UNSIGNED = "unsigned"
FLOAT = "float"
PLOGD_INPUTS_DISCOVERY = monitoring.INPUTS_DISCOVERY   # what the sender announces them with
INPUT_MACRO = discovery_macro("input")                  # {#INPUT}
OUTPUT_MACRO = discovery_macro("output")                # {#OUTPUT}
ZABBIX_STATE = "plogd Zabbix state"         # the value map of plogd.zabbix_up


@dataclass(frozen=True)
class Item:
    key: str                    # as the server knows it (a prototype's holds its LLD macro)
    name: str
    value_type: str             # UNSIGNED | FLOAT
    units: str
    description: str
    input: str | None = None    # the configuration's input (None: plogd's global items)
    metric: Metric | None = None    # None: one of plogd's own
    q: float | None = None      # the percent of a percentile's key
    valuemap: str | None = None


@dataclass(frozen=True)
class Discovery:
    key: str                    # nginx.status.discovery
    macro: str                  # {#STATUS}
    name: str
    description: str
    prototypes: tuple[Item, ...]
    input: str | None = None
    metric: Metric | None = None


@dataclass(frozen=True)
class Items:
    items: tuple[Item, ...]             # the plain keys of the configuration's metrics
    discoveries: tuple[Discovery, ...]  # one per by: metric
    plogd: tuple[Item, ...]             # plogd.heartbeat, plogd.sent, ...
    plogd_inputs: Discovery             # plogd.lines[{#INPUT}], ... over plogd's inputs
    plogd_outputs: Discovery            # plogd.output.sent[{#OUTPUT}], ... over its outputs

    @property
    def discovery_rules(self) -> tuple[Discovery, ...]:
        return self.discoveries + (self.plogd_inputs, self.plogd_outputs)

    def as_dict(self) -> dict:
        """For `plogd check --json`."""
        def item(i: Item) -> dict:
            return {"key": i.key, "value_type": i.value_type, "units": i.units,
                    "input": i.input, "metric": i.metric.key if i.metric else None}

        def rule(d: Discovery) -> dict:
            return {"key": d.key, "macro": d.macro, "input": d.input,
                    "metric": d.metric.key if d.metric else None,
                    "item_prototypes": [item(p) for p in d.prototypes]}
        return {"items": [item(i) for i in self.items + self.plogd],
                "discovery_rules": [rule(d) for d in self.discovery_rules]}


def describe_metric(metric: Metric, q: float | None = None) -> str:
    """What a metric computes (at percent q only, given q), in words: 'count, where status
    >= 500'."""
    detail = metric.kind + (f" of {metric.field}" if metric.field else "")
    if metric.kind == "percentile":
        detail += f" at {', '.join(map(q_text, [q] if q is not None else metric.q))} %"
    detail += f", one key per {metric.by} (top {metric.top} + other)" if metric.by else ""
    detail += f", where {metric.where.text}" if metric.where else ""
    detail += f", out of lines where {metric.of.text}" if metric.of else ""
    return detail


def value_type(metric: Metric, field_type: str | None) -> str:
    if metric.kind in ("sum", "min", "max"):
        return UNSIGNED if field_type == "int" else FLOAT
    return UNSIGNED if metric.kind in ("count", "distinct") else FLOAT


def field_units(name: str) -> str:
    """Zabbix units of a field's values: seconds for times, B for byte counts."""
    if name.endswith("_time"):                 # request_time, upstream_response_time, ...
        return "s"
    if "bytes" in name or name.endswith("_length"):
        return "B"
    return ""


def units(metric: Metric) -> str:
    if metric.kind == "rate":
        return "req/s"
    if metric.kind in NUMERIC_FIELD:
        assert metric.field is not None     # the config requires a field for these kinds
        return field_units(metric.field)
    return ""


def zabbix_items(config) -> Items:
    items: list[Item] = []
    discoveries: list[Discovery] = []
    for spec in config.inputs:
        fields = input_fields(spec.format)
        for metric in spec.metrics:
            macro = discovery_macro(metric.by) if metric.by else None
            made = []
            for q, key in metric.keys():
                what = (f"{describe_metric(metric, q)}; per {config.interval} s window of "
                        f"input {spec.name} ({spec.path}). Sent by plogd.")
                if macro:
                    key = key.replace("{" + metric.by + "}", macro)
                made.append(Item(key=key, name=f"{spec.name}: {key}",
                                 value_type=value_type(metric, fields.get(metric.field)),
                                 units=units(metric), description=what, input=spec.name,
                                 metric=metric, q=q))
            if macro is None:
                items += made
                continue
            dkey = discovery_key(metric.key, metric.by)
            discoveries.append(Discovery(
                key=dkey, macro=macro, name=f"{spec.name}: {metric.key} by {metric.by}",
                description=f"The values of {metric.by} seen by {metric.key} (input "
                            f"{spec.name}), sent by plogd as {macro}.",
                prototypes=tuple(made), input=spec.name, metric=metric))
    return Items(items=tuple(items), discoveries=tuple(discoveries), plogd=_plogd_global(),
                 plogd_inputs=_plogd_inputs(), plogd_outputs=_plogd_outputs())


# -- plogd's own items (plogd.monitoring sends them) ------------------------------------------

# name: (value type, units, description); every name plogd.monitoring sends is here
_PLOGD = {
    "heartbeat": (UNSIGNED, "unixtime", "When plogd took its own values, once per interval: "
                                        "no new value means plogd is not running or cannot send."),
    "restarts": (UNSIGNED, "", "Pipeline restarts since the daemon started (--multi): a stage "
                               "died and was started again from the checkpoint."),
    "sent": (UNSIGNED, "", "Values the Zabbix server accepted (total)."),
    "refused": (UNSIGNED, "", "Values the Zabbix server refused, retried since (total)."),
    "given_up": (UNSIGNED, "", "Values refused for longer than failed_retry_seconds and given "
                               "up (total): their items are missing or of the wrong type."),
    "zabbix_up": (UNSIGNED, "", "1 when plogd's last send reached the Zabbix server."),
    "spool_backlog": (UNSIGNED, "B", "Bytes of results written but not yet accepted by Zabbix."),
    "lines": (UNSIGNED, "", "Lines read from the input (total since the first start)."),
    "unmatched": (UNSIGNED, "", "Lines the input's format did not match (total): a log "
                                "format that changed shows here."),
    "too_long": (UNSIGNED, "", "Lines longer than max_line_length, skipped (total)."),
    "late": (UNSIGNED, "", "Lines whose window was already closed (total)."),
    "odd_time": (UNSIGNED, "", "Lines without a usable time (total)."),
    "regex_timeout": (UNSIGNED, "", "Lines a user regex (regex: format, ~ filter, rewrite) "
                                    "could not decide within its time bound (total)."),
    "lag": (FLOAT, "s", "Seconds between now and the time of the newest line read."),
    "bytes_behind": (UNSIGNED, "B", "Bytes written to the log but not read yet."),
    "rotations": (UNSIGNED, "", "Rotations of the log followed (total)."),
    "truncations": (UNSIGNED, "", "Truncations of the log (copytruncate) followed (total)."),
    "missing": (UNSIGNED, "", "Times the log was found missing or unreadable (total)."),
    "malformed": (UNSIGNED, "", "Syslog inputs: messages without a syslog header, dropped "
                                "(total)."),
    "output.sent": (UNSIGNED, "", "Values the output took (total)."),
    "output.refused": (UNSIGNED, "", "Values the output's receiver refused (total)."),
    "output.dropped": (UNSIGNED, "", "Values an output with on_full: drop_oldest skipped "
                                     "because its backlog reached max_backlog (total)."),
    "output.backlog": (UNSIGNED, "B", "Bytes of results written but not yet taken by the "
                                      "output."),
    "output.up": (UNSIGNED, "", "1 when the output's last exchange succeeded."),
}


def _plogd_item(name: str, key: str, item_name: str) -> Item:
    kind, unit, description = _PLOGD[name]
    return Item(key=key, name=item_name, value_type=kind, units=unit, description=description,
                valuemap=ZABBIX_STATE if name == "zabbix_up" else None)


def _plogd_global() -> tuple[Item, ...]:
    names = ("heartbeat", "restarts") + monitoring.SENDER + ("zabbix_up", "spool_backlog")
    return tuple(_plogd_item(n, f"{monitoring.PREFIX}.{n}", f"plogd: {n}") for n in names)


def _plogd_outputs() -> Discovery:
    prototypes = tuple(_plogd_item(f"output.{n}", f"{monitoring.PREFIX}.output.{n}[{OUTPUT_MACRO}]",
                                   f"plogd output {OUTPUT_MACRO}: {n}") for n in monitoring.OUTPUT)
    return Discovery(key=monitoring.OUTPUTS_DISCOVERY, macro=OUTPUT_MACRO, name="plogd: outputs",
                     description="plogd's outputs (zabbix, line, prometheus ...), sent by plogd "
                                 "as {#OUTPUT}.", prototypes=prototypes)


def _plogd_inputs() -> Discovery:
    names = monitoring.COUNTERS + ("lag",) + monitoring.READER
    prototypes = tuple(_plogd_item(n, f"{monitoring.PREFIX}.{n}[{INPUT_MACRO}]",
                                   f"plogd {INPUT_MACRO}: {n}") for n in names)
    return Discovery(key=PLOGD_INPUTS_DISCOVERY, macro=INPUT_MACRO, name="plogd: inputs",
                     description="plogd's inputs, sent by plogd as {#INPUT}.",
                     prototypes=prototypes)
