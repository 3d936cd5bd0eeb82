"""Log formats: the built-in nginx and Apache ones by name, an nginx log_format or Apache
LogFormat string (compile_nginx, compile_apache), or any regex with named groups.
detect.py tells which built-in format a log is in and where a line stops matching."""
from __future__ import annotations

from .logformat import BatchExtractor, Columns, FormatError, LogFormat, describe_fields

# nginx log_format strings; the Apache formats are written with the same variable names
# (%h -> $remote_addr, %l -> $ident, %u -> $remote_user, %t -> [$time_local], %r -> $request,
# %>s -> $status, %b -> $body_bytes_sent, %O -> $bytes_sent, %v -> $server_name,
# %p -> $server_port).
_COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
             '"$http_referer" "$http_user_agent"')
_APACHE_COMMON = ('$remote_addr $ident $remote_user [$time_local] "$request" $status '
                  '$body_bytes_sent')

BUILTIN_TEMPLATES = {
    "nginx_combined": _COMBINED,
    "nginx_main": _COMBINED + ' "$http_x_forwarded_for"',
    "nginx_timed": _COMBINED + " $request_time $upstream_response_time",
    "apache_common": _APACHE_COMMON,
    "apache_combined": _APACHE_COMMON + ' "$http_referer" "$http_user_agent"',
    "apache_vhost_combined": '$server_name:$server_port $remote_addr $ident $remote_user '
                             '[$time_local] "$request" $status $bytes_sent '
                             '"$http_referer" "$http_user_agent"',
}

# Apache writes a bare '-' for a %t whose condition did not hold (%!200t: no brackets), and
# log tools (VRL) read lines whose [time] and "request" are bare dashes ("- - - - - - -",
# "- - - [-] \"-\" - -") as records with those fields absent: so do the Apache formats; a
# line without a time counts in odd_time, in no window. Not the nginx ones: nginx always
# writes $time_local and the quotes of its log_format, so an nginx line of dashes is garbage.
APACHE_DASHED = frozenset({"time_local", "request"})

# the error logs: a fixed head and free text, no template (errorlog.py)
ERROR_FORMATS = ("nginx_error", "apache_error")
# JSON access logs (jsonlog.py); `format: json` with `fields:` maps any other
JSON_PRESETS = ("caddy_json", "traefik_json", "nginx_json")
BUILTIN_FORMATS = (*BUILTIN_TEMPLATES, *ERROR_FORMATS, *JSON_PRESETS)
# an error log's line that does not start as its entries do continues the entry before
# (a PHP stack trace passed on from FastCGI's stderr): the inputs' default `continuation:`
DEFAULT_CONTINUATION = {"nginx_error": r"(?!\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[)",
                        "apache_error": r"(?!\[)"}

_compiled: dict[str, LogFormat] = {}


def get_format(name: str) -> LogFormat:
    """A built-in format by name, or 'regex:<pattern>'. Raises FormatError."""
    if name.startswith("regex:"):
        return LogFormat.from_regex(name, name[len("regex:"):])
    if name not in BUILTIN_FORMATS:
        raise FormatError(f"unknown format {name!r}")
    if name in ERROR_FORMATS and name not in _compiled:
        from .errorlog import error_format
        _compiled[name] = error_format(name)
    if name in JSON_PRESETS and name not in _compiled:
        from .jsonlog import preset
        _compiled[name] = preset(name)
    if name not in _compiled:
        dashed = APACHE_DASHED if name.startswith("apache_") else frozenset()
        _compiled[name] = LogFormat.from_template(name, BUILTIN_TEMPLATES[name], dashed)
    return _compiled[name]


def __getattr__(name: str):
    """compile_nginx and compile_apache, imported when first asked for: the built-in formats
    need neither (a lighter start for every plogd command)."""
    if name == "compile_nginx":
        from .nginx import compile_nginx
        return compile_nginx
    if name == "compile_apache":
        from .apache import compile_apache
        return compile_apache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BUILTIN_FORMATS", "BUILTIN_TEMPLATES", "DEFAULT_CONTINUATION", "ERROR_FORMATS",
           "JSON_PRESETS", "BatchExtractor", "Columns", "FormatError", "LogFormat",
           "compile_apache", "compile_nginx", "describe_fields", "get_format"]
