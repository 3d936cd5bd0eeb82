"""Metrics: what a window computes over its lines, as mergeable partial states.

A metric folds a batch of parsed lines (given as columns: one list per field) into a small
state; states of the same window merge, whatever the order and however the lines were split
into batches or spread over parser processes. A closed window's states become Zabbix values.

    type   state            value
    count  n                n
    sum    total            total
    avg    [total, n]       total / n       (no value when n == 0)
    min    smallest|None    smallest        (no value when no line had the field)
    max    largest|None     largest

With `by: FIELD` the state is a dict {field value: state}, one Zabbix key per value.
"""
from __future__ import annotations

from collections import Counter
from itertools import compress
from typing import Callable

from .filters import Columns, Filter

TYPES = ("count", "sum", "avg", "min", "max")
NEEDS_FIELD = {"sum", "avg", "min", "max"}


def _fold_values(kind: str, values: list):
    if kind == "count":
        return len(values)
    if kind == "sum":
        return sum(values)
    if kind == "avg":
        return [sum(values), len(values)]
    if not values:
        return None
    return min(values) if kind == "min" else max(values)


def _merge_state(kind: str, a, b):
    if kind in ("count", "sum"):
        return a + b
    if kind == "avg":
        return [a[0] + b[0], a[1] + b[1]]
    if a is None or b is None:
        return b if a is None else a
    return min(a, b) if kind == "min" else max(a, b)


def _value(kind: str, state):
    if kind == "avg":
        return state[0] / state[1] if state[1] else None
    return state


def zabbix_key_param(value) -> str:
    """A value as one parameter inside a Zabbix item key: quoted when it holds , ] [ " or
    spaces (Zabbix's own quoting rule), so a URL or a user agent cannot break the key."""
    text = "-" if value is None else str(value)
    if text and not any(c in text for c in ',[]" ') and not text.startswith('"'):
        return text
    return '"' + text.replace('"', '\\"') + '"'


class Metric:
    def __init__(self, key: str, kind: str, field: str | None = None, by: str | None = None,
                 where: Filter | None = None):
        self.key = key
        self.kind = kind
        self.field = field
        self.by = by
        self.where = where

    @property
    def fields(self) -> list[str]:
        """The line fields this metric reads."""
        names = [n for n in (self.field, self.by) if n]
        return names + (self.where.fields if self.where else [])

    def fold(self, columns: Columns, n: int):
        """State of one batch of n lines (all in one window)."""
        selected: Callable[[list], list]
        if self.where is not None:
            mask = self.where.mask(columns, n)
            selected = lambda column: list(compress(column, mask))
        else:
            selected = lambda column: column
        values = selected(columns[self.field]) if self.field else None
        if self.by is None:
            if values is None:
                return n if self.where is None else sum(mask)
            if None in values:     # lines without the field ('-') do not count
                values = [v for v in values if v is not None]
            return _fold_values(self.kind, values)
        groups = selected(columns[self.by])
        if values is None:
            return dict(Counter(groups))
        per_group: dict = {}
        for group, value in zip(groups, values):
            if value is not None:
                per_group.setdefault(group, []).append(value)
        return {g: _fold_values(self.kind, vs) for g, vs in per_group.items()}

    def merge(self, a, b):
        if self.by is None:
            return _merge_state(self.kind, a, b)
        merged = dict(a)
        for group, state in b.items():
            merged[group] = _merge_state(self.kind, merged[group], state) if group in merged else state
        return merged

    def dump(self, state):
        """The state as JSON data (for the checkpoint): by-groups as [group, state] pairs,
        since JSON object keys would turn a status 200 into the string "200"."""
        return state if self.by is None else [[g, s] for g, s in state.items()]

    def load(self, data):
        return data if self.by is None else {g: s for g, s in data}

    def values(self, state) -> list[tuple[str, object]]:
        """(Zabbix key, value) pairs of a closed window's state."""
        if self.by is None:
            pairs = [(self.key, _value(self.kind, state))]
        else:
            placeholder = "{" + self.by + "}"
            pairs = [(self.key.replace(placeholder, zabbix_key_param(group)), _value(self.kind, s))
                     for group, s in sorted(state.items(), key=lambda item: str(item[0]))]
        return [(key, value) for key, value in pairs if value is not None]
