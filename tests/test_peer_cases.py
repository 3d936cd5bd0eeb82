"""Acceptance: peer projects' parser test cases, run against plogd's formats.

The cases (tests/data/cases/*.jsonl, see its README for sources and licences) come from
apachelogs, lars, VRL, logstash, telegraf, Fluent Bit and nielsbasjes/logparser. Each source
names its formats and fields its own way and has its own '-' conventions, so every source
gets one small explicit mapping below: which of our formats reads its format (a built-in one,
or its own Apache LogFormat / nginx log_format compiled by plogd), how its input becomes a
log line, and how each expected key maps onto our field (with a normalizer turning the
source's convention into ours). Format strings that must be rejected are compiled and must
raise FormatError.

Error-log cases (VRL's and Logstash's) run against the built-in nginx_error and
apache_error formats. Not counted: format-definitions.jsonl (definitions without lines;
test_format_definitions_compile checks the Apache/nginx ones).

A case that fails must be listed in KNOWN_FAILURES with the convention we deliberately
differ on; a listed case that passes fails the run (stale entry). test_report prints the
per-file pass rates.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from collections.abc import Callable
from urllib.parse import parse_qs

import pytest

from plogd.formats import FormatError, LogFormat, compile_apache, compile_nginx, get_format

CASES_DIR = Path(__file__).parent / "data" / "cases"


class Check:
    """An expected value that is compared by a predicate: our field holds the same
    information in another shape (e.g. the query string whole, not split)."""

    def __init__(self, test: Callable[[object], bool], text: str):
        self.test, self.text = test, text

    def __repr__(self):
        return self.text


def _flatten(obj: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- normalizers: the source's expected value -> the value in our convention ---------------

def same(value, rec):
    return value


def dash(value, rec):
    """Sources that keep '-' as a string; ours is None."""
    return None if value == "-" else value


def to_int(value, rec):
    return None if value in (None, "-") else int(value)


def to_float(value, rec):
    return None if value in (None, "-") else float(value)


def nbytes(value, rec):
    """Byte counts: '-' (None or "-" upstream) is 0 for us."""
    return 0 if value in (None, "-") else int(value)


def iso_time(value, rec):
    """An ISO time; one without a zone is local time (the case's TZ), as plogd reads an
    Apache time without %z. A missing time (None) is a missing timestamp."""
    return None if value is None else int(datetime.fromisoformat(value).timestamp())


def utc_naive_time(value, rec):
    """lars converts to naive UTC."""
    return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())


def epoch_ms(value, rec):
    """Milliseconds since the epoch -> our timestamp, whole seconds."""
    return int(value) // 1000


def seconds(per_second: int):
    """A duration in 1/per_second units -> our seconds."""
    return lambda value, rec: None if value is None else int(value) / per_second


def whole_seconds(value, rec):
    """apachelogs' %T (whole seconds) next to a finer time: ours is the finer one."""
    if value is None:
        return None
    return Check(lambda got: got is not None and int(got) == value, f"{value}.x s")


def http_version(value, rec):
    """'1.1' / 1.1 (grok captures the number after 'HTTP/') -> 'HTTP/1.1'."""
    return f"HTTP/{value}"


def _codec(rec: dict) -> str:
    encoding = rec.get("encoding", "utf-8")
    return "utf-8" if "utf-8" in encoding else encoding   # 'locale default (utf-8)'


def apachelogs_str(value, rec):
    """apachelogs decodes the unescaped bytes with the case's `encoding` (latin-1 here); we
    decode UTF-8 and keep invalid bytes as '\\xhh'. Compare the same bytes, decoded our way."""
    if value is None:
        return None
    return value.encode(_codec(rec)).decode("utf-8", "backslashreplace")


_NGINX_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def _decode_nginx(value: str) -> bytes:
    return _NGINX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode())


def nginx_str(value, rec):
    """VRL and logparser keep a quoted nginx '-' and the raw \\xHH escapes; we give None
    and decode the escapes (UTF-8, invalid bytes kept as '\\xhh')."""
    if value in (None, "-"):
        return None
    return _decode_nginx(value).decode("utf-8", "backslashreplace")


