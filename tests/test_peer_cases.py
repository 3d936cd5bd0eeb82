"""Acceptance: peer projects' parser test cases, run against plogd's BUILT-IN formats.

The cases (tests/data/cases/*.jsonl, see its README for sources and licences) come from
apachelogs, lars, VRL, logstash, telegraf, Fluent Bit and others. Each source names its
formats and fields its own way and has its own '-' conventions, so every source gets one
small explicit table below: which of its formats is which built-in format of ours, and how
each expected key maps onto our field (with a normalizer turning the source's convention
into ours). Cases whose format is not a built-in one (custom LogFormat strings, bare %t,
error logs, single nginx variables, format definitions) are counted as not applicable.

A case that fails must be listed in KNOWN_FAILURES with the convention we deliberately
differ on; a listed case that passes fails the run (stale entry). test_report prints the
per-file pass rates.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from plogd.formats import get_format

CASES_DIR = Path(__file__).parent / "data" / "cases"


# --- normalizers: the source's expected value -> the value in our convention ---------------

def same(value, rec):
    return value


def dash(value, rec):
    """Sources that keep '-' as a string; ours is None."""
    return None if value == "-" else value


def to_int(value, rec):
    return None if value in (None, "-") else int(value)


def nbytes(value, rec):
    """Byte counts: '-' (None or "-" upstream) is 0 for us."""
    return 0 if value in (None, "-") else int(value)


def aware_time(value, rec):
    dt = datetime.fromisoformat(value)
    assert dt.tzinfo is not None, f"naive expected time {value!r}"
    return int(dt.timestamp())


def utc_naive_time(value, rec):
    """lars converts to naive UTC."""
    return int(datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp())


def http_version(value, rec):
    """'1.1' / 1.1 (grok captures the number after 'HTTP/') -> 'HTTP/1.1'."""
    return f"HTTP/{value}"


def apachelogs_str(value, rec):
    """apachelogs decodes the unescaped bytes with the case's `encoding` (latin-1 here); we
    decode UTF-8 and keep invalid bytes as '\\xhh'. Compare the same bytes, decoded our way."""
    if value is None:
        return None
    return value.encode(rec["encoding"]).decode("utf-8", "backslashreplace")


_NGINX_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def vrl_nginx_str(value, rec):
    """VRL keeps a quoted nginx '-' and the raw \\xHH escapes; we give None and decode the
    escapes (UTF-8, invalid bytes kept as '\\xhh')."""
    if value == "-":
        return None
    raw = _NGINX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode())
    return raw.decode("utf-8", "backslashreplace")


def grok_qs(value, rec):
    """logstash legacy QS captures keep their quotes."""
    assert value[:1] == value[-1:] == '"', value
    return dash(value[1:-1], rec)


# --- per-source field maps: expected key (nested keys joined by '.') -> (our field, normalizer)

APACHELOGS = {
    "remote_host": ("remote_addr", apachelogs_str),
    "remote_logname": ("ident", apachelogs_str),
    "remote_user": ("remote_user", apachelogs_str),
    "request_time.datetime": ("timestamp", aware_time),
    "request_time_fields.timestamp.datetime": ("timestamp", aware_time),
    "request_line": ("request", apachelogs_str),
    "final_status": ("status", same),
    "bytes_sent": ("body_bytes_sent", nbytes),          # apachelogs' bytes_sent is %b
    "bytes_out": ("bytes_sent", nbytes),                # ... and bytes_out is %O
    "headers_in.Referer": ("http_referer", apachelogs_str),
    "headers_in.User-Agent": ("http_user_agent", apachelogs_str),
    "virtual_host": ("server_name", apachelogs_str),
    "server_port": ("server_port", same),
}
LARS = {
    "remote_host": ("remote_addr", same),
    "ident": ("ident", same),
    "remote_user": ("remote_user", same),
    "time_utc": ("timestamp", utc_naive_time),
    "method": ("method", same),
    "url": ("path", same),
    "protocol": ("protocol", same),
    "status": ("status", same),
    "size": ("body_bytes_sent", nbytes),
    "req_Referer": ("http_referer", same),
    "req_User_Agent": ("http_user_agent", same),
}
VRL_APACHE = {   # parse_common_log, parse_apache_log
    "host": ("remote_addr", same),
    "identity": ("ident", same),
    "user": ("remote_user", same),
    "timestamp.$timestamp": ("timestamp", aware_time),
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
    "timestamp.$timestamp": ("timestamp", aware_time),
    "request": ("request", vrl_nginx_str),
    "status": ("status", same),
    "size": ("body_bytes_sent", nbytes),
    "referer": ("http_referer", vrl_nginx_str),
    "agent": ("http_user_agent", vrl_nginx_str),
}
VRL_NGINX_MAIN = {
    "remote_addr": ("remote_addr", same),
    "remote_user": ("remote_user", same),
    "timestamp.$timestamp": ("timestamp", aware_time),
    "request": ("request", vrl_nginx_str),
    "status": ("status", same),
    "body_bytes_size": ("body_bytes_sent", nbytes),
    "http_referer": ("http_referer", vrl_nginx_str),
    "http_user_agent": ("http_user_agent", vrl_nginx_str),
    "http_x_forwarded_for": ("http_x_forwarded_for", vrl_nginx_str),
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
}
FLUENTBIT = {    # every capture is a string
    "host": ("remote_addr", same),
    "user": ("remote_user", dash),
    "method": ("method", same),
    "path": ("path", same),
    "code": ("status", to_int),
    "size": ("body_bytes_sent", nbytes),
}

_COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
_COMMON = '%h %l %u %t "%r" %>s %b'
_VHOST = '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"'

# source -> {the source's name of the format: (our built-in formats, field map)}. Several of
# our formats: the source's format accepts either layout (first one that parses is used).
SOURCES = {
    "jwodder/apachelogs": {
        _COMBINED: (("apache_combined",), APACHELOGS),
        _COMMON: (("apache_common",), APACHELOGS),
        _VHOST: (("apache_vhost_combined",), APACHELOGS),
    },
    "waveform80/lars": {
        _COMBINED: (("apache_combined",), LARS),
        _COMMON: (("apache_common",), LARS),
    },
    "vectordotdev/vrl": {
        "parse_common_log:common": (("apache_common",), VRL_APACHE),
        "parse_apache_log:common": (("apache_common",), VRL_APACHE),
        "parse_apache_log:combined": (("apache_combined",), VRL_APACHE),
        "parse_nginx_log:combined": (("nginx_combined",), VRL_NGINX_COMBINED),
        "parse_nginx_log:main": (("nginx_main",), VRL_NGINX_MAIN),
    },
    "logstash-plugins/logstash-patterns-core": {
        "%{HTTPD_COMBINEDLOG}": (("apache_combined",), LOGSTASH),
    },
    "influxdata/telegraf": {
        "%{COMMON_LOG_FORMAT}": (("apache_common",), TELEGRAF),
        "%{COMBINED_LOG_FORMAT}": (("apache_combined",), TELEGRAF),
    },
    "fluent/fluent-bit": {
        # the apache2 regex makes the '"referer" "agent"' tail optional
        "parser apache2 (conf/parsers.conf)": (("apache_combined", "apache_common"), FLUENTBIT),
    },
}

# Expected keys that are deliberately not compared (prefixes of the joined key).
IGNORED = {
    "jwodder/apachelogs": ("directives.",),   # the same values again, keyed by directive
    "vectordotdev/vrl": ("compression",),     # VRL's optional trailing "$gzip_ratio"
}

# Sources where a field that was '-' is left out of the expected record (so every mapped
# key missing from `expected` must be '-' for us: None, or 0 for byte counts).
ABSENT_MEANS_DASH = {"vectordotdev/vrl"}
_DASH = {"body_bytes_sent": 0, "bytes_sent": 0}

# (file, case id) -> the convention we deliberately differ on.
_ALL_DASH = ("VRL accepts a line of dashes (no [time], no quoted request); a template "
             "describes the line Apache writes, which always has a [%t] timestamp")
_NGINX_TAIL = ('VRL\'s nginx "combined" takes an optional trailing "$gzip_ratio"; our '
               'nginx_combined is the stock combined format: a line with one more quoted '
               'field is another log_format')
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("lars.jsonl", "INVALID_REMOTE_HOST (warning, row skipped)"):
        "lars checks %h against hostname label rules; we take any non-space token",
    ("vrl.jsonl", "parse_common_log:log_line_valid_empty"): _ALL_DASH,
    ("vrl.jsonl", "parse_common_log:log_line_valid_empty_variant"): _ALL_DASH,
    ("vrl.jsonl", "parse_apache_log:log_line_valid_empty"): _ALL_DASH,
    ("vrl.jsonl", "parse_apache_log:log_line_valid_empty_variant"): _ALL_DASH,
    ("vrl.jsonl", "parse_apache_log:combined_line_missing_fields_valid"):
        "VRL accepts an unquoted - - for Referer/User-Agent; LogFormat combined always "
        'quotes them ("-")',
    ("vrl.jsonl", "parse_nginx_log:combined_line_valid"): _NGINX_TAIL,
    ("vrl.jsonl", "parse_nginx_log:combined_line_valid_all_fields"): _NGINX_TAIL,
}


# --- loading -------------------------------------------------------------------------------

def _format_key(rec: dict) -> str:
    if rec["source"] == "vectordotdev/vrl":
        return f'{rec["function"]}:{rec["format"]}'
    return rec.get("format") or ""


def _case_id(rec: dict) -> str:
    if "function" in rec:
        return f'{rec["function"]}:{rec["case"]}'
    if "case" in rec:
        return rec["case"]
    if "test" in rec:
        return f'{rec["test"]}#{rec["index"]}'
    return rec.get("name", "?")


def _applicable(rec: dict):
    """(our formats, field map) when the case is for one of our built-in formats, else None."""
    if not rec.get("line"):
        return None           # format definitions, format strings that must be rejected
    if "timestamp_format" in rec:
        return None           # VRL with a custom timestamp format: not the built-in layout
    return SOURCES.get(rec.get("source"), {}).get(_format_key(rec))


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

def _flatten(obj: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _parse(formats: tuple[str, ...], line: bytes):
    for name in formats:
        rec = get_format(name).parse(line)
        if rec is not None:
            return name, rec
    return None, None


def _problems(rec: dict) -> list[str]:
    """What differs between plogd and the case (empty: the case passes)."""
    formats, fields = _applicable(rec)
    line = rec["line"].encode(rec.get("encoding", "utf-8"))
    used, got = _parse(formats, line)
    if rec.get("expect_error") or rec["expected"] is None:
        return [] if got is None else [f"expected a parse failure, {used} gave {got}"]
    if got is None:
        return [f"{'/'.join(formats)} did not parse the line"]
    source = rec["source"]
    expected = _flatten({**rec["expected"], **rec.get("expected_ecs", {})})
    problems = []
    for key, value in expected.items():
        if key.startswith(IGNORED.get(source, ())):
            continue
        if key not in fields:
            problems.append(f"no mapping for expected key {key!r}")
            continue
        ours, normalize = fields[key]
        want = normalize(value, rec)
        if got.get(ours, "<missing>") != want:
            problems.append(f"{key} -> {ours}: expected {want!r}, got {got.get(ours, '<missing>')!r}")
    absent = list(rec.get("absent", [])) + list(rec.get("absent_ecs", []))
    if source in ABSENT_MEANS_DASH:
        absent += [k for k in fields if k not in expected]
    for key, (ours, _) in fields.items():
        if ours in got and any(key == a or key.startswith(a + ".") for a in absent):
            if got[ours] != _DASH.get(ours):
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
    assert not problems, f"{rec['line']!r}\n  " + "\n  ".join(problems)


def test_report(capsys):
    """Per-file pass rates; every KNOWN_FAILURES entry must name an applicable case."""
    lines = []
    for name, cases in CASES.items():
        applicable = [(cid, rec) for cid, rec in cases if _applicable(rec)]
        passed = sum(not _result(name, cid, rec) for cid, rec in applicable)
        n = len(applicable)
        rate = f"{100 * passed / n:.1f}%" if n else "n/a"
        known = sum((name, cid) in KNOWN_FAILURES for cid, _ in applicable)
        lines.append(f"{name}: {passed}/{n} applicable cases pass ({rate}), "
                     f"{len(cases) - n} not applicable"
                     + (f", {known} known failures" if known else ""))
    report = "peer cases against the built-in formats:\n  " + "\n  ".join(lines)
    print(report)
    with capsys.disabled():
        print("\n" + report)
    ids = {(name, cid) for name, cid, _ in APPLICABLE}
    dangling = [key for key in KNOWN_FAILURES if key not in ids]
    assert not dangling, f"KNOWN_FAILURES entries naming no applicable case: {dangling}"
    assert all(reason.strip() for reason in KNOWN_FAILURES.values())
