"""Metrics: what a window computes over its lines, as mergeable partial states.

A metric folds a batch of parsed lines (given as columns: one list per field) into a small
state; states of the same window merge, whatever the order and however the lines were split
into batches or spread over parser processes. A closed window's states become `Value`s: the
metric's name, its group and percentile, and the series key the config's `key:` lays out.

    type        state                    value
    count       n                        n
    rate        n                        n / interval            (lines per second)
    sum         total                    total
    avg         [total, n]               total / n               (no value when n == 0)
    min         smallest|None            smallest            (no value when no line had the field)
    max         largest|None             largest
    ratio       [matching, lines]        matching / lines        (no value when lines == 0)
    percentile  QuantileSketch           one value per q (1% relative error, see sketches)
    distinct    DistinctCounter          number of distinct values (exact to 1024, then HLL)

`where:` selects the lines of every type; for `ratio` it selects the numerator's lines
among those the optional `of:` filter selects (all lines without `of:`).

With `by: FIELD` the state is a dict {field value: state}, one Zabbix key per value, capped
to the `top` groups with the largest weight (see _WEIGHT) when the window closes; the others
are merged into the group OTHER, sent as `other`. To bound memory within a window, a state
with more than HARD_FACTOR * top groups is cut to top + OTHER at once (from then on the
window's groups are approximate: which ones are kept depends on the order of the batches).

States are JSON data after `dump` (the checkpoint) and picklable as they are.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import compress
from operator import and_
from typing import NamedTuple

from .filters import Columns, Filter
from .formats.compiled import count_values, has_none, min_max
from .sketches import DistinctCounter, QuantileSketch

TYPES = ("count", "sum", "avg", "min", "max", "percentile", "rate", "ratio", "distinct")
NEEDS_FIELD = {"sum", "avg", "min", "max", "percentile", "distinct"}
NUMERIC_FIELD = {"sum", "avg", "min", "max", "percentile"}
DEFAULT_TOP = 100
HARD_FACTOR = 10
OTHER = "\x00other"          # the group of the folded groups (rendered `other`)


def _fold_values(kind: str, values: list):
    if kind in ("count", "rate"):
        return len(values)
    if kind == "sum":
        return sum(values)
    if kind == "avg":
        return [sum(values), len(values)]
    if kind == "percentile":
        sketch = QuantileSketch()
        try:
            sketch.add_many(values)
        except ValueError:        # it holds finite values >= 0 only (and added nothing)
            sketch.add_many([v for v in values if 0 <= v < float("inf")])
        return sketch
    if kind == "distinct":
        counter = DistinctCounter()
        counter.add_many(values)
        return counter
    if not values:
        return None
    smallest, largest = min_max(values)
    return smallest if kind == "min" else largest


def _merge_state(kind: str, a, b):
    """A new state: a and b are never changed (a state may be shared)."""
    if kind in ("count", "sum", "rate"):
        return a + b
    if kind in ("avg", "ratio"):
        return [a[0] + b[0], a[1] + b[1]]
    if kind == "percentile":
        merged = QuantileSketch(a.relative_accuracy, a.max_buckets)
        merged.merge(a)
        merged.merge(b)
        return merged
    if kind == "distinct":
        counter = DistinctCounter(a.threshold)
        counter.merge(a)
        counter.merge(b)
        return counter
    if a is None or b is None:
        return b if a is None else a
    return min(a, b) if kind == "min" else max(a, b)


def _negated(value):
    return float("-inf") if value is None else -value


# The weight of a group for the top-N cut: the largest are kept.
_WEIGHT = {
    "count": lambda s: s, "rate": lambda s: s, "sum": lambda s: s,
    "avg": lambda s: s[1], "ratio": lambda s: s[1],
    "percentile": lambda s: s.count, "distinct": lambda s: s.estimate(),
    "max": lambda s: float("-inf") if s is None else s, "min": _negated,
}


class Value(NamedTuple):
    """One value of a closed window: the series key (the config's `key:` with its
    placeholders filled in), the value, and the same in structured form for outputs that
    name series their own way (a Graphite path, Prometheus labels)."""
    key: str
    value: object
    metric: str                      # the metric's name, see metric_name
    group: dict | None = None        # {by field: group value}; "other" beyond `top:`
    q: float | None = None           # the percentile, for a percentile metric


def metric_name(key: str) -> str:
    """The name a metric has without `name:`: its key without the placeholders and the
    bracket parameters holding one; literal parameters become name parts.
    `nginx.status[{status}]` -> `nginx.status`, `nginx.request_time[p{q}]` ->
    `nginx.request_time`, `web.requests[api]` -> `web.requests.api`."""
    if "[" not in key and "{" not in key:
        return key
    base, _, params = key.partition("[")
    parts = [re.sub(r"\{[^}]*\}", "", base)]
    parts += [p.strip().strip('"') for p in params.rstrip("]").split(",") if "{" not in p]
    return re.sub(r"\.{2,}", ".", ".".join(p for p in parts if p)).strip(".")


def group_value(value):
    """A group as the records carry it: the field's typed value, "other" for OTHER."""
    return "other" if value == OTHER else value