def binary_address(value, rec):
    """logparser keeps $binary_remote_addr escaped; ours is the address it holds."""
    return str(ipaddress.ip_address(_decode_nginx(value)))


def grok_qs(value, rec):
    """logstash legacy QS captures keep their quotes."""
    assert value[:1] == value[-1:] == '"', value
    return dash(value[1:-1], rec)


def empty_query(value, rec):
    """lars gives None for an empty %q; ours is the empty text Apache logged."""
    return "" if value is None else value


# --- per-source field maps: expected key (nested keys joined by '.') -> (our field, normalizer)
# Our field may be a tuple of names: the first one the record has (e.g. %h is remote_addr,
# or remote_host when %a is logged too).

_TIMES = ["request_time", "begin_request_time", "end_request_time", "original_request_time",
          "final_request_time", "original_end_request_time"]
APACHELOGS = {
    "remote_host": (("remote_host", "remote_addr"), apachelogs_str),
    "remote_address": ("remote_addr", apachelogs_str),
    "remote_logname": ("ident", apachelogs_str),
    "remote_user": ("remote_user", apachelogs_str),
    **{f"{t}.datetime": ("timestamp", iso_time) for t in _TIMES},
    **{t: ("timestamp", iso_time) for t in _TIMES},     # null: no complete time
    "request_line": ("request", apachelogs_str),
    "request_method": ("method", apachelogs_str),
    "request_uri": ("uri", apachelogs_str),
    "request_query": ("query_string", apachelogs_str),
    "request_protocol": ("protocol", apachelogs_str),
    "request_file": ("request_filename", apachelogs_str),
    "final_status": ("status", same),
    "status": (("original_status", "status"), same),    # %s: the original one next to %>s
    "original_status": ("original_status", same),
    "bytes_sent": ("body_bytes_sent", nbytes),          # apachelogs' bytes_sent is %b
    "bytes_out": ("bytes_sent", nbytes),                # ... and bytes_out is %O
    "virtual_host": ("server_name", apachelogs_str),
    "server_port": ("server_port", same),
    "remote_port": ("remote_port", same),
    "local_address": ("server_addr", apachelogs_str),
    "pid": ("pid", same),
    "tid": ("tid", same),
    "handler": ("handler", apachelogs_str),
    "request_duration_seconds": ("request_time", whole_seconds),
    "original_request_duration_seconds": ("request_time", whole_seconds),
    "final_request_duration_seconds": ("request_time", whole_seconds),
    "request_duration_milliseconds": ("request_time", seconds(1000)),
}
# apachelogs' headers_in.<Header>, with original_/final_ for %<{..}i and %>{..}i
_HEADERS = re.compile(r"(original_|final_)?headers_in\.(.+)")
LARS = {
    "remote_host": ("remote_addr", same),
    "ident": ("ident", same),
    "remote_user": ("remote_user", same),
    "time_utc": ("timestamp", utc_naive_time),
    "method": ("method", same),
    "url": ("path", same),
    "url_stem": ("uri", same),
    "url_query": ("query_string", empty_query),
    "protocol": ("protocol", same),
    "status": ("status", same),
    "size": ("body_bytes_sent", nbytes),
    "bytes_sent": ("bytes_sent", nbytes),
    "local_port": ("server_port", same),
    "remote_port": ("remote_port", same),
    "pid": ("pid", same),
    "req_Referer": ("http_referer", same),
    "req_User_Agent": ("http_user_agent", same),
}
LARS_STRING = {"value": ("http_value", same)}
VRL_APACHE = {   # parse_common_log, parse_apache_log
    "host": ("remote_addr", same),
    "identity": ("ident", same),
    "user": ("remote_user", same),
    "timestamp.$timestamp": ("timestamp", iso_time),
    "message": ("request", same),
    "method": ("method", same),
    "path": ("path", same),
    "protocol": ("protocol", same),
    "status": ("status", same),
    "size": ("body_bytes_sent", nbytes),
    "referrer": ("http_referer", same),
    "agent": ("http_user_agent", same),
}
VRL_NGINX_COMBINED = {
    "client": ("remote_addr", same),
    "user": ("remote_user", same),
    "timestamp.$timestamp": ("timestamp", iso_time),
    "request": ("request", nginx_str),
    "status": ("status", same),
    "size": ("body_bytes_sent", nbytes),
    "referer": ("http_referer", nginx_str),
    "agent": ("http_user_agent", nginx_str),
    "compression": ("gzip_ratio", to_float),
}
VRL_NGINX_MAIN = {
    "remote_addr": ("remote_addr", same),
    "remote_user": ("remote_user", same),
    "timestamp.$timestamp": ("timestamp", iso_time),
    "request": ("request", nginx_str),
    "status": ("status", same),
    "body_bytes_size": ("body_bytes_sent", nbytes),
    "http_referer": ("http_referer", nginx_str),
    "http_user_agent": ("http_user_agent", nginx_str),
    "http_x_forwarded_for": ("http_x_forwarded_for", nginx_str),
}
VRL_INGRESS = {
    **VRL_NGINX_MAIN,
    "request_length": ("request_length", same),
    "request_time": ("request_time", same),
    "proxy_upstream_name": ("proxy_upstream_name", same),
    "proxy_alternative_upstream_name": ("proxy_alternative_upstream_name", same),
    "upstream_addr": ("upstream_addr", dash),
    "upstream_response_length": ("upstream_response_length", same),
    "upstream_response_time": ("upstream_response_time", same),
    "upstream_status": ("upstream_status", same),
    "req_id": ("req_id", same),
}
LOGSTASH = {     # legacy captures (strings, '-' kept, QS quoted) and ECS (typed)
    "clientip": ("remote_addr", same),
    "ident": ("ident", dash),
    "auth": ("remote_user", dash),
    "verb": ("method", same),
    "request": ("path", same),
    "httpversion": ("protocol", http_version),
    "response": ("status", to_int),
    "bytes": ("body_bytes_sent", nbytes),
    "referrer": ("http_referer", grok_qs),
    "agent": ("http_user_agent", grok_qs),
    "source.address": ("remote_addr", same),
    "user.name": ("remote_user", same),
    "http.request.method": ("method", same),
    "url.original": ("path", same),
    "http.version": ("protocol", http_version),
    "http.response.status_code": ("status", same),
    "http.response.body.bytes": ("body_bytes_sent", same),
    "http.request.referrer": ("http_referer", dash),
    "user_agent.original": ("http_user_agent", dash),
}
VRL_NGINX_ERROR = {  # parse_nginx_log(format: "error")
    "timestamp.$timestamp": ("timestamp", iso_time),
    "severity": ("level", same),
    "pid": ("pid", same),
    "tid": ("tid", same),
    "cid": ("connection", same),
    "message": ("message", same),
    "client": ("client", same),
    "server": ("server", same),
    "request": ("request", same),
    "upstream": ("upstream", same),
    "host": ("host", same),
    "referer": ("http_referer", same),
    "excess": ("excess", same),         # limit_req: "limiting requests, excess: 50.416 by
    "zone": ("zone", same),             # zone \"name\"" (the message is what comes before)
}
VRL_APACHE_ERROR = {  # parse_apache_log(format: "error")
    "timestamp.$timestamp": ("timestamp", iso_time),
    "severity": ("level", same),
    "module": ("module", same),
    "pid": ("pid", same),
    "thread": ("tid", to_int),
    "client": ("client", same),
    "port": ("client_port", same),
    # VRL gives a message, or '(113)No route to host: AH00957: ' as message1 and the rest as
    # message2 (ours splits message1 into os_error, os_error_text and ah_code); a tuple of
    # names: neither key is absent-means-dash
    "message": (("message",), same),
    "message1": ("ah_code", lambda value, rec: re.search(r"AH\d{5}", value).group()),
    "message2": (("message",), same),
}
LOGSTASH_ERROR = {   # HTTPD_ERRORLOG, legacy captures (strings)
    "timestamp": ("time_local", same),
    "module": ("module", same),
    "loglevel": ("level", same),
    "pid": ("pid", to_int),
    "tid": ("tid", to_int),
    "proxy_errorcode": ("os_error", to_int),
    "proxy_message": ("os_error_text", same),
    "clientip": ("client", same),
    "clientport": ("client_port", to_int),
    "errorcode": ("ah_code", same),
    # the message after the AH code; ours takes the ", referer: …" Apache appends apart
    "message_tail": ("message", lambda value, rec: value.split(", referer: ")[0]),
}
TELEGRAF = {
    "client_ip": ("remote_addr", same),
    "ident": ("ident", dash),
    "auth": ("remote_user", dash),
    "request": ("path", same),
    "http_version": ("protocol", http_version),
    "resp_bytes": ("body_bytes_sent", same),
    "tags.verb": ("method", same),
    "tags.resp_code": ("status", to_int),
    "referrer": ("http_referer", dash),
    "agent": ("http_user_agent", dash),
    "response_time_us": ("request_time", seconds(10 ** 6)),
}
FLUENTBIT = {    # every capture is a string
    "host": ("remote_addr", same),
    "user": ("remote_user", dash),
    "method": ("method", same),
    "path": ("path", same),
    "code": ("status", to_int),
    "size": ("body_bytes_sent", nbytes),
}


