"""The optional compiled speedup (_split.c), and whether it is on.

plogd builds _split.c at `pip install` when gcc and the Python headers are there; without
them it installs all the same and runs in pure Python, with identical results (the tests
run both paths and compare them). PLOGD_PURE_PYTHON=1 turns the speedup off (CI checks the
pure path with it; a user can rule the speedup out with it).

What it covers:
  - the split path of a compiled format (logformat._Layout), for the columns the metrics
    read: the same misfits as the Python collector, the common types converted in C (ints,
    floats, '-', strings, the time through a cache of the seconds seen whose misses are
    parsed by fields.to_epoch: one authority on dates), any other type handed back as raw
    tokens to its own column converter, as on the pure path;
  - for the folds: `None in column` (has_none), dict(Counter(column)) (count_values) and
    (min(column), max(column)) in one pass (min_max).
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

from .fields import (BYTES, FLOAT, FLOAT_LIST, HOST, INT, OPTIONAL_INT, FieldType,
                     list_spaces_fit, to_str)

try:
    from . import _split
except ImportError:        # not built (no compiler or no Python headers at install)
    _split = None
VERSION = 3       # _split.c's SPLIT_VERSION: a module built from another version is not used
if getattr(_split, "VERSION", None) != VERSION:
    _split = None

PURE_ENV = "PLOGD_PURE_PYTHON"

# keep in step with _split.c
K_RAW, K_STR, K_HOST, K_INT, K_OPT_INT, K_BYTES, K_FLOAT, K_FLOAT_LIST, K_TIME = range(9)
T_ANY, T_LIT, T_COL, T_DATE, T_ZONE = range(5)
P_QUOTED, P_WHOLE, P_TOKENS = range(3)

_KINDS = {id(INT): K_INT, id(OPTIONAL_INT): K_OPT_INT, id(BYTES): K_BYTES, id(FLOAT): K_FLOAT,
          id(FLOAT_LIST): K_FLOAT_LIST, id(HOST): K_HOST}


def built() -> bool:
    return _split is not None


def active() -> bool:
    """Whether new extractors use the compiled split path."""
    return _split is not None and os.environ.get(PURE_ENV, "") in ("", "0")


def status() -> str:
    """For `plogd --version` and the start-up log."""
    if active():
        return "compiled speedup: on"
    if _split is not None:
        return f"compiled speedup: off, {PURE_ENV} is set; parsing in pure Python"
    return ("compiled speedup: not built (no C compiler or Python headers when plogd was "
            "installed); parsing in pure Python, with identical results")


def log_status(logger) -> None:
    """Once at start-up: a word when parsing runs in pure Python."""
    if not active():
        logger.info("plogd: %s", status())


def _has_none(column) -> bool:
    return None in column


# `None in column` for the folds and filters: by identity, without a comparison per value,
# when compiled (the same answer: no int, float or string equals None)
has_none = _split.has_none if active() else _has_none
_count_values = _split.count_values if active() else (lambda column: None)


def count_values(column) -> dict:
    """dict(Counter(column)): in C for a column of floats or of ints (a table of their bits
    instead of a dict lookup per value) or of a few string objects (a derived field), the
    same dict in the same order."""
    counted = _count_values(column)
    return Counter(column) if counted is None else counted


_min_max = _split.min_max if active() else (lambda column: None)


def min_max(column) -> tuple:
    """(min(column), max(column)): in one pass in C for a column of ints or of floats, the
    same objects; else by min and max (a TypeError for a column holding None, say)."""
    got = _min_max(column)
    return (min(column), max(column)) if got is None else got


def _kind(ftype: FieldType) -> int:
    if ftype.any_token and ftype.convert is to_str:
        return K_STR
    return _KINDS.get(id(ftype), K_RAW)


def split_collector(layout, checked: list[str], sources: list[str],
                    epoch: Callable[[bytes, bytes], int]) -> Callable | None:
    """For a layout (logformat._Layout) and the fields the batch extractor checks and
    converts: lines -> (typed columns, raw token columns, misfits), or None when a token is
    not of its type (the batch is the regex's). The typed columns are those of `sources`
    the compiler converts, and 'timestamp' from the time tokens; the raw ones, every other
    field of `checked`, for the Python converters. None (no collector) when the speedup is
    off or the layout needs what it does not do ($time_local asked for as text). Its
    from_text(data, max_line) does the same from the text of a batch."""
    if not active() or "time_local" in sources:
        return None
    names, columns = [], []
    for name in checked:
        kind = _kind(layout.types[name])
        names.append(name)
        columns.append((kind, int(name in sources or kind == K_RAW)))
    column_of = {layout.raw[name]: k for k, name in enumerate(names)}
    if layout.time_tokens is not None:
        names.append("timestamp")
        columns.append((K_TIME, 1))
    time_column = len(names) - 1
    literals = dict(layout.literals)
    nonempty = set(layout.nonempty)

    def token(expr: str) -> tuple:
        if expr in literals:
            return T_LIT, literals[expr], False
        if layout.time_tokens and expr in layout.time_tokens:
            return (T_DATE if expr == layout.time_tokens[0] else T_ZONE), time_column, False
        if expr in column_of:
            return T_COL, column_of[expr], expr in nonempty
        return T_ANY, None, expr in nonempty

    parts = []
    for i in range(layout.n_parts):
        if i % 2:
            parts.append((P_QUOTED, token(f"p{i}")))
        elif i in layout.whole_parts:
            parts.append((P_WHOLE, layout.whole_parts[i]))
        else:
            parts.append((P_TOKENS, (i in layout.rest_parts, tuple(
                token(f"s{i}_{k}") for k in range(layout.token_counts[i])))))
    collect = _split.Collector(tuple(parts), tuple(columns), epoch, list_spaces_fit)
    typed = [(k, n) for k, n in enumerate(names) if columns[k][0] != K_RAW and columns[k][1]]
    raw = [(k, n) for k, n in enumerate(names) if columns[k][0] == K_RAW]

    def sorted_out(out: list) -> tuple[dict, dict]:
        return {n: out[k] for k, n in typed}, {n: out[k] for k, n in raw}

    def collected(lines: list[bytes]):
        got = collect(lines)
        return None if got is None else (*sorted_out(got[0]), got[1])

    def collected_from_text(data: bytes, max_line: int):
        """The same from the text of a batch, without a bytes object per line:
        (typed, raw, misfits, lines, lines longer than max_line (skipped)), or None."""
        got = collect.from_text(data, max_line)
        return None if got is None else (*sorted_out(got[0]), *got[1:])
    collected.from_text = collected_from_text  # type: ignore[attr-defined]  # read by the caller
    return collected