def q_text(q) -> str:
    """How a q is written in a key: 50 -> '50', 99.9 -> '99.9', 99.0 -> '99'."""
    return format(q, "g")


def zabbix_key_param(value) -> str:
    """A value as one parameter inside a Zabbix item key: quoted when it holds , ] [ " or
    spaces (Zabbix's own quoting rule), so a URL or a user agent cannot break the key."""
    if value == OTHER:
        return "other"
    text = "-" if value is None else str(value)
    if text and not any(c in text for c in ',[]" ') and not text.startswith('"'):
        return text
    return '"' + text.replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Alert:
    """`alert:` of a metric: a Zabbix trigger when the value stays above (or below) a
    threshold for `for_seconds` (0: a single value is enough); see plogd.outputs.zabbix.template."""
    threshold: float
    above: bool                  # False: below
    for_seconds: int = 0
    severity: str = "warning"    # info | warning | average | high | disaster
    q: float | None = None       # the percentile watched, for a percentile of several q


class Metric:
    def __init__(self, key: str, kind: str, field: str | None = None, by: str | None = None,
                 where: Filter | None = None, q: list | None = None, of: Filter | None = None,
                 top: int = DEFAULT_TOP, alert: Alert | None = None, name: str | None = None):
        self.key = key
        self.name = name or metric_name(key)
        self.kind = kind
        self.field = field
        self.by = by
        self.where = where
        self.q = list(q) if q else ([50] if kind == "percentile" else [])   # percents
        self.of = of              # ratio: the denominator's filter (None: every line)
        self.top = top            # by: groups kept per window (+ `other`)
        self.alert = alert        # the Zabbix trigger of `alert:` (None: none)

    def keys(self) -> list[tuple[float | None, str]]:
        """(q, key) of each key the metric sends (q: None but for a percentile); the key of
        a by: metric still holds its placeholder."""
        if self.kind == "percentile":
            return [(q, self.key.replace("{q}", q_text(q))) for q in self.q]
        return [(None, self.key)]

    @property
    def fields(self) -> list[str]:
        """The line fields this metric reads."""
        names = [n for n in (self.field, self.by) if n]
        for f in (self.where, self.of):
            if f is not None:
                names += f.fields
        return names

    # -- folding a batch
    def fold(self, columns: Columns, n: int, masks: dict | None = None):
        """State of one batch of n lines (all in one window). `masks`: the masks of the
        filters already applied to these columns, by their text (metrics often share a
        `where:`, as the default sets' errors and 5xx share do): each is computed once."""
        if self.kind == "ratio":
            return self._fold_ratio(columns, n, masks)
        mask = _mask(self.where, columns, n, masks) if self.where is not None else None
        values = columns[self.field] if self.field else None
        if mask is not None and values is not None:
            values = list(compress(values, mask))
        if self.by is None:
            if values is None:
                return n if mask is None else sum(mask)
            if has_none(values):     # lines without the field ('-') do not count
                values = [v for v in values if v is not None]
            return _fold_values(self.kind, values)
        groups = columns[self.by]
        if mask is not None:
            groups = list(compress(groups, mask))
        if values is None:
            return self._bounded(dict(count_values(groups)))
        per_group: dict = {}
        for group, value in zip(groups, values):
            if value is not None:
                per_group.setdefault(group, []).append(value)
        return self._bounded({g: _fold_values(self.kind, vs) for g, vs in per_group.items()})

    def _fold_ratio(self, columns: Columns, n: int, masks: dict | None):
        of = _mask(self.of, columns, n, masks) if self.of is not None else None
        hit = _mask(self.where, columns, n, masks) if self.where is not None else [True] * n
        if of is not None:
            hit = list(map(and_, hit, of))
        if self.by is None:
            return [sum(hit), n if of is None else sum(of)]
        groups = columns[self.by]
        lines = Counter(groups if of is None else compress(groups, of))
        hits = Counter(compress(groups, hit))
        return self._bounded({g: [hits.get(g, 0), c] for g, c in lines.items()})

    # -- merging
    def merge(self, a, b):
        if self.by is None:
            return _merge_state(self.kind, a, b)
        merged = dict(a)
        kind = self.kind
        for group, state in b.items():
            merged[group] = _merge_state(kind, merged[group], state) if group in merged else state
        return self._bounded(merged)

    def _bounded(self, state: dict) -> dict:
        """The memory bound within a window: more than HARD_FACTOR * top groups -> top."""
        return self._cut(state) if len(state) > HARD_FACTOR * self.top else state

    def _cut(self, state: dict) -> dict:
        """The `top` groups of largest weight (ties: by the group's text), the rest merged
        into OTHER."""
        real = [g for g in state if g != OTHER]
        if len(real) <= self.top:
            return state
        weight = _WEIGHT[self.kind]
        ranked = sorted(real, key=lambda g: (-_sortable(weight(state[g])), str(g)))
        kept = {g: state[g] for g in ranked[:self.top]}
        folded = state.get(OTHER)
        for g in ranked[self.top:]:
            folded = state[g] if folded is None else _merge_state(self.kind, folded, state[g])
        kept[OTHER] = folded
        return kept

    # -- the checkpoint
    def dump(self, state):
        """The state as JSON data (for the checkpoint): by-groups as [group, state] pairs,
        since JSON object keys would turn a status 200 into the string "200"."""
        if self.by is None:
            return self._dump_one(state)
        return [[g, self._dump_one(s)] for g, s in state.items()]

    def load(self, data):
        if self.by is None:
            return self._load_one(data)
        return {g: self._load_one(s) for g, s in data}

    def _dump_one(self, state):
        return state.to_state() if self.kind in ("percentile", "distinct") else state

    def _load_one(self, data):
        if self.kind == "percentile":
            return QuantileSketch.from_state(data)
        if self.kind == "distinct":
            return DistinctCounter.from_state(data)
        return data

    # -- the values of a closed window
    def _values_of(self, key: str, state, interval: int, group: dict | None) -> list[Value]:
        kind = self.kind
        if kind == "percentile":
            estimates = state.quantiles([q / 100 for q in self.q])
            return [Value(key.replace("{q}", q_text(q)), e, self.name, group, q)
                    for q, e in zip(self.q, estimates)]
        if kind == "avg" or kind == "ratio":
            value = state[0] / state[1] if state[1] else None
        elif kind == "rate":
            value = state / interval
        elif kind == "distinct":
            value = state.estimate()
        else:
            value = state
        return [Value(key, value, self.name, group)]

    def values(self, state, interval: int = 60) -> list[Value]:
        """The values of a closed window's state (`interval`: for rate); none for a state
        without one (an avg of no line)."""
        if self.by is None:
            values = self._values_of(self.key, state, interval, None)
        else:
            placeholder = "{" + self.by + "}"
            state = self._cut(state)
            values = [v for group, s in sorted(state.items(), key=lambda item: str(item[0]))
                      for v in self._values_of(
                          self.key.replace(placeholder, zabbix_key_param(group)), s, interval,
                          {self.by: group_value(group)})]
        return [v for v in values if v.value is not None]


def _mask(where: Filter, columns: Columns, n: int, masks: dict | None) -> list:
    if masks is None:
        return where.mask(columns, n)
    mask = masks.get(where.text)
    if mask is None:
        mask = masks[where.text] = where.mask(columns, n)
    return mask


def _sortable(weight) -> float:
    return weight if weight is not None else float("-inf")