def _basjes_fields(rec: dict) -> dict:
    """logparser: one nginx variable per case, its expected key 'TYPE:path' names the kind of
    value. Our field is the variable, compared in its type (logparser gives strings), except
    for epochs in ms, durations in ms/us, and the protocol and query string it splits."""
    (key, value), = rec["expected"].items()
    kind, path = key.split(":", 1)
    variable = rec["format"].lstrip("$")
    special = {("binary_remote_addr", "IP_BINARY"): binary_address,
               ("binary_remote_addr", "IP"): same,
               ("request_time", "MILLISECONDS"): seconds(1000),
               ("request_time", "MICROSECONDS"): seconds(10 ** 6),
               ("server_protocol", "HTTP.PROTOCOL"): _part_of("/", 0),
               ("server_protocol", "HTTP.PROTOCOL.VERSION"): _part_of("/", 1)}
    if kind == "TIME.EPOCH":
        return {key: ("timestamp", epoch_ms)}
    if (variable, kind) in special:
        return {key: (variable, special[(variable, kind)])}
    if variable == "args" and path.startswith("request.firstline.uri.query."):
        return {key: (variable, _query_parameter(path.rsplit(".", 1)[1]))}
    return {key: (variable, _typed_like(variable))}


def _part_of(separator: str, index: int):
    return lambda value, rec: Check(lambda got: got.split(separator)[index] == value,
                                    f"part {index} of ... == {value!r}")


