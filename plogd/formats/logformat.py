"""A log format: the regex that is the authority on what a line means, and a fast path.

A format is written as an nginx ``log_format`` template (``$remote_addr - $remote_user
[$time_local] "$request" ...``) or given as a regex with named groups; the nginx and Apache
compilers (nginx.py, apache.py) produce the same template pieces, with the types they chose.
From the pieces we build both the full regex and, when the layout allows it, a split path for
whole batches: split each line on ``"`` and its unquoted parts on spaces, check the layout
and every literal, collect the raw tokens into columns, then convert each column at once (in
C where the type allows: ``map(int, ...)``, one regex over the distinct floats, tables of
distinct values). A list (nginx ``$upstream_*``: ``0.1, 0.2``) that ends its part takes the
rest of it. A line that does not fit the layout (escapes, a list elsewhere, CR, garbage) goes
to the regex; a column with a token that is not of its type sends its batch to the regex.
Both paths use the types of ``fields``, so they give identical values (a property test
checks it); the split path is about 2x faster.

Fields whose name starts with '_' are matched and checked but not offered (the parts of an
Apache time, a directive logged twice).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..userregex import UserRegex, compile_user

from .compiled import split_collector
from .fields import (STRING, TIME, Derived, FieldType, by_table, derived_fields,
                     field_type, list_spaces_fit, to_epoch)

Columns = dict[str, list]
# (lines, text=None) -> (columns, unmatched); `text`: the lines as read (newlines between), if
# the caller has it: one look for backslashes in it spares a look in every line. It must hold
# every line (more is harmless): a line with an escape it lacked would be split wrongly.
BatchExtractor = Callable[..., "tuple[Columns, int]"]
Pieces = list[tuple[str, "str | None"]]     # (literal text, the variable after it)

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class FormatError(ValueError):
    """A format definition that cannot be compiled; the message is for the user."""


_DASH_PAIRS = {"[": ("[", "]"), '"': ('"', '"')}    # delimiters a bare '-' may replace


class LogFormat:
    # the input's default `continuation:` (a regex: a line it matches at its start is part
    # of the entry before), for formats whose entries span lines (the error logs)
    continuation: str | None = None

    def __init__(self, name: str, regex: re.Pattern | UserRegex | None,
                 types: dict[str, FieldType], fast_layout: _Layout | None = None,
                 derived: dict[str, Derived] | None = None,
                 elements: list[tuple[bytes, str]] | None = None,
                 origins: dict[str, str] | None = None):
        self.name = name
        self.regex = regex
        self._types = types                  # every logged field, the '_' ones included
        self._groups = dict(regex.groupindex) if regex is not None else {}   # None: JSON
        self._fast_layout = fast_layout
        self._derived = derived_fields(types, derived)
        self.elements = elements or []       # (regex, what it is) in line order: see detect.py
        self.origins = origins or {}         # field -> what the user wrote for it ('%>s')
        self.fields: dict[str, str] = {n: t.name for n, t in types.items() if n[0] != "_"}
        for derived_name, rule in self._derived.items():
            self.fields[derived_name] = rule.type_name
        self._parse_row: Callable[[bytes], tuple | None] | None = None

    @classmethod
    def from_template(cls, name: str, template: str,
                      dashed: frozenset[str] = frozenset()) -> LogFormat:
        return cls.from_pieces(name, _split_template(template), dashed=dashed)

    @classmethod
    def from_pieces(cls, name: str, pieces: Pieces, types: dict[str, FieldType] | None = None,
                    derived: dict[str, Derived] | None = None,
                    origins: dict[str, str] | None = None,
                    dashed: frozenset[str] = frozenset()) -> LogFormat:
        """`types`: the type of each variable outside quotes (its `quoted` variant is used
        inside), by default the type of its name; `derived`: the compiler's own derived
        fields (before the standard ones); `origins`: what the user wrote for each variable;
        `dashed`: variables between '[' ']' or quotes whose place may hold a bare '-' (or
        '[-]') instead, the variable then absent (Apache: '- - - - - - -')."""
        given = types or {}
        origins = {v: (origins or {}).get(v, f"${v}") for _, v in pieces if v}
        field_types: dict[str, FieldType] = {}
        regex, elements, quoted = b"", [], False
        closing = ""      # the delimiter a dashed variable took from the next literal
        for k, (text, variable) in enumerate(pieces):
            literal, closing = text[len(closing):], ""
            quoted ^= text.count('"') % 2 == 1
            pair = _DASH_PAIRS.get(literal[-1:]) if variable in dashed else None
            if pair and k + 1 < len(pieces) and pieces[k + 1][0][:1] == pair[1] and \
                    (quoted or pair[0] != '"'):
                literal, closing = literal[:-1], pair[1]
            if literal:
                regex += re.escape(literal.encode())
                elements.append((re.escape(literal.encode()), repr(literal)))
            if variable is None:
                continue
            ftype = given[variable].in_context(quoted) if variable in given else \
                field_type(variable, quoted)
            label = f"{origins[variable]} ({ftype.name})"
            if variable in field_types:   # a variable logged twice: match it, keep the first
                value = b"(?:%s)" % ftype.pattern
            else:
                field_types[variable] = ftype
                value = b"(?P<%s>%s)" % (variable.encode(), ftype.pattern)
            plain = b"(?:%s)" % ftype.pattern
            if pair and closing:       # '[' value ']', '[-]' or '-'
                opening, close = (re.escape(c.encode()) for c in pair)
                value, plain = ((b"(?:%s%s%s|%s-%s|-)" % (opening, v, close, opening, close))
                                for v in (value, plain))
                label = f"{pair[0]}{origins[variable]}{pair[1]} ({ftype.name}) or '-'"
            regex += value
            elements.append((plain, label))
        # A template describes the whole line (a trailing CR from CRLF files is allowed).
        whole_line = re.compile(rb"(?:%s)\r?\Z" % regex, re.S)
        chosen = derived_fields(field_types, derived)
        return cls(name, whole_line, field_types, _Layout.build(pieces, field_types, chosen),
                   chosen, elements, origins)

    @classmethod
    def from_regex(cls, name: str, pattern: str, time_field: str | None = None,
                   layout=None, types: dict[str, FieldType] | None = None) -> LogFormat:
        """`layout` (a strftime.TimeLayout): how the group `time_field` writes the time;
        `types`: the type of a group (default: the type of its name, fields.KNOWN_TYPES,
        else a string)."""
        try:
            compiled = compile_user(pattern.encode(), f"format {name}")
        except re.error as e:
            raise FormatError(f"not a valid regular expression: {e}") from None
        if not compiled.groupindex:
            raise FormatError("the regex has no named group (?P<name>...): it yields no field")
        given = types or {}
        unknown = set(given) - set(compiled.groupindex)
        if unknown:
            raise FormatError(f"types: the regex has no group named {sorted(unknown)[0]!r}")
        typed = {g: given.get(g) or field_type(g, quoted=True) for g in compiled.groupindex}
        if layout is None:
            return cls(name, compiled, typed)   # like re.match: anchored at the start only
        if time_field is None or time_field not in typed:
            raise FormatError(f"the regex has no group named {time_field!r} for its time; "
                              f"its groups: {', '.join(typed)}")
        typed[time_field] = layout.field_type()
        return cls(name, compiled, typed, derived={"timestamp": layout.timestamp(time_field)},
                   origins={time_field: f"(?P<{time_field}>...)"})

    # -- full records, for `plogd parse` and the tests
    def parse(self, line: bytes) -> dict | None:
        """The typed fields of one line (timestamp None when the line logs no time), or None."""
        if self._parse_row is None:
            self._parse_row = self._regex_extractor(list(self.fields))
        row = self._parse_row(line)
        return None if row is None else dict(zip(self.fields, row))

    # -- the hot path
    def batch_extractor(self, names: list[str]) -> BatchExtractor:
        """A function lines -> (columns, unmatched): for each of `names` the list of typed
        values of the lines that match (all lists in the same line order), and the number
        of lines that do not. A line that matches without a time (Apache's '-') has the
        timestamp None: the parser sets it aside (odd_time), in no window."""
        unknown = [n for n in names if n not in self.fields]
        if unknown:
            raise FormatError(f"format {self.name} has no field {unknown[0]!r}")
        regex = self._regex_extractor(names)

        def by_regex(lines: list[bytes], text: bytes | None = None) -> tuple[Columns, int]:
            rows = [row for row in map(regex, lines) if row is not None]
            columns = {n: list(col) for n, col in zip(names, zip(*rows))} if rows else \
                {n: [] for n in names}
            return columns, len(lines) - len(rows)

        return by_regex if self._fast_layout is None else \
            self._fast_layout.batch_extractor(names, by_regex)

    def _regex_extractor(self, names: list[str]) -> Callable[[bytes], tuple | None]:
        """The authority: line -> typed values of `names`, or None."""
        logged: list[str] = []     # the logged fields to convert, each once
        for name in names:
            logged += [s for s in self._sources(name) if s not in logged]
        position = {field: k for k, field in enumerate(logged)}
        convert = [(self._groups[field] - 1, self._types[field].convert) for field in logged]
        # (position, None) for a logged field, (positions, convert) for a derived one
        outputs: list[tuple[Any, Callable | None]] = [
            (position[n], None) if n in self._types else
            (tuple(position[s] for s in self._derived[n].sources), self._derived[n].convert)
            for n in names]
        assert self.regex is not None       # a JsonFormat (no regex) has its own
        match = self.regex.match

        def extract(line: bytes):
            m = match(line)
            if m is None:
                return None
            raw = m.groups()
            try:
                values = [None if raw[i] is None else conv(raw[i]) for i, conv in convert]
                return tuple(values[at] if derive is None else derive(*map(values.__getitem__, at))
                             for at, derive in outputs)
            except (ValueError, OverflowError):   # e.g. a month that does not exist
                return None
        return extract

    def invalid_value(self, line: bytes) -> tuple[str, bytes] | None:
        """For a line the regex matches but a type rejects: (the field, as the user wrote
        it, and its raw value), e.g. ('$time_local', b'31/Feb/2024:10:00:00 +0000')."""
        assert self.regex is not None       # a JsonFormat (no regex) has its own
        m = self.regex.match(line)
        if m is None:
            return None
        values = {}
        for field, ftype in self._types.items():
            raw = m.group(field)
            try:
                values[field] = None if raw is None else ftype.convert(raw)
            except (ValueError, OverflowError):
                return self.origins.get(field, field), raw
        for field, rule in self._derived.items():
            try:
                rule.convert(*(values[s] for s in rule.sources))
            except (ValueError, OverflowError):
                shown = " ".join(self.origins.get(s, s) for s in rule.sources)
                return f"{field} (from {shown})", b" ".join(m.group(s) or b"" for s in rule.sources)
        return None

    def _sources(self, name: str) -> tuple[str, ...]:
        """The logged fields that give `name`: itself, or the sources it is derived from."""
        return (name,) if name in self._types else self._derived[name].sources


def describe_fields(fmt: LogFormat) -> list[tuple[str, str]]:
    """(field, its type and where it comes from) for `plogd check`:
    ('status', 'int, %>s'), ('timestamp', 'epoch seconds, from %t')."""
    described = []
    for name, type_name in fmt.fields.items():
        if name in fmt._derived:
            origin = "from " + ", ".join(fmt.origins.get(s, s) for s in fmt._derived[name].sources)
        else:
            origin = fmt.origins.get(name, "regex group")
        described.append((name, f"{type_name}, {origin}"))
    return described


def _split_template(template: str) -> Pieces:
    """'a $x b$y' -> [('a ', 'x'), (' b', 'y'), ('', None)]"""
    pieces, pos = [], 0
    for m in _VARIABLE.finditer(template):
        pieces.append((template[pos:m.start()], m.group(1) or m.group(2)))
        pos = m.end()
    pieces.append((template[pos:], None))
    return pieces


def _render(pieces: Pieces) -> str | None:
    """The pieces as a template again, or None when a literal holds '$' (no way to write it)."""
    text = ""
    for k, (literal, variable) in enumerate(pieces):
        if "$" in literal:
            return None
        text += literal
        if variable is not None:
            follows = pieces[k + 1][0][:1] if k + 1 < len(pieces) else ""
            text += f"${{{variable}}}" if re.match(r"\w", follows) else f"${variable}"
    return text


class _Layout:
    """Where each field sits once a line is split on '"' and its unquoted parts on ' '.

    Token expressions are names in the generated collector: ``p1`` is the second
    '"'-separated part, ``s2_1`` the second space-separated token of part 2."""

    def __init__(self, n_parts: int, whole_parts: dict[int, bytes], token_counts: dict[int, int],
                 literals: list[tuple[str, bytes]], nonempty: list[str], raw: dict[str, str],
                 time_tokens: tuple[str, str] | None, types: dict[str, FieldType],
                 derived: dict[str, Derived], rest_parts: set[int]):
        self.n_parts = n_parts
        self.whole_parts = whole_parts       # unquoted parts that hold only literal text
        self.token_counts = token_counts     # other unquoted parts -> number of tokens
        self.rest_parts = rest_parts         # parts whose last token takes the rest (a list)
        self.rest_tokens = [f"s{i}_{token_counts[i] - 1}" for i in sorted(rest_parts)]
        self.literals = literals             # (token expression, expected bytes)
        self.nonempty = nonempty             # expressions that must not be empty ([^ ]+)
        self.raw = raw                       # field -> expression giving its raw bytes
        self.time_tokens = time_tokens       # the '[date' and 'zone]' tokens of $time_local
        self.types = types
        self.derived = derived

    @classmethod
    def build(cls, pieces: Pieces, types: dict[str, FieldType],
              derived: dict[str, Derived]) -> _Layout | None:
        template = _render(pieces)
        variables = [v for _, v in pieces if v]
        if template is None or len(set(variables)) < len(variables):
            return None     # a '$' in the text, or a variable logged twice: the regex decides
        parts = template.split('"')
        whole_parts, token_counts, literals, nonempty, raw = {}, {}, [], [], {}
        time_tokens, rest_parts = None, set()
        for i, part in enumerate(parts):
            if i % 2:   # inside quotes: the whole part must be one variable
                m = _VARIABLE.fullmatch(part)
                if m is None:
                    return None
                raw[m.group(1) or m.group(2)] = f"p{i}"
                continue
            if "$" not in part:
                whole_parts[i] = part.encode()
                continue
            position, tokens = 0, part.split(" ")
            for token in tokens:
                expr = f"s{i}_{position}"
                m = _VARIABLE.fullmatch(token)
                if "$" not in token:
                    literals.append((expr, token.encode()))
                elif m is not None:
                    name = m.group(1) or m.group(2)
                    raw[name] = expr
                    if types[name] is STRING:
                        nonempty.append(expr)
                    if types[name].spaced and token == tokens[-1]:
                        rest_parts.add(i)   # a list ('0.1, 0.2') as the rest of the part
                elif token == "[$time_local]" and types["time_local"] is TIME:
                    # the one variable whose value holds a space: two tokens
                    time_tokens = (expr, f"s{i}_{position + 1}")
                    position += 1
                else:
                    return None   # e.g. '$server_name:$server_port': the regex handles it
                position += 1
            token_counts[i] = position
        return cls(len(parts), whole_parts, token_counts, literals, nonempty, raw,
                   time_tokens, types, derived, rest_parts)

    def batch_extractor(self, names: list[str], by_regex: BatchExtractor) -> BatchExtractor:
        stamp = self.derived.get("timestamp")
        has_time = self.time_tokens is not None     # '[$time_local]': two tokens
        # the usual time: epoch seconds straight from the '[date' and 'zone]' tokens
        time_field = has_time and stamp is not None and stamp.sources == ("time_local",)
        sources = []        # the logged fields to convert: asked for, or a derived one's sources
        for name in names:
            if not (name == "timestamp" and time_field):
                wanted = self.derived[name].sources if name not in self.types else (name,)
                sources += [s for s in wanted if s not in sources]
        # typed fields not asked for are converted too: that is the regex's check on them
        checked = sources + [n for n, t in self.types.items()
                             if not t.any_token and n not in sources]
        if has_time:
            checked.remove("time_local")
        # the C collector, when built and the layout is one it does (see compiled.py)
        compiled = split_collector(self, checked, sources, _epoch) \
            if time_field or not has_time else None
        careful: Callable | None = None
        quick: Callable | None = None
        if compiled is None:        # the Python ones
            careful = self._collector(checked, has_time, careful=True)
            quick = self._collector(checked, has_time, careful=False)
            lists = [n for n in checked if self.raw[n] in self.rest_tokens]

        def typed_columns(typed: Columns, tokens: Columns,
                          misfits: list[bytes]) -> tuple[Columns, int] | None:
            """The columns of `names` from the collected ones (`typed`: converted already,
            by the compiled collector), the misfits by the regex; None when a token is not
            of its type."""
            try:
                values = {n: typed[n] if n in typed else self.types[n].column_converter(tokens[n])
                          for n in checked if n in sources}
                for n in checked:
                    if n not in sources and n in tokens:     # not asked for: checked only
                        self.types[n].column_checker(tokens[n])
                if "timestamp" in typed:
                    values["timestamp"] = typed["timestamp"]
                elif has_time:
                    dates, zones = tokens["[date"], tokens["zone]"]
                    if time_field:
                        values["timestamp"] = _epochs(dates, zones)
                    if "time_local" in sources or not time_field:   # asked for, or unchecked
                        values["time_local"] = by_table(_time_text)(list(zip(dates, zones)))
                columns = {n: values[n] if n in values else self._derive(n, values)
                           for n in names}
            except (ValueError, OverflowError):   # a token not of its type: the regex decides
                return None
            if misfits:
                extra, unmatched = by_regex(misfits)
                for n in names:
                    columns[n] += extra[n]
                return columns, unmatched
            return columns, 0

        def extract(lines: list[bytes], text: bytes | None = None) -> tuple[Columns, int]:
            if compiled is not None:
                collected = compiled(lines)
            else:
                # the quick collector when no line holds an escape (one look at the text),
                # then the careful one if a list took more than a list (one look per list)
                assert quick is not None and careful is not None
                quick_enough = text is not None and b"\\" not in text
                tokens, misfits = (quick if quick_enough else careful)(lines)
                if quick_enough and not all(list_spaces_fit(b"\n".join(tokens[n]))
                                            for n in lists):
                    tokens, misfits = careful(lines)
                collected = {}, tokens, misfits
            done = None if collected is None else typed_columns(*collected)
            return by_regex(lines) if done is None else done

        def extract_text(data: bytes, max_line: int) -> tuple[Columns, int, int, int] | None:
            """The compiled path from the text of a batch: (columns, unmatched, lines, lines
            longer than max_line, skipped), or None: then split it and call extract."""
            # set up only with a compiled collector; from_text is a function attribute
            collected = compiled.from_text(data, max_line)  # type: ignore[union-attr]
            if collected is None:
                return None
            done = typed_columns(*collected[:3])
            return None if done is None else (*done, *collected[3:])

        # function attributes that callers read: whether it is the C path, and the text path
        extract.compiled = compiled is not None  # type: ignore[attr-defined]
        if compiled is not None:
            extract.from_text = extract_text  # type: ignore[attr-defined]
        return extract

    def _derive(self, name: str, values: Columns) -> list:
        rule = self.derived[name]
        if len(rule.sources) == 1:
            return by_table(rule.convert)(values[rule.sources[0]])
        return list(map(rule.convert, *(values[s] for s in rule.sources)))

    def _collector(self, fields: list[str], with_time: bool, careful: bool):
        """Generated code: lines -> ({field: raw tokens}, lines that do not fit the layout).
        `careful`: look at every line for backslashes and for a list taking more than a
        list (a stray word after it): such lines go to the regex."""
        targets = list(fields) + (["[date", "zone]"] if with_time else [])
        exprs = [self.raw[n] for n in fields] + (list(self.time_tokens or ()) if with_time
                                                 else [])
        conditions = [f"p{i} == {text!r}" for i, text in self.whole_parts.items()]
        empty = [e for e, lit in self.literals if lit == b""]
        if empty:
            conditions.append(" == ".join(empty + ["b''"]))
        conditions += [f"{e} == {lit!r}" for e, lit in self.literals if lit != b""]
        conditions += self.nonempty
        if careful:     # a stray word after a list: a misfit, not its whole batch to the regex
            conditions += [f"(b' ' not in {e} or list_spaces_fit({e}))" for e in self.rest_tokens]
        parts = ", ".join(f"p{i}" for i in range(self.n_parts))
        src = "\n".join([
            "def collect(lines):",
            *[f"    c{k} = []; a{k} = c{k}.append" for k in range(len(targets))],
            "    misfits = []",
            "    for line in lines:",
            *(["        if b'\\\\' in line:",
               "            misfits.append(line); continue"] if careful else []),
            "        try:    # a line with more or fewer parts or tokens does not unpack",
            f"            {parts}, = line.split(b'\"')",
            *[f"            {', '.join(f's{i}_{k}' for k in range(n))}, = "
              f"p{i}.split(b' '{f', {n - 1}' if i in self.rest_parts else ''})"
              for i, n in self.token_counts.items()],
            "        except ValueError:",
            "            misfits.append(line); continue",
            f"        if not ({' and '.join(conditions) or 'True'}):",
            "            misfits.append(line); continue",
            *[f"        a{k}({e})" for k, e in enumerate(exprs)],
            "    return {" + ", ".join(f"{t!r}: c{k}" for k, t in enumerate(targets))
            + "}, misfits",
        ])
        env: dict = {"list_spaces_fit": list_spaces_fit}
        exec(compile(src, f"<{len(targets)}-column collector>", "exec"), env)
        return env["collect"]


def _epochs(dates: list[bytes], zones: list[bytes]) -> list[int]:
    """Epoch seconds from the '[10/Oct/2000:13:55:36' and '-0700]' tokens of $time_local
    (brackets checked here, once per distinct token, rather than on every line)."""
    if zones and zones.count(zones[0]) == len(zones):     # one zone: a table of the seconds
        table = {d: _epoch(d, zones[0]) for d in set(dates)}
        return list(map(table.__getitem__, dates))
    return list(map(_epoch, dates, zones))


def _epoch(date: bytes, zone: bytes) -> int:
    if date[:1] != b"[" or zone[-1:] != b"]":
        raise ValueError(date + b" " + zone)
    return to_epoch(date[1:] + b" " + zone[:-1])


def _time_text(tokens: tuple[bytes, bytes]) -> object:
    """$time_local from its '[date' and 'zone]' tokens."""
    date, zone = tokens
    if date[:1] != b"[" or zone[-1:] != b"]":
        raise ValueError(date + b" " + zone)
    return TIME.convert(date[1:] + b" " + zone[:-1])
