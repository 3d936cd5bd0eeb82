"""Log formats: by name (the built-in nginx, Apache, error and JSON ones, builtin.py, and
any plugin's: the `plogd.formats` entry points), an nginx log_format or Apache LogFormat
string (compile_nginx, compile_apache), or any regex with named groups.
detect.py tells which named format a log is in and where a line stops matching.

What a plugin's format uses: LogFormat (from_regex with `types=` and a TimeLayout, or
from_template), FieldType and duration_type for its fields' types, FormatError."""
from __future__ import annotations

from ..plugins import FORMATS, entry_of, format_types
from .builtin import BUILTIN_TEMPLATES
from .fields import FieldType, duration_type
from .logformat import BatchExtractor, Columns, FormatError, LogFormat, describe_fields

# the built-in error logs, for their default metric sets (plogd.defaults)
ERROR_FORMATS = ("nginx_error", "apache_error")

_compiled: dict[str, LogFormat] = {}


def format_names() -> list[str]:
    """Every usable format's name, the built-ins first (plogd.plugins)."""
    return list(format_types())


def get_format(name: str) -> LogFormat:
    """A format by its name in the `plogd.formats` entry points (a built-in's or a plugin's),
    or 'regex:<pattern>'. Each named format is made once per process. Raises FormatError."""
    if name.startswith("regex:"):
        return LogFormat.from_regex(name, name[len("regex:"):])
    if name not in _compiled:
        factory = format_types().get(name)
        if factory is None:
            raise FormatError(f"unknown format {name!r}")
        try:
            fmt = factory()
        except Exception as e:        # a plugin's bug: named, never a traceback
            raise FormatError(f"the format {_whose(name)} failed: {type(e).__name__}: {e}") \
                from None
        if not isinstance(fmt, LogFormat):
            raise FormatError(f"the format {_whose(name)} gave {fmt!r}, not a "
                              "plogd.formats.LogFormat")
        _compiled[name] = fmt
    return _compiled[name]


def _whose(name: str) -> str:
    entry = entry_of(FORMATS, name)
    return entry.describe() if entry else repr(name)


def __getattr__(name: str):
    """compile_nginx, compile_apache and TimeLayout, imported when first asked for: the
    built-in formats need none of them (a lighter start for every plogd command)."""
    if name == "compile_nginx":
        from .nginx import compile_nginx
        return compile_nginx
    if name == "compile_apache":
        from .apache import compile_apache
        return compile_apache
    if name == "TimeLayout":
        from .strftime import TimeLayout
        return TimeLayout
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BUILTIN_TEMPLATES", "ERROR_FORMATS", "BatchExtractor", "Columns", "FieldType",
           "FormatError", "LogFormat", "TimeLayout", "compile_apache", "compile_nginx",
           "describe_fields", "duration_type", "format_names", "get_format"]