def _query_parameter(name: str):
    def check(value, rec):
        def holds(got):
            return parse_qs(got, keep_blank_values=True).get(name) == [value]
        return Check(holds, f"{name}={value!r} in the query string")
    return check


def _typed_like(variable: str):
    """A string from logparser -> the type of our field."""
    def normalize(value, rec):
        kind = compile_nginx(f"${variable}").fields[variable]
        if value is None:
            return None
        return {"int": int, "float": float}.get(kind, lambda v: nginx_str(v, rec))(value)
    return normalize


# --- how each source's cases are read: (our formats, field map, line adapter) --------------

@dataclass(frozen=True)
class Use:
    formats: tuple[str, ...]    # built-in names, or 'apache:<LogFormat>' / 'nginx:<log_format>';
    fields: dict                # several: the source's format takes either layout (first wins)
    line: Callable[[str], str] = field(default=lambda line: line)   # input -> a log line
    time_locale: str | None = None    # the locale of the names in Apache %{...}t times
    tz: str | None = None             # the zone the source reads times without an offset in


_COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
_COMMON = '%h %l %u %t "%r" %>s %b'
_VHOST = '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"'
_NGINX_COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status '
                   '$body_bytes_sent "$http_referer" "$http_user_agent"')
_INGRESS = (_NGINX_COMBINED + ' $request_length $request_time [$proxy_upstream_name] '
            '[$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length '
            '$upstream_response_time $upstream_status $req_id')   # ingress-nginx upstreaminfo


