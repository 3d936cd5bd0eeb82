"""The `where:` language: a small, safe filter over a line's fields (no eval).

    status >= 500
    method in ["POST", "PUT"] and not status_class == "2xx"
    (request_time > 1.5 or status == 504) and path != "/health"

Comparisons are `== != < <= > >=` between a field and a number or a quoted string,
`field in [v, ...]`, and for text fields `field ^= "prefix"` (starts with) and
`field ~ "regex"` / `field !~ "regex"` (a Python regex found anywhere in the value: anchor it
with ^ and $; compiled at start-up, a bad one is an error with its column), combined with
`and`, `or`, `not` and parentheses. A comparison with a field that is absent on a line ('-')
is false (`!~` too: it is `not (field ~ ...)` only for lines that have the field).

A filter is compiled into a function over columns (one list per field, one entry per line)
that returns one bool per line: the metrics evaluate a whole batch at once.
"""
from __future__ import annotations

import difflib
import operator
from itertools import repeat
from operator import methodcaller
import re
from typing import Callable

from .formats.compiled import has_none
from .userregex import compile_user

Columns = dict[str, list]
Mask = Callable[[Columns, int], list]

_TOKEN = re.compile(r"""\s*(?:
      (?P<number>-?\d+(?:\.\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|\^=|!~|~|<|>|\(|\)|\[|\]|,)
    | (?P<word>[A-Za-z_]\w*)
    )""", re.X)

_TEXT_OPS = ("^=", "~", "!~")
MAX_DEPTH = 100
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


class FilterError(ValueError):
    """A `where:` expression that does not parse; the message says where and what."""


class Filter:
    def __init__(self, text: str, mask: Mask, fields: list[str]):
        self.text = text
        self.mask = mask          # (columns, n_lines) -> list of bools
        self.fields = fields      # the fields it reads


