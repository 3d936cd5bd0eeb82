"""The registry of outputs and formats: Python entry points, read once per process.

plogd's own outputs and formats register exactly as a third party's do (pyproject.toml,
`[options.entry_points]`), so the rest of plogd looks names up here, never in if-chains:

    [project.entry-points."plogd.formats"]
    haproxy_http = "plogd_haproxy:haproxy_http"      # a callable () -> LogFormat

    [project.entry-points."plogd.outputs"]
    stdout = "plogd_stdout:Stdout"                   # an Output subclass, type = "stdout"

A plugin that cannot be used (its module fails to import, the object is not what the
group takes, its name is taken by a built-in or by another plugin) is left out and logged
once, naming its distribution and entry point, without a traceback: plogd runs with the
others, and `plogd plugins` lists it with its error. A built-in is an entry point of the
distribution `plogd` itself; a built-in's name is never given to a plugin.

Metric types are not a group: a metric type is folded on the hot path, merged across
parsers, checkpointed and typed for Zabbix, four places that plogd.metrics owns together.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .formats.logformat import LogFormat

_log = logging.getLogger("plogd")

OUTPUTS = "plogd.outputs"
FORMATS = "plogd.formats"
GROUPS = (OUTPUTS, FORMATS)
BUILTIN_DISTRIBUTION = "plogd"

# format names the config gives another meaning (`format: json` with `fields:`,
# `format: regex:...`); names are words, as the config writes them
_RESERVED = {FORMATS: {"json", "regex"}, OUTPUTS: set()}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class Entry:
    """One entry point of a group, usable (`loaded`) or not (`error`)."""
    group: str
    name: str
    target: str            # module:object
    distribution: str
    version: str
    builtin: bool
    loaded: Any = None
    error: str | None = None

    def describe(self) -> str:
        """How a user finds it: 'haproxy_http (plogd.formats, plogd-haproxy 0.1.0)'."""
        return f"{self.name} ({self.group}, {self.distribution} {self.version})"


def _is_output_class(obj: object) -> bool:
    # Output is recognised by name, not imported: the formats use this registry too, and
    # the core (formats included) imports nothing from plogd.outputs
    return isinstance(obj, type) and any(
        (c.__module__, c.__qualname__) == ("plogd.outputs.base", "Output") for c in obj.__mro__)


def _is_output(obj: Any, name: str) -> str | None:
    if not _is_output_class(obj):
        return f"{obj!r} is not a subclass of plogd.outputs.base.Output"
    if obj.type != name:
        return f"its class says type {obj.type!r}, its entry point {name!r}"
    return None


def _is_format_factory(obj: Any, name: str) -> str | None:
    if not callable(obj):
        return f"{obj!r} is not callable; a plogd.formats entry point names a function " \
               f"() -> LogFormat"
    return None


_CHECKS: dict[str, Callable[[Any, str], str | None]] = {OUTPUTS: _is_output,
                                                    FORMATS: _is_format_factory}


def _load(group: str, point: EntryPoint) -> Entry:
    dist = point.dist
    name = dist.metadata["Name"] if dist is not None else "?"
    builtin = name == BUILTIN_DISTRIBUTION
    entry = Entry(group, point.name, point.value, name,
                  dist.version if dist is not None else "?", builtin)
    reserved = _RESERVED[group]
    if not _NAME.match(point.name) or point.name in reserved:
        return _broken(entry, f"the name {point.name!r} is not allowed: a name is a word of "
                       "letters, digits, '_' and '-'"
                       + (f", other than {', '.join(sorted(reserved))}" if reserved else ""))
    try:
        obj = point.load()
    except Exception as e:            # whatever a plugin's import raises: plogd goes on
        return _broken(entry, f"cannot be loaded: {type(e).__name__}: {e}")
    wrong = _CHECKS[group](obj, point.name)
    if wrong is not None:
        return _broken(entry, wrong)
    return Entry(**{**entry.__dict__, "loaded": obj})


def _broken(entry: Entry, error: str) -> Entry:
    return Entry(**{**entry.__dict__, "error": error})


@cache
def entries(group: str) -> tuple[Entry, ...]:
    """Every entry point of the group, built-ins first, the unusable ones with their error
    (logged here, once per process). A plugin under a built-in's name is refused; two
    plugins under one name are both refused (which one to take would be a guess)."""
    found = sorted((_load(group, point) for point in entry_points(group=group)),
                   key=lambda e: not e.builtin)
    builtins = {e.name for e in found if e.builtin}
    plugins: dict[str, list[Entry]] = {}
    for e in found:
        if not e.builtin and e.error is None:
            plugins.setdefault(e.name, []).append(e)
    checked = []
    for entry in found:
        if entry.error is None and not entry.builtin:
            if entry.name in builtins:
                entry = _broken(entry, f"the name {entry.name!r} is a built-in's; refused: "
                                "the plugin must register under another name")
            elif len(plugins[entry.name]) > 1:
                others = ", ".join(o.describe() for o in plugins[entry.name] if o is not entry)
                entry = _broken(entry, f"the name {entry.name!r} is also {others}'s; both "
                                "refused: one of them must register under another name")
        if entry.error is not None:
            kind = "built-in" if entry.builtin else "plugin"
            _log.warning("plogd: the %s %s is not used: %s", kind, entry.describe(), entry.error)
        checked.append(entry)
    return tuple(checked)


def _usable(group: str) -> dict[str, Any]:
    return {e.name: e.loaded for e in entries(group) if e.error is None}


def output_types() -> dict[str, Any]:
    """type name -> Output subclass, for every usable output."""
    return _usable(OUTPUTS)


def format_types() -> dict[str, Callable[[], LogFormat]]:
    """format name -> its factory () -> LogFormat, for every usable format (the built-ins
    first, in the order pyproject.toml lists them). plogd.formats.get_format calls each at most
    once per process and checks what it returns."""
    return _usable(FORMATS)


def entry_of(group: str, name: str) -> Entry | None:
    """The usable entry of that name (for messages naming its distribution)."""
    return next((e for e in entries(group) if e.name == name and e.error is None), None)


def checked() -> list[Entry]:
    """Every entry point of every group, as `entries` has them, and a format whose factory
    fails (run here; plogd runs it only when a config names the format) with its error."""
    from .formats import FormatError, get_format
    found = []
    for group in GROUPS:
        for e in entries(group):
            if group == FORMATS and e.error is None:
                try:
                    get_format(e.name)
                except FormatError as error:
                    e = _broken(e, str(error))
            found.append(e)
    return found


def listing() -> tuple[str, bool]:
    """What `plogd plugins` prints: per group, each entry point with its module:object, its
    distribution and version, built-in or plugin, and the error of an unusable one; and
    whether every entry is usable."""
    everything = checked()
    lines = []
    for group in GROUPS:
        found = [e for e in everything if e.group == group]
        lines.append(f"{group}:" if found else f"{group}: none installed")
        width = max((len(e.name) for e in found), default=0)
        for e in found:
            kind = "built-in" if e.builtin else "plugin"
            lines.append(f"  {e.name:<{width}}  {e.target}  ({e.distribution} {e.version}, "
                         f"{kind})")
            if e.error is not None:
                lines.append(f"  {'':<{width}}  NOT USED: {e.error}")
    return "\n".join(lines) + "\n", all(e.error is None for e in everything)


def as_json() -> list[dict]:
    """The same for scripts: one object per entry point."""
    return [{"group": e.group, "name": e.name, "target": e.target,
             "distribution": e.distribution, "version": e.version, "builtin": e.builtin,
             "error": e.error} for e in checked()]