def _bracketed(line: str) -> str:
    """apachelogs' parse_apache_timestamp takes a %t value with or without its brackets;
    a line holds it with them."""
    return f"[{line.strip('[]')}]"


def _apache(fmt: str) -> str:
    """Our format for an Apache LogFormat: the built-in one it is, or the compiled string."""
    builtin = {_COMBINED: "apache_combined", _COMMON: "apache_common",
               _VHOST: "apache_vhost_combined"}
    return builtin.get(fmt, f"apache:{fmt}")


def _apachelogs(rec: dict) -> Use:
    headers = {key: _header(key) for key in _flatten(rec["expected"] or {})
               if _HEADERS.fullmatch(key)}
    fields = {**APACHELOGS, **headers}
    if rec["test"].startswith(("test_parse_apache_timestamp", "test_parse_bad_apache_timestamp")):
        return Use((_apache("%t"),), fields, _bracketed)
    return Use((_apache(rec["format"]),), fields, time_locale=_upstream_locale(rec))


def _upstream_locale(rec: dict) -> str | None:
    """The locale upstream runs a case in ("upstream runs this with the de_DE.UTF-8 locale"):
    its logs were written by an httpd in that LC_TIME, which plogd's time_locale names."""
    m = re.search(r"runs this with the (\S+) locale", rec.get("notes", ""))
    return m and m.group(1)


def _header(key: str) -> tuple:
    """apachelogs' [original_|final_]headers_in.User-Agent -> our
    [original_|final_]http_user_agent."""
    prefix, header = _HEADERS.fullmatch(key).groups()
    return (prefix or "") + "http_" + re.sub(r"\W", "_", header.lower()), apachelogs_str


def _lars(rec: dict) -> Use:
    if rec["format"] == "(quoted-field body)":     # lars' parser of a quoted field's inside
        return Use(('apache:"%{Value}i"',), LARS_STRING, lambda line: f'"{line}"')
    return Use((_apache(rec["format"]),), LARS)


def _logparser(rec: dict) -> Use:
    """One variable's value: the only field of a line, in quotes when it holds a space (as a
    log_format writes such a variable)."""
    if " " in rec["line"]:
        return Use((f'nginx:"{rec["format"]}"',), _basjes_fields(rec), lambda line: f'"{line}"')
    return Use((f"nginx:{rec['format']}",), _basjes_fields(rec))


