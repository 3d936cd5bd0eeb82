"""Log formats: the built-in nginx and Apache ones by name, or any regex with named groups."""
from __future__ import annotations

from .logformat import BatchExtractor, Columns, FormatError, LogFormat

# nginx log_format strings; the Apache formats are written with the same variable names
# (%h -> $remote_addr, %l -> $ident, %u -> $remote_user, %t -> [$time_local], %r -> $request,
# %>s -> $status, %b -> $body_bytes_sent, %O -> $bytes_sent, %v -> $server_name, %p -> $server_port).
_COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
             '"$http_referer" "$http_user_agent"')
_APACHE_COMMON = '$remote_addr $ident $remote_user [$time_local] "$request" $status $body_bytes_sent'

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

_compiled: dict[str, LogFormat] = {}


def get_format(name: str) -> LogFormat:
    """A built-in format by name, or 'regex:<pattern>'. Raises FormatError."""
    if name.startswith("regex:"):
        return LogFormat.from_regex(name, name[len("regex:"):])
    if name not in BUILTIN_TEMPLATES:
        raise FormatError(f"unknown format {name!r}")
    if name not in _compiled:
        _compiled[name] = LogFormat.from_template(name, BUILTIN_TEMPLATES[name])
    return _compiled[name]


__all__ = ["BUILTIN_TEMPLATES", "BatchExtractor", "Columns", "FormatError", "LogFormat", "get_format"]
