"""nginx log_format strings -> a LogFormat whose fields are named after the variables.

The format is the internal template language itself; what this adds is the checks and the
`log_format NAME [escape=...] '...' '...';` directive as written in nginx.conf (its strings
are joined, as nginx does). A variable's type is in fields.KNOWN_TYPES ($status: int,
$request_time: float, $upstream_response_time: the sum of its list...); any other variable
($http_*, $cookie_*, $arg_*, $ssl_*, ...) is a string.
"""
from __future__ import annotations

import re

from .logformat import _VARIABLE, FormatError, LogFormat, _split_template

# a quoted string of nginx.conf (backslash escapes) or a bare word
_CONF_TOKEN = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^\s'";]+))""", re.S)
_CONF_ESCAPE = re.compile(r"\\(.)", re.S)
_CONF_ESCAPES = {"t": "\t", "n": "\n", "r": "\r"}


def compile_nginx(text: str, name: str = "log_format") -> LogFormat:
    """The format of `text`: a log_format string, or a whole log_format directive.
    Raises FormatError with a message for the user."""
    template = _directive_format(text) if text.lstrip().startswith("log_format") else text
    for dollar in re.finditer(r"\$", template):
        if not _VARIABLE.match(template, dollar.start()):
            raise FormatError(f"the '$' at column {dollar.start() + 1} does not start "
                              f"a variable name ($name or ${{name}}): "
                              f"{template[dollar.start():dollar.start() + 12]!r}")
    pieces = _split_template(template)
    if len(pieces) == 1:
        raise FormatError(f"{template!r} has no $variable: it would yield no field")
    return LogFormat.from_pieces(name, pieces)


def _directive_format(text: str) -> str:
    """"log_format main escape=json '$a ' '"$b"';" -> '$a "$b"'"""
    words = []      # (bare word, or None; quoted string, or None)
    pos = text.index("log_format") + len("log_format")
    while m := _CONF_TOKEN.match(text, pos):
        words.append((m.group(3), m.group(1) if m.group(1) is not None else m.group(2)))
        pos = m.end()
    rest = text[pos:].strip()
    if rest not in ("", ";"):
        raise FormatError(f"cannot read the log_format directive from {rest[:20]!r} on")
    words = words[1:]                     # the format's own name
    if words and (words[0][0] or "").startswith("escape="):
        # json escapes \" and \\, read as with default; with none, a '"' inside a
        # quoted value ends it early and the line is (most likely) unmatched
        escape = words.pop(0)[0][len("escape="):]
        if escape not in ("default", "json", "none"):
            raise FormatError(f"escape={escape}: allowed: default, json, none")
    if not words or any(quoted is None for _, quoted in words):
        raise FormatError("a log_format directive is: log_format NAME [escape=...] "
                          "'string' ...;")
    return "".join(_CONF_ESCAPE.sub(lambda m: _CONF_ESCAPES.get(m.group(1), m.group(1)), quoted)
                   for _, quoted in words)