# source -> {the source's name of the format: how to read it}, or a function of the case
SOURCES: dict[str, dict[str, Use] | Callable[[dict], Use]] = {
    "jwodder/apachelogs": _apachelogs,
    "waveform80/lars": _lars,
    "nielsbasjes/logparser": _logparser,
    "vectordotdev/vrl": {
        "parse_common_log:common": Use(("apache_common",), VRL_APACHE),
        "parse_common_log:common:%+": Use(      # timestamp_format '%+': an ISO 8601 time
            ('apache:%h %l %u [%{%Y-%m-%dT%H:%M:%S%z}t] "%r" %>s %b',), VRL_APACHE),
        "parse_apache_log:common": Use(("apache_common",), VRL_APACHE),
        # VRL's combined also takes the Referer and User-Agent unquoted
        "parse_apache_log:combined": Use(
            ("apache_combined", f"apache:{_COMMON} %{{Referer}}i %{{User-Agent}}i"), VRL_APACHE),
        # VRL's nginx combined takes an optional trailing "$gzip_ratio"
        "parse_nginx_log:combined": Use(
            ("nginx_combined", f'nginx:{_NGINX_COMBINED} "$gzip_ratio"'), VRL_NGINX_COMBINED),
        "parse_nginx_log:main": Use(("nginx_main",), VRL_NGINX_MAIN),
        "parse_nginx_log:ingress_upstreaminfo": Use((f"nginx:{_INGRESS}",), VRL_INGRESS),
        # VRL reads the error logs' times (they carry no offset) as UTC in these cases
        "parse_nginx_log:error": Use(("nginx_error",), VRL_NGINX_ERROR, tz="UTC"),
        "parse_apache_log:error": Use(("apache_error",), VRL_APACHE_ERROR, tz="UTC"),
        # timestamp_format: Apache's ErrorLogFormat %{cu}t, which apache_error reads too
        "parse_apache_log:error:%Y-%m-%d %H:%M:%S.%f": Use(("apache_error",), VRL_APACHE_ERROR,
                                                           tz="UTC"),
    },
    "logstash-plugins/logstash-patterns-core": {
        "%{HTTPD_COMBINEDLOG}": Use(("apache_combined",), LOGSTASH),
        "%{HTTPD_ERRORLOG}": Use(("apache_error",), LOGSTASH_ERROR),
    },
    "influxdata/telegraf": {
        "%{COMMON_LOG_FORMAT}": Use(("apache_common",), TELEGRAF),
        "%{COMBINED_LOG_FORMAT}": Use(("apache_combined",), TELEGRAF),
        # InfluxDB's HTTP log: combined, the request id header and the time in microseconds
        "\\[httpd\\] %{COMBINED_LOG_FORMAT} %{UUID:uuid:drop} %{NUMBER:response_time_us:int}":
            Use((f"apache:[httpd] {_COMBINED} %{{Request-Id}}o %D",), TELEGRAF),
    },
    "fluent/fluent-bit": {
        # the apache2 regex makes the '"referer" "agent"' tail optional
        "parser apache2 (conf/parsers.conf)": Use(("apache_combined", "apache_common"), FLUENTBIT),
    },
}

# Expected keys that are deliberately not compared (prefixes of the joined key).
IGNORED = {
    "jwodder/apachelogs": ("directives.",   # the same values again, keyed by directive
                           # a time's parts (year, mon, ..., epoch): we give the time whole
                           *(f"{t}_fields." for t in _TIMES)),
}

# Sources where a field that was '-' (or empty, for VRL) is left out of the expected record
# (so every mapped key missing from `expected` must be '-' for us: None, or 0 for byte counts).
ABSENT_MEANS_DASH = {"vectordotdev/vrl": (None, "")}
_DASH = {"body_bytes_sent": 0, "bytes_sent": 0}

# (file, case id) -> the convention we deliberately differ on.
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("lars.jsonl", "test_string_parse@L23"):
        "a quoted field ending in a lone backslash: Apache escapes \\ as \\\\, so in a line "
        "this would escape the closing quote; lars parses the field's inside on its own",
    ("logstash-httpd.jsonl", "HTTPD_ERRORLOG a debug message (legacy matches imperfectly)"):
        "Logstash's legacy pattern takes the source file of a debug line (mod_authz_core.c(820))"
        " for the AH code and leaves '[client …] AH01626:' in the message; apache_error gives "
        "source, client and ah_code AH01626 apart",
    ("apachelogs.jsonl", "test_parse#5"):
        "apachelogs keeps %<s and %s apart; in Apache both are the original request's "
        "status (the same value), so plogd makes them one field, original_status (the first)",
}


# --- loading -------------------------------------------------------------------------------

def _format_key(rec: dict) -> str:
    if rec["source"] == "vectordotdev/vrl":
        key = f'{rec["function"]}:{rec["format"]}'
        return f'{key}:{rec["timestamp_format"]}' if "timestamp_format" in rec else key
    return rec.get("format") or ""


def _case_id(rec: dict) -> str:
    if "function" in rec:
        return f'{rec["function"]}:{rec["case"]}'
    if "case" in rec:
        return rec["case"]
    if "test" in rec:
        return f'{rec["test"]}#{rec["index"]}'
    return rec.get("name", "?")