def compile_filter(text: str, numeric: dict[str, bool]) -> Filter:
    """`numeric` maps each field that may be used to whether it holds numbers: a number is
    compared only with numbers and text only with strings, so no line can make a
    comparison fail at run time."""
    parser = _Parser(text)
    mask = parser.parse()
    for field in sorted(parser.fields):
        if field not in numeric:
            close = difflib.get_close_matches(field, list(numeric), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise FilterError(f"{field!r} is not a field of this format{hint}; "
                              f"fields: {', '.join(numeric)}")
    for field, value in parser.comparisons:
        if numeric[field] != (not isinstance(value, str)):
            want = "a number" if numeric[field] else "a quoted string"
            raise FilterError(f"{field!r} is compared with {value!r} in {text!r}: "
                              f"{field} holds {'numbers' if numeric[field] else 'text'}, "
                              f"compare it with {want}")
    return Filter(text, mask, sorted(parser.fields))


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.regex_text: dict[int, str] = {}    # string token position -> its raw text
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.fields: set[str] = set()
        self.comparisons: list[tuple[str, object]] = []   # checked against field types
        self.depth = 0                          # nested 'not' and parentheses

    def _tokenize(self, text: str) -> list[tuple[str, object, int]]:
        tokens, pos = [], 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise self._error(pos, f"unexpected {text[pos:].strip()[:10]!r}")
            kind = m.lastgroup
            raw = m.group(kind)
            if kind == "number":
                value = float(raw) if "." in raw else int(raw)
            elif kind == "string":
                value = re.sub(r"\\(.)", r"\1", raw[1:-1])
                # a regex keeps its backslashes (\d, \.): only the quote's escape is undone
                self.regex_text[m.start(kind)] = raw[1:-1].replace("\\" + raw[0], raw[0])
            else:
                value = raw
            tokens.append((kind, value, m.start(kind)))
            pos = m.end()
        return tokens

    def _error(self, pos: int, what: str) -> FilterError:
        text = self.text if len(self.text) <= 200 else f"{self.text[:200]}…"
        return FilterError(f"{what} at column {pos + 1} of {text!r}; a filter looks like "
                           "'status >= 500', 'method in [\"GET\", \"HEAD\"]', joined by and/or/not")

    def _peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None, len(self.text))

    def _take(self, kind: str, value=None):
        token = self._peek()
        if token[0] != kind or (value is not None and token[1] != value):
            expected = repr(value) if value is not None else f"a {kind}"
            found = "the end" if token[0] == "end" else repr(token[1])
            raise self._error(token[2], f"expected {expected}, found {found}")
        self.pos += 1
        return token[1]

    def _at(self, kind: str, value) -> bool:
        token = self._peek()
        return token[0] == kind and token[1] == value

    def parse(self) -> Mask:
        mask = self._or()
        if self.pos != len(self.tokens):
            raise self._error(self._peek()[2], f"unexpected {self._peek()[1]!r}")
        return mask

    def _or(self) -> Mask:
        return self._chain("or", self._and, operator.or_)

    def _and(self) -> Mask:
        return self._chain("and", self._not, operator.and_)

    def _chain(self, word: str, operand: Callable[[], Mask], combine) -> Mask:
        """operand (word operand)*, the masks combined element-wise (bools: | and &) in a
        loop: a long chain must not nest one call per operand (RecursionError)."""
        masks = [operand()]
        while self._at("word", word):
            self.pos += 1
            masks.append(operand())
        if len(masks) == 1:
            return masks[0]

        def mask(c, n):
            result = masks[0](c, n)
            for other in masks[1:]:
                result = list(map(combine, result, other(c, n)))
            return result
        return mask

    def _not(self) -> Mask:
        if not (self._at("word", "not") or self._at("op", "(")):
            return self._comparison()
        # each level nests calls, here and at run time: bounded, or a hostile filter would
        # end in RecursionError
        if self.depth == MAX_DEPTH:
            raise self._error(self._peek()[2], f"more than {MAX_DEPTH} nested 'not' or "
                              "parentheses")
        self.depth += 1
        if self._at("word", "not"):
            self.pos += 1
            inner = self._not()
            mask = lambda c, n: [not x for x in inner(c, n)]
        else:
            self.pos += 1
            mask = self._or()
            self._take("op", ")")
        self.depth -= 1
        return mask

    def _comparison(self) -> Mask:
        field = self._take("word")
        if field in ("and", "or", "not", "in"):
            raise self._error(self._peek()[2], f"expected a field name, found {field!r}")
        self.fields.add(field)
        if self._at("word", "in"):
            self.pos += 1
            values = self._list()
            self.comparisons += [(field, v) for v in values]
            return lambda c, n: [v in values for v in c[field]]
        kind, op, pos = self._peek()
        if kind != "op" or op not in _COMPARE and op not in _TEXT_OPS:
            raise self._error(pos, f"expected a comparison (== != < <= > >= in ^= ~ !~) after "
                              f"{field!r}")
        self.pos += 1
        if op in _TEXT_OPS:
            return self._text_match(field, op)
        value = self._literal()
        self.comparisons.append((field, value))
        compare = _COMPARE[op]

        def mask(c, n):
            column = c[field]
            if has_none(column):     # an absent field compares false
                return [v is not None and compare(v, value) for v in column]
            return list(map(compare, column, repeat(value, n)))
        return mask

    def _text_match(self, field: str, op: str) -> Mask:
        kind, value, pos = self._peek()
        if kind != "string":
            found = "the end" if kind == "end" else repr(value)
            raise self._error(pos, f"expected a quoted string after {op!r}, found {found}")
        self.pos += 1
        self.comparisons.append((field, value))
        if op == "^=":
            test = methodcaller("startswith", value)
        else:
            try:
                found_in = compile_user(self.regex_text[pos], f"filter {self.text!r}").found_in
            except re.error as e:
                at = pos + 1 + (e.pos or 0)       # the column in the filter of the regex error
                raise self._error(at, f"bad regular expression {value!r}: {e.msg}") from None
            except RecursionError:                # re's parser recurses per nested group
                raise self._error(pos, "a regular expression nested too deeply") from None
            # a value over the regex's time bound (None) satisfies neither ~ nor !~
            test = (lambda v: found_in(v) is True) if op == "~" else \
                (lambda v: found_in(v) is False)

        def mask(c, n):
            # once per distinct value: a batch repeats its paths, agents, hosts
            table = {v: v is not None and test(v) for v in set(c[field])}
            return list(map(table.__getitem__, c[field]))
        return mask

    def _literal(self):
        kind, value, pos = self._peek()
        if kind not in ("number", "string"):
            found = "the end" if kind == "end" else repr(value)
            raise self._error(pos, f"expected a number or a quoted string, found {found}")
        self.pos += 1
        return value

    def _list(self) -> frozenset:
        self._take("op", "[")
        values = [self._literal()]
        while self._at("op", ","):
            self.pos += 1
            values.append(self._literal())
        self._take("op", "]")
        return frozenset(values)
