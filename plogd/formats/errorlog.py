"""The built-in error-log formats: nginx_error and apache_error (httpd 2.2 and 2.4).

Error logs have no template: a fixed head (time, level, process) and a free-text message,
which nginx follows with ', client: …, server: …, request: "…", upstream: "…", host: "…"'
(ngx_http_log_error_handler writes them in this order, each when known) and Apache 2.4 precedes
with its ErrorLogFormat parts ('[pid P:tid T] file.c(N): (errno)text: [client A:P] AHnnnnn: ').
So each is a regex (the authority, no split path) with typed fields, and `message_kind`: the
message with its variable parts (quoted text, paths, numbers) made constant, to count by.
Both servers write their local time without an offset: the times are read in this machine's
zone (plogd runs where the log is written).
"""
from __future__ import annotations

import re
from functools import lru_cache

from . import fields as f
from .fields import Derived, FieldType
from .logformat import LogFormat
from .strftime import AnyOfLayouts, TimeLayout

_TEXT = FieldType("string", rb".*", f.to_str, False)
_NAMES = {"level": _TEXT, "module": _TEXT, "message": _TEXT, "client": _TEXT, "server": _TEXT,
          "request": _TEXT, "upstream": _TEXT, "host": _TEXT, "http_referer": _TEXT,
          "ah_code": _TEXT, "source": _TEXT, "os_error_text": _TEXT, "zone": _TEXT,
          "pid": f.INT, "tid": f.INT, "connection": f.INT, "client_port": f.INT,
          "os_error": f.INT, "excess": f.FLOAT}

NGINX_ERROR = (
    rb"(?P<time_local>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>[a-z]+)\] "
    rb"(?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection>\d+) )?(?P<message>.*?)"
    rb'(?:,? excess: (?P<excess>\d+(?:\.\d+)?),? by zone "(?P<zone>[^"]*)")?'   # limit_req
    rb"(?:, client: (?P<client>[^,]*))?(?:, server: (?P<server>[^,]*))?"
    rb'(?:, subrequest: "[^"]*")?(?:, request: "(?P<request>(?:[^"\\]|\\.)*)")?'
    rb'(?:, upstream: "(?P<upstream>[^"]*)")?(?:, host: "(?P<host>[^"]*)")?'
    rb'(?:, referrer: "(?P<http_referer>[^"]*)")?\r?\Z')

APACHE_ERROR = (
    rb"\[(?P<time_local>[^]]+)\] \[(?:(?P<module>[^]:]+)?:)?(?P<level>[a-z]+\d?)\]"
    rb"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?"          # 2.4
    rb"(?: (?P<source>[\w.-]+\(\d+\)):)?"                        # file.c(123): at debug
    rb"(?: \((?P<os_error>\d+)\)(?P<os_error_text>[^:]*):)?"     # (111)Connection refused:
    rb"(?: \[client (?P<client>[^]]*?)(?::(?P<client_port>\d+))?\])?"
    rb" (?:(?P<ah_code>AH\d{5}): )?(?P<message>.*?)(?:, referer: (?P<http_referer>.*))?\r?\Z")

# how Apache writes the time of its error log: 2.4 (with microseconds), 2.2, and the
# ErrorLogFormat %{cu}t / %{c}t; VRL's tests also read the access log's time there
_APACHE_TIMES = ("%a %b %d %H:%M:%S.%f %Y", "%a %b %d %H:%M:%S %Y", "%Y-%m-%d %H:%M:%S.%f",
                 "%Y-%m-%d %H:%M:%S", "clf")

_QUOTED = re.compile(r'"[^"]*"')
_PATH_OR_URL = re.compile(r"(?<![\w.])(?:\w+://|/)[^\s,;()\"']*")
_NUMBER = re.compile(r"\d+")
KIND_LENGTH = 80


@lru_cache(maxsize=4096)
def message_kind(message: str | None) -> str | None:
    """'open() "/x/y" failed (2: No such file or directory)' -> 'open() "…" failed (N: No
    such file or directory)': what is left when the request-specific parts go."""
    if message is None:
        return None
    kind = _QUOTED.sub('"…"', message)
    kind = _PATH_OR_URL.sub("…", kind)
    return _NUMBER.sub("N", kind)[:KIND_LENGTH]


# an entry's line that does not start as entries do continues the entry before (a PHP stack
# trace passed on from FastCGI's stderr): the inputs' default `continuation:`
_CONTINUATION = {"nginx_error": r"(?!\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[)",
                 "apache_error": r"(?!\[)"}


def _error_format(name: str, regex: bytes, time: TimeLayout) -> LogFormat:
    compiled = re.compile(regex, re.S)
    types = {g: time.field_type() if g == "time_local" else _NAMES[g]
             for g in compiled.groupindex}
    derived = {"timestamp": time.timestamp("time_local"),
               "message_kind": Derived(("message",), message_kind, "string")}
    origins = {g: f"(?P<{g}>…)" for g in types}
    fmt = LogFormat(name, compiled, types, derived=derived, origins=origins)
    fmt.continuation = _CONTINUATION[name]
    return fmt


def error_format(name: str) -> LogFormat:
    if name == "nginx_error":
        return _error_format(name, NGINX_ERROR, TimeLayout("%Y/%m/%d %H:%M:%S"))
    return _error_format(name, APACHE_ERROR, AnyOfLayouts(_APACHE_TIMES))