def _kind(rec: dict) -> str:
    """'definition', 'error log', 'bad format' (must be rejected) or 'line'."""
    if "definition" in rec:
        return "definition"
    if rec.get("format") == "error" or "ERRORLOG" in rec.get("format", ""):
        return "error log"
    if rec.get("line") is None:
        return "bad format"
    return "line"


def _use(rec: dict) -> Use | None:
    how = SOURCES.get(rec.get("source"))
    return how(rec) if callable(how) else (how or {}).get(_format_key(rec))


def _applicable(rec: dict) -> bool:
    return _kind(rec) == "bad format" or (_kind(rec) in ("line", "error log")
                                          and _use(rec) is not None)


def _load() -> dict[str, list[tuple[str, dict]]]:
    files = {}
    for path in sorted(CASES_DIR.glob("*.jsonl")):
        cases, seen = [], set()
        with path.open(encoding="utf-8") as f:
            for lineno, text in enumerate(f, 1):
                if not text.strip():
                    continue
                rec = json.loads(text)
                cid = _case_id(rec)
                if cid in seen:
                    cid = f"{cid}@L{lineno}"
                seen.add(cid)
                cases.append((cid, rec))
        files[path.name] = cases
    return files


CASES = _load()
APPLICABLE = [(name, cid, rec) for name, cases in CASES.items()
              for cid, rec in cases if _applicable(rec)]


# --- checking ------------------------------------------------------------------------------

@contextmanager
def _environment(rec: dict, use: Use | None):
    """The case's TZ (apachelogs' times without a zone are local times), or the one its
    source reads such times in."""
    tz = rec.get("env", {}).get("TZ") or (use and use.tz)
    saved = os.environ.get("TZ")
    if tz is not None:
        os.environ["TZ"] = tz
        time.tzset()
    try:
        yield
    finally:
        if tz is not None:
            if saved is None:
                os.environ.pop("TZ")
            else:
                os.environ["TZ"] = saved
            time.tzset()


def _format(ref: str, time_locale: str | None = None) -> LogFormat:
    kind, _, text = ref.partition(":")
    if kind == "apache":
        return compile_apache(text, time_locale=time_locale)
    assert time_locale is None, "time_locale goes with Apache formats only"
    return compile_nginx(text) if kind == "nginx" else get_format(ref)


def _parse(formats: tuple[str, ...], line: bytes, time_locale: str | None = None):
    for ref in formats:
        rec = _format(ref, time_locale).parse(line)
        if rec is not None:
            return ref, rec
    return None, None


def _problems(rec: dict) -> list[str]:
    """What differs between plogd and the case (empty: the case passes)."""
    if _kind(rec) == "bad format":
        try:
            compile_apache(rec["format"])
        except FormatError:
            return []
        return ["the format was accepted"]
    use = _use(rec)
    with _environment(rec, use):
        return _line_problems(rec, use)


def _line_problems(rec: dict, use: Use) -> list[str]:
    line = use.line(rec["line"]).encode(_codec(rec))
    try:
        used, got = _parse(use.formats, line, use.time_locale)
    except FormatError as e:
        return [f"the format was rejected: {e}"]
    if rec.get("expect_error") or rec["expected"] is None:
        return [] if got is None else [f"expected a parse failure, {used} gave {got}"]
    if got is None:
        return [f"{' / '.join(use.formats)} did not parse the line"]
    source = rec["source"]
    expected = _flatten({**rec["expected"], **rec.get("expected_ecs", {})})
    problems = []
    for key, value in expected.items():
        if key.startswith(IGNORED.get(source, ())):
            continue
        if key not in use.fields:
            problems.append(f"no mapping for expected key {key!r}")
            continue
        names, normalize = use.fields[key]
        ours = next((n for n in (names if isinstance(names, tuple) else (names,)) if n in got),
                    names if isinstance(names, str) else names[-1])
        want = normalize(value, rec)
        have = got.get(ours)
        if ours not in got and want is not None:
            problems.append(f"{key} -> {ours}: expected {want!r}, the format has no {ours}")
        elif not (want.test(have) if isinstance(want, Check) else have == want):
            problems.append(f"{key} -> {ours}: expected {want!r}, got {have!r}")
    absent = list(rec.get("absent", [])) + list(rec.get("absent_ecs", []))
    dashes = ABSENT_MEANS_DASH.get(source, (None,))
    if source in ABSENT_MEANS_DASH:
        absent += [k for k in use.fields if k not in expected]
    for key, (ours, _) in use.fields.items():
        if isinstance(ours, str) and ours in got and \
                any(key == a or key.startswith(a + ".") for a in absent):
            if got[ours] not in dashes + (_DASH.get(ours),):
                problems.append(f"{key} absent (i.e. '-') -> {ours}: got {got[ours]!r}")
    return problems


