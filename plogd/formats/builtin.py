"""The built-in formats: one factory () -> LogFormat each, registered under its name in the
`plogd.formats` entry points (pyproject.toml), as a plugin's formats are. get_format calls a
factory once per process, when a config or a command first names its format."""
from __future__ import annotations

from collections.abc import Callable

from .logformat import LogFormat

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


def _template(name: str, dashed: frozenset[str] = frozenset()) -> Callable[[], LogFormat]:
    def build() -> LogFormat:
        return LogFormat.from_template(name, BUILTIN_TEMPLATES[name], dashed)
    build.__name__ = build.__qualname__ = name
    return build


nginx_combined = _template("nginx_combined")
nginx_main = _template("nginx_main")
nginx_timed = _template("nginx_timed")
apache_common = _template("apache_common", APACHE_DASHED)
apache_combined = _template("apache_combined", APACHE_DASHED)
apache_vhost_combined = _template("apache_vhost_combined", APACHE_DASHED)


# the error logs: a fixed head and free text, no template (errorlog.py)
def nginx_error() -> LogFormat:
    from .errorlog import error_format
    return error_format("nginx_error")


def apache_error() -> LogFormat:
    from .errorlog import error_format
    return error_format("apache_error")


# JSON access logs (jsonlog.py); `format: json` with `fields:` maps any other
def caddy_json() -> LogFormat:
    from .jsonlog import preset
    return preset("caddy_json")


def traefik_json() -> LogFormat:
    from .jsonlog import preset
    return preset("traefik_json")


def nginx_json() -> LogFormat:
    from .jsonlog import preset
    return preset("nginx_json")
