"""The regexes users write — `regex:` formats, `~`/`!~` filters, `rewrite:` — matched in a
bounded time per line, so that no line can stall the pipeline.

Why not Python's `re`: it backtracks. `path ~ "^/(a+)+$"` against one request for
'/aaaa…a!' stalled every window for 17-20 s, each extra 'a' doubling that (measured here:
24 a's 0.7 s, 26 a's 2.7 s). Three means were measured on that case:
- RE2 (google-re2), a linear-time engine: 26 a's in 0.1 ms, 100,000 in 0.2 ms. Its cost on
  ordinary lines, through the engine's own call (the package's re-like wrapper is a Python
  generator, 3x slower still): an nginx-like format regex 4.5 µs a line (re: 0.9 µs), a
  filter 1.3 µs a value (re: 0.4 µs) — filters are evaluated once per distinct value of a
  batch, so most lines cost nothing. In the parser: a batch of 4,000 lines plus the hostile
  one with 25 a's, 1.7 s with re, 0.05 s here; a `regex:` format with a `~` filter parses
  119,000 lines/s (re: 218,000).
- the `regex` module with a timeout: Python's syntax and semantics, but every hostile line
  costs the whole timeout, and ordinary lines 5.8 µs.
- rejecting catastrophic patterns at start-up: no sure test exists (nested quantifiers are
  one case; `\\d+\\d+\\d+x` is polynomial, and polynomial is enough with 64 KiB lines).
So: RE2 for every pattern it can run; a pattern it cannot (lookaround such as README's
`(?=/|$|\\?)`, backreferences, `\\Z`, atomic groups) runs on `regex` — same syntax and
meaning as `re` — bounded to TIMEOUT per call, and the start-up log says so. A line over the
bound is counted (`regex_timeout`: take_timeouts) and treated as not matching (a format:
unmatched; a filter: false; a rewrite: the value unchanged).

Python's `re` stays the authority on syntax (its errors, with positions, are what users
see). Where RE2 runs, `\\d`, `\\w`, `\\s` and `\\b` are ASCII-only (re's are Unicode on text).
"""
from __future__ import annotations

import logging
import re

import re2
from re2 import _re2   # the engine's own call: the wrapper's generators cost 3x (see above)

_log = logging.getLogger("plogd.config")

TIMEOUT = 0.02      # seconds per call, for the patterns RE2 cannot run

_timeouts = 0       # calls over TIMEOUT since the last take_timeouts (one process, one batch
                    # at a time: the parser attributes them to the batch it handles)


def take_timeouts() -> int:
    """Lines over the bound since the last call."""
    global _timeouts
    count, _timeouts = _timeouts, 0
    return count


def _timed_out() -> None:
    global _timeouts
    _timeouts += 1


def compile_user(pattern: str | bytes, what: str) -> UserRegex:
    """`pattern` (re.error if Python's re refuses it) ready to run in bounded time; `what`
    names it in the start-up log when it cannot run on RE2."""
    re.compile(pattern)
    options = re2.Options()
    options.log_errors = False          # RE2 writes its errors to stderr otherwise
    if isinstance(pattern, bytes):
        options.encoding = re2.Options.Encoding.LATIN1   # byte for byte, like a bytes re
    try:
        if _RE2_READS_OTHERWISE.search(pattern.decode("latin-1") if isinstance(pattern, bytes)
                                       else pattern):
            raise re2.error("it reads a{,3} as text, not as 0 to 3 a's")
        return _RE2(pattern, options)
    except re2.error as e:
        why = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        _log.warning("%s: %r cannot run on RE2 (%s); it runs on a backtracking engine "
                     "bounded to %.0f ms a line, and lines over that are counted in "
                     "regex_timeout", what, pattern, why, TIMEOUT * 1000)
    import regex    # only for such patterns: 10-15 ms less at every start of every command
    try:
        return _Bounded(regex.compile(pattern))
    except regex.error as e:     # re took it: a corner where the two differ
        raise re.error(f"{e} (in the bounded engine)") from None


# RE2 takes it, with another meaning than re's: a{,3} is text for RE2, 0 to 3 a's for re
_RE2_READS_OTHERWISE = re.compile(r"\{,")


class _RE2:
    """What plogd does with a user regex: match (a line), found_in (a filter), sub (a rewrite)."""

    def __init__(self, pattern: str | bytes, options):
        self.pattern = pattern
        self._wrapper = re2.compile(pattern, options)      # its sub() knows re's templates
        self._engine = _re2.RE2(pattern if isinstance(pattern, bytes) else pattern.encode(),
                                options)
        # in the order the groups are written, as re gives them (RE2 sorts them by name)
        self.groupindex = dict(sorted(((k.decode() if isinstance(k, bytes) else k, v)
                                       for k, v in self._wrapper.groupindex.items()),
                                      key=lambda item: item[1]))

    def match(self, line: bytes) -> _Match | None:
        """A match at the start of a line (bytes), or None."""
        spans = self._engine.Match(_re2.RE2.Anchor.ANCHOR_START, line, 0, len(line))
        return None if spans[0][0] < 0 else _Match(line, spans, self.groupindex)

    def found_in(self, text: str) -> bool | None:
        """Does it match somewhere in `text`? (None: not known within the bound.)"""
        data = text.encode()
        return self._engine.Match(_re2.RE2.Anchor.UNANCHORED, data, 0, len(data))[0][0] >= 0

    def sub(self, replace: str, text: str) -> str:
        """re.sub's result (\\1, \\g<name> in `replace`)."""
        return self._wrapper.sub(replace, text)


class _Match:
    """The groups of an RE2 match of a line: spans are byte offsets."""
    __slots__ = ("_line", "_spans", "_names")

    def __init__(self, line: bytes, spans, names: dict[str, int]):
        self._line, self._spans, self._names = line, spans, names

    def groups(self) -> tuple:
        line = self._line
        return tuple(None if a < 0 else line[a:b] for a, b in self._spans[1:])

    def group(self, name: str | int):
        a, b = self._spans[self._names[name] if isinstance(name, str) else name]
        return None if a < 0 else self._line[a:b]


class _Bounded:
    """The same calls on the `regex` module (re's syntax and meaning), each bounded."""

    def __init__(self, compiled):
        self._compiled = compiled
        self.pattern = compiled.pattern
        self.groupindex = dict(compiled.groupindex)

    def match(self, line: bytes):
        try:
            return self._compiled.match(line, timeout=TIMEOUT)
        except TimeoutError:
            _timed_out()
            return None

    def found_in(self, text: str) -> bool | None:
        try:
            return self._compiled.search(text, timeout=TIMEOUT) is not None
        except TimeoutError:
            _timed_out()
            return None

    def sub(self, replace: str, text: str) -> str:
        try:
            return self._compiled.sub(replace, text, timeout=TIMEOUT)
        except TimeoutError:
            _timed_out()
            return text


UserRegex = _RE2 | _Bounded