_results: dict[tuple[str, str], list[str]] = {}


def _result(name: str, cid: str, rec: dict) -> list[str]:
    if (name, cid) not in _results:
        _results[(name, cid)] = _problems(rec)
    return _results[(name, cid)]


def _test_id(name: str, cid: str) -> str:
    return re.sub(r"[^\w.:#@+-]+", "_", f"{name.removesuffix('.jsonl')}:{cid}")


@pytest.mark.parametrize("name,cid,rec", APPLICABLE,
                         ids=[_test_id(n, c) for n, c, _ in APPLICABLE])
def test_peer_case(name, cid, rec):
    problems = _result(name, cid, rec)
    known = KNOWN_FAILURES.get((name, cid))
    if known is not None:
        if not problems:
            pytest.fail(f"stale KNOWN_FAILURES entry ({name}, {cid}): the case passes now")
        pytest.xfail(f"{known} | {'; '.join(problems)}")
    assert not problems, f"{rec.get('line', rec['format'])!r}\n  " + "\n  ".join(problems)


def test_format_definitions_compile():
    """The Apache and nginx definitions of format-definitions.jsonl compile to our built-in
    formats' fields."""
    builtins = {"common": "apache_common", "combined": "apache_combined",
                "vhost_combined": "apache_vhost_combined"}
    for _, rec in CASES["format-definitions.jsonl"]:
        if rec["syntax"] == "apache LogFormat":
            for nickname, fmt in rec["definition"].items():
                compiled = compile_apache(fmt)
                assert compiled.fields == get_format(builtins[nickname]).fields, nickname
        elif rec["syntax"] == "nginx log_format":
            assert compile_nginx(rec["definition"]).fields == get_format("nginx_combined").fields


def test_report(capsys):
    """Per-file pass rates; every KNOWN_FAILURES entry must name an applicable case."""
    lines = []
    for name, cases in CASES.items():
        kinds = [_kind(rec) for _, rec in cases]
        applicable = [(cid, rec) for cid, rec in cases if _applicable(rec)]
        passed = sum(not _result(name, cid, rec) for cid, rec in applicable)
        must_fail = [(cid, rec) for cid, rec in applicable
                     if _kind(rec) == "bad format" or rec.get("expect_error")]
        rejected = sum(not _result(name, cid, rec) for cid, rec in must_fail)
        n = len(applicable)
        known = sum((name, cid) in KNOWN_FAILURES for cid, _ in applicable)
        notes = [f"{100 * passed / n:.1f}%" if n else "n/a"]
        if must_fail:
            notes.append(f"must fail: {rejected}/{len(must_fail)} rejected")
        if known:
            notes.append(f"{known} known failures")
        if kinds.count("definition"):
            notes.append(f"{kinds.count('definition')} definitions without lines")
        other = len(cases) - n - kinds.count("definition")
        if other:
            notes.append(f"{other} not applicable")
        lines.append(f"{name}: {passed}/{n} cases pass ({', '.join(notes)})")
    report = "peer cases against plogd's formats:\n  " + "\n  ".join(lines)
    print(report)
    with capsys.disabled():
        print("\n" + report)
    ids = {(name, cid) for name, cid, _ in APPLICABLE}
    dangling = [key for key in KNOWN_FAILURES if key not in ids]
    assert not dangling, f"KNOWN_FAILURES entries naming no applicable case: {dangling}"
    assert all(reason.strip() for reason in KNOWN_FAILURES.values())
