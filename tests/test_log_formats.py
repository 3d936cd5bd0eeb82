"""nginx log_format and Apache LogFormat strings compiled by plogd: field names and types,
the naming rules when directives collide, timestamps, errors for the user, detection, and the
split fast path agreeing with the regex on compiled formats too."""
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from helpers import SPLIT_PATHS, assert_split_path_agrees, mutated_lines, split_path
from plogd.formats import (BUILTIN_TEMPLATES, FormatError, compile_apache, compile_nginx,
                           describe_fields, get_format)
from plogd.formats.detect import detect, explain, first_failure, match_ratio, read_sample

COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
LINE = (b'203.0.113.9 - alice [29/Nov/2026:18:20:01 +0000] "GET /a?b=1 HTTP/1.1" 200 5123 '
        b'"https://shop.example.com/" "Mozilla/5.0 (X11)"')


@pytest.mark.parametrize("fmt,builtin", [
    (COMBINED, "apache_combined"), ('%h %l %u %t "%r" %>s %b', "apache_common"),
    ('%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"', "apache_vhost_combined"),
    ('LogFormat "%h %l %u %t \\"%r\\" %>s %b" common', "apache_common"),
])
def test_apache_standard_formats_compile_to_the_builtins(fmt, builtin):
    compiled, expected = compile_apache(fmt), get_format(builtin)
    assert compiled.fields == expected.fields
    assert (compiled._fast_layout is None) == (expected._fast_layout is None)
    line = b"www.example.com:443 " + LINE if "vhost" in builtin else LINE
    line = line.rsplit(b' "https', 1)[0] if "common" in builtin else line
    assert compiled.parse(line) == expected.parse(line) is not None


@pytest.mark.parametrize("name", ["nginx_combined", "nginx_main", "nginx_timed"])
def test_nginx_builtins_compile_to_themselves(name):
    compiled = compile_nginx(BUILTIN_TEMPLATES[name])
    assert compiled.regex.pattern == get_format(name).regex.pattern
    assert compiled.fields == get_format(name).fields and compiled._fast_layout is not None


def test_nginx_directive_as_written_in_nginx_conf():
    conf = """log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';"""
    assert compile_nginx(conf).regex.pattern == get_format("nginx_main").regex.pattern
    assert compile_nginx("log_format j escape=json '{\"s\":$status}';").parse(b'{"s":200}') == \
        {"status": 200, "status_class": "2xx"}


def test_nginx_variable_types():
    fmt = compile_nginx('$msec $request_time $upstream_response_time $upstream_status '
                        '$upstream_response_length $upstream_addr $https "$http_x_forwarded_for" '
                        '$remote_addr $binary_remote_addr $gzip_ratio $connection_requests $foo')
    rec = fmt.parse(b'1483455396.639 0.050 0.010, 0.020 : 0.030 502, 200 10, 20 '
                    b'10.0.0.1:80, 10.0.0.2:80  "1.2.3.4, 10.0.0.9" 10.0.0.9 \\x7F\\x00\\x00\\x01 '
                    b'2.75 3 -')
    assert rec["timestamp"] == 1483455396 and rec["msec"] == 1483455396.639
    assert rec["upstream_response_time"] == pytest.approx(0.06)
    assert (rec["upstream_status"], rec["upstream_response_length"]) == (200, 30)
    assert rec["upstream_addr"] == "10.0.0.1:80, 10.0.0.2:80" and rec["https"] == ""
    assert rec["client_addr"] == "1.2.3.4"      # the first address of X-Forwarded-For
    assert rec["binary_remote_addr"] == "127.0.0.1" and rec["gzip_ratio"] == 2.75
    assert rec["connection_requests"] == 3 and rec["foo"] is None
    assert fmt.fields["upstream_status"] == "int" and fmt.fields["foo"] == "string"


def test_nginx_iso_time_and_derived_names():
    fmt = compile_nginx("$time_iso8601 $request_method $request_uri $server_protocol")
    rec = fmt.parse(b"2017-01-03T15:56:36+01:00 GET /a?b=1 HTTP/1.1")
    assert rec["timestamp"] == 1483455396
    assert (rec["method"], rec["path"], rec["protocol"]) == ("GET", "/a?b=1", "HTTP/1.1")


def test_apache_directive_types():
    fmt = compile_apache('%a:%{remote}p %A %{local}p %P/%{hextid}P %k %X %I %O %S %D %U%q "%m" '
                         '%H %R %f %v %V %L %{User-Agent}i %{Content-Type}o %{sid}C %{HOME}e '
                         '%{n}n "%u"')
    rec = fmt.parse(b'::1:44782 10.0.0.2 8080 16/7fb9de5af700 0 + 120 4096 4216 1042 /a?q=1 '
                    b'"GET" HTTP/1.1 wsgi /srv/a.py www.x www.x.org id1 curl/8 text/html abc '
                    b'/root v ""')
    assert (rec["remote_addr"], rec["remote_port"], rec["server_port"]) == ("::1", 44782, 8080)
    assert (rec["pid"], rec["tid"], rec["keepalive_requests"]) == (16, 0x7fb9de5af700, 0)
    assert (rec["connection_status"], rec["request_length"], rec["bytes_sent"]) == ("+", 120, 4096)
    assert rec["request_time"] == 0.001042 and rec["bytes_transferred"] == 4216
    assert (rec["uri"], rec["query_string"], rec["method"]) == ("/a", "?q=1", "GET")
    assert rec["http_user_agent"] == "curl/8" and rec["sent_http_content_type"] == "text/html"
    assert (rec["cookie_sid"], rec["env_home"], rec["note_n"]) == ("abc", "/root", "v")
    assert (rec["host"], rec["log_id"], rec["remote_user"]) == ("www.x.org", "id1", "")


@pytest.mark.parametrize("fmt,line,expected", [
    ("%>s %s", b"200 302", {"status": 200, "original_status": 302}),
    ("%s", b"404", {"status": 404}),
    ("%<s %s %>s", b"201 201 203", {"original_status": 201, "status": 203}),
    ("%h %a", b"host.example 10.0.0.1", {"remote_host": "host.example", "remote_addr": "10.0.0.1"}),
    ("%p %{local}p", b"80 8080", {"server_port": 80, "local_port": 8080}),
    ("%T/%D", b"1/1042000", {"request_time": 1.042}),
    ("%{ms}T %T", b"1042 1", {"request_time": 1.042}),
    ("%{Referer}i %<{Referer}i", b"a b", {"http_referer": "a", "original_http_referer": "b"}),
    ('"%400r" "%r"', b'"-" "GET / HTTP/1.1"', {"request": "GET / HTTP/1.1"}),
    ("%!200,304b", b"-", {"body_bytes_sent": 0}),
    ("%500{Referer}i", b"-", {"http_referer": None}),
])
def test_apache_naming_rules(fmt, line, expected):
    rec = compile_apache(fmt).parse(line)
    assert {k: rec[k] for k in expected} == expected
    assert not any(name.startswith("_") for name in rec)   # the checked-only ones are hidden


@pytest.mark.parametrize("fmt,message", [
    ("%h %x", "unknown directive '%x' at column 4"),
    ("%b %B", "'%B' at column 4 and '%b' at column 1 would both be the field body_bytes_sent"),
    ("%{foo}p", "%p takes no {foo} (allowed: canonical, local, remote)"),
    ("%{x}b", "%b takes no {x}"),
    ("abc %", "the directive at column 5 has no letter"),
    ("%{param", "never closed"),
    ("%C", "needs a name in {...}"),
    ("%{%H%:%M}t", "'%:' is not a time conversion"),
    ("plain text", "has no %directive"),
])
def test_bad_apache_formats_say_where(fmt, message):
    with pytest.raises(FormatError, match=re.escape(message)):
        compile_apache(fmt)


@pytest.mark.parametrize("fmt,message", [
    ("$status $", "the '$' at column 9 does not start a variable name"),
    ("${status", "column 1"), ("no variable", "has no $variable"),
    ("log_format x escape=yaml '$a';", "escape=yaml"),
])
def test_bad_nginx_formats_say_where(fmt, message):
    with pytest.raises(FormatError, match=re.escape(message)):
        compile_nginx(fmt)


@pytest.fixture
def eastern(monkeypatch):
    """Apache times without a zone are local times: here US Eastern."""
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("fmt,line,epoch", [
    ("%{%Y-%m-%d %H:%M:%S %z}t", b"2017-11-25 20:47:06 -0500", 1511660826),
    ("%{%Y-%m-%d}t %{%H:%M:%S}t %{%z}t %r", b"2017-11-25 20:47:06 -0500 GET / HTTP/1.1",
     1511660826),
    ("%{%s}t@%{%z}t", b"1511642826@-0500", 1511642826),
    ("%{msec}t", b"1511642826123", 1511642826),
    ("%{%d/%b/%Y:%T}t.%{msec_frac}t %{%z}t", b"25/Nov/2017:20:47:06.123 +0000", 1511642826),
    ("%{%FT%T %Z}t", b"2017-11-25T20:47:06 GMT", 1511642826),
    ("%{%Y-%m-%d %H:%M:%S}t", b"2017-11-25 15:47:06", 1511642826),   # local (EST) time
    ("%{%G-W%V-%u %H:%M}t", b"2017-W47-6 15:47", 1511642820),
    ("%{end:%s}t %t", b"1511642826 [25/Nov/2017:20:47:00 +0000]", 1511642826),   # the first one
    ("%t %{end:%s}t", b"[25/Nov/2017:20:47:00 +0000] 1511642826", 1511642820),
])
def test_apache_timestamps(fmt, line, epoch, eastern):
    assert compile_apache(fmt).parse(line)["timestamp"] == epoch


GERMAN = "de_DE.UTF-8"     # tests/run generates it (localedef) when `locale -a` lacks it


@pytest.mark.parametrize("fmt,line,epoch", [
    ("%{%d/%b/%Y:%H:%M:%S %z}t", "19/Mär/2019:01:39:12 +0000", 1552959552),
    ("%{%d %B %Y %H:%M:%S %z}t", "19 März 2019 01:39:12 +0000", 1552959552),
    ("%{%d %b %Y %T %z}t", "09 Dez 2019 01:39:12 +0000", 1575855552),
    ("%{%G--%V %a %H:%M:%S}t", "2019--20 So 12:34:56", 1558283696),       # local (EST) time
    ("%{%G--%V %A %H:%M:%S}t", "2019--20 Sonntag 12:34:56", 1558283696),
    ("%{%c}t", "So 19 Mai 2019 12:34:56 UTC", 1558269296),        # de_DE's %c: %a %d %b %Y %T %Z
    ("%{%x %X}t %{%z}t", "19.05.2019 12:34:56 +0000", 1558269296),  # %x: %d.%m.%Y
])
def test_apache_times_in_a_locale(fmt, line, epoch, eastern):
    assert compile_apache(fmt, time_locale=GERMAN).parse(line.encode())["timestamp"] == epoch
    assert compile_apache(fmt).parse(line.encode()) is None     # C's names by default


def test_time_locale_names_only_that_locale():
    english = b"19/Mar/2019:01:39:12 +0000"
    fmt = "%{%d/%b/%Y:%H:%M:%S %z}t"
    assert compile_apache(fmt).parse(english)["timestamp"] == 1552959552
    assert compile_apache(fmt, time_locale="C").parse(english)["timestamp"] == 1552959552
    assert compile_apache(fmt, time_locale=GERMAN).parse(english) is None    # exact: Mär only
    why = explain(compile_apache(fmt, time_locale=GERMAN), english)
    assert "expected %{%d/%b/%Y:%H:%M:%S %z}t (time, de_DE.UTF-8 names)" in why
    # %t is apr's, always English, whatever the locale
    clf = compile_apache('%t "%r"', time_locale=GERMAN)
    assert clf.parse(b'[19/Mar/2019:01:39:12 +0000] "GET / HTTP/1.1"')["timestamp"] == 1552959552


def test_time_names_are_read_without_changing_the_process_locale():
    import locale
    from plogd.formats.strftime import time_names
    before = locale.setlocale(locale.LC_TIME), locale.setlocale(locale.LC_CTYPE)
    time_names.cache_clear()
    names = time_names(GERMAN)
    assert names.short_months[2] == "Mär".encode() and names.days[6] == b"Sonntag"
    assert (locale.setlocale(locale.LC_TIME), locale.setlocale(locale.LC_CTYPE)) == before
    assert time.strftime("%b", (2019, 3, 1, 0, 0, 0, 0, 1, 0)) == "Mar"


def test_a_locale_that_is_not_installed_says_how_to_get_it():
    from plogd.formats.strftime import LocaleError
    with pytest.raises(LocaleError) as err:
        compile_apache("%{%d %b %Y %T %z}t", time_locale="xx_YY.UTF-8")
    message = str(err.value)
    assert "'xx_YY.UTF-8' is not installed" in message and "`locale -a`" in message
    assert "localedef -i xx_YY -f UTF-8 xx_YY.UTF-8" in message
    assert isinstance(err.value, FormatError)


def test_a_time_without_date_or_hour_gives_no_timestamp():
    assert "timestamp" not in compile_apache("%{%H:%M:%S}t %r").fields
    assert "timestamp" not in compile_apache("%{%Y-%m-%d}t %r").fields


def test_lines_without_a_time_match_with_the_timestamp_absent():
    """The parser sets them aside (odd_time: test_windows); the extractor keeps them."""
    fmt = compile_apache('%400t "%r"')
    lines = [b'[25/Nov/2017:20:47:06 +0000] "GET / HTTP/1.1"', b'- "GET / HTTP/1.1"']
    assert fmt.parse(lines[1])["timestamp"] is None
    columns, unmatched = fmt.batch_extractor(["timestamp", "method"])(lines)
    assert columns == {"timestamp": [1511642826, None], "method": ["GET", "GET"]}
    assert unmatched == 0


DASHES = [b"- - - - - - -", b'- - - [-] "-" - -']


@pytest.mark.parametrize("fmt", [get_format("apache_common"),
                                 compile_apache('%h %l %u %t "%r" %>s %b'),
                                 compile_apache('%h %l %u %!200t "%r" %>s %b')])
def test_apache_lines_of_dashes_are_records_without_fields(fmt):
    """Apache writes '-' for a directive whose condition did not hold (%400t: no brackets);
    a line of dashes is a record whose every field is absent."""
    for line in DASHES:
        rec = fmt.parse(line)
        assert rec is not None and set(rec.values()) <= {None, 0}, line
        assert rec["timestamp"] is None and rec["request"] is None and rec["method"] is None
    rec = fmt.parse(b'1.2.3.4 - - - "GET / HTTP/1.1" 200 5')      # only the time is '-'
    assert (rec["timestamp"], rec["method"], rec["status"]) == (None, "GET", 200)
    rec = fmt.parse(b"1.2.3.4 - - [25/Nov/2017:20:47:06 +0000] - 400 0")   # no request
    assert (rec["timestamp"], rec["request"], rec["status"]) == (1511642826, None, 400)
    for garbage in [b"- - - [1234] - - -", b"- - - [- - - -", b"- - - -] - - -",
                    b'- - - [-] "- - -', b"- - - - - - - -"]:
        assert fmt.parse(garbage) is None, garbage


def test_the_dash_in_place_of_brackets_or_quotes_is_apache_only():
    """nginx always writes $time_local and the quotes of its log_format: a line of dashes
    is not an nginx line (and `plogd detect` tells Apache from nginx by it)."""
    for name in ["nginx_combined", "nginx_main", "nginx_timed"]:
        assert get_format(name).parse(b'- - - - - - - "-" "-"') is None
        assert get_format(name).parse(b'1.2.3.4 - - [-] "-" 200 5 "-" "-"') is None
    assert get_format("apache_combined").parse(b'- - - - - - - "-" "-"') is not None
    assert compile_nginx('$remote_addr [$time_local] "$request"').parse(b"- - -") is None
    assert detect(DASHES + [LINE.rsplit(b' "https', 1)[0]])[0] == ("apache_common", 1.0)
    why = explain(get_format("apache_common"), b"- - - [1234] - - -")
    assert "expected [$time_local] (string) or '-' then ' '" in why


def test_describe_fields_says_where_each_comes_from():
    described = dict(describe_fields(compile_apache('%h %t "%r" %>s %D')))
    assert described["status"] == "int, %>s" and described["request_time"] == "float, %D"
    assert described["timestamp"] == "epoch seconds, from %t"
    assert described["method"] == "string, from %r"
    assert dict(describe_fields(compile_nginx("$status")))["status"] == "int, $status"


# -- detection and explanations ----------------------------------------------------------

def test_detect_names_the_builtin_format_best_first(tmp_path):
    from plogd.traffic import write_file
    path = tmp_path / "access.log"
    write_file(path, 300, seed=3)
    lines = read_sample(str(path), limit=200)
    assert len(lines) == 200
    ranking = detect(lines)
    assert ranking[0] == ("nginx_timed", 1.0) and {r for _, r in ranking[1:]} == {0.0}
    common = [b'1.2.3.4 x - [01/Aug/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 7'] * 3 + [b"junk"]
    assert detect(common)[0] == ("apache_common", 0.75)


def test_explain_says_where_a_line_stops_matching():
    fmt = get_format("nginx_combined")
    assert explain(fmt, LINE) is None
    why = explain(fmt, LINE.replace(b" 200 ", b" 2x0 "))
    assert why.startswith("column ") and "after $status (int)" in why and "x0 5123" in why
    assert "expected ' '" in why
    assert "the format ends" in explain(fmt, LINE + b" 0.1")
    assert "$time_local" in explain(fmt, LINE.replace(b"Nov", b"Foo"))
    index, line, why = first_failure(fmt, [LINE, b"garbage"])
    assert (index, line) == (1, b"garbage") and why.startswith("column 8: expected ' - '")
    assert match_ratio(fmt, [LINE, b"garbage"]) == 0.5 and match_ratio(fmt, []) == 1.0


# -- the split path never disagrees with the regex, on compiled formats -----------------

SAMPLES = [  # (format, lines it matches)
    (compile_apache(COMBINED), [LINE, LINE.replace(b"alice", b"-")]),
    (compile_nginx('$remote_addr $https [$time_local] "$request" $status $body_bytes_sent '
                   '$request_time $upstream_response_time $upstream_status $upstream_addr '
                   '$upstream_response_length $gzip_ratio $uri "$http_x_forwarded_for" $foo'),
     [b'1.2.3.4  [29/Nov/2026:18:20:01 +0000] "GET / HTTP/1.1" 200 12 0.5 0.4 200 '
      b'10.0.0.1:80 99 - /a "-" x',
      b'1.2.3.4 on [29/Nov/2026:18:20:01 +0000] "GET / HTTP/1.1" 502 - 0.5 0.1, 0.2 502, 200 '
      b'10.0.0.1:80, 10.0.0.2:80 10, 20 2.5 /b "1.1.1.1, 2.2.2.2" -']),
    (compile_nginx("$time_iso8601 $msec $status $binary_remote_addr $request_method"),
     [b"2017-01-03T15:56:36+01:00 1483455396.639 200 \\x7F\\x00\\x00\\x01 GET"]),
    (compile_apache('%h %u %t %>s %b %D %{ms}T %k %X %{hextid}P %q %U %200{Referer}i'),
     [b'1.2.3.4 "" [29/Nov/2026:18:20:01 +0000] 200 - 1042 1 0 X 7fb9 ?a=1 /x -',
      b'1.2.3.4 bob [29/Nov/2026:18:20:01 +0000] 404 12 5 0 3 + 10  /y http://r/']),
    (compile_apache('%{%Y-%m-%dT%H:%M:%S%z}t %>s %{sec}t "%400r"'),
     [b'2026-11-29T18:20:01+0000 200 1795976401 "-"']),
    (compile_apache('%h %l %u %t "%r" %>s %b'),     # the times and requests of dashes
     [b'1.2.3.4 - - [29/Nov/2026:18:20:01 +0000] "GET / HTTP/1.1" 200 5', *DASHES,
      b'1.2.3.4 - - - "GET / HTTP/1.1" 200 5']),
]
_pieces = st.sampled_from([b" ", b'"', b"-", b"[", b"]", b"\\", b"\\x22", b"200", b"0.5", b"",
                           b"0.1, 0.2", b"1.2.3.4", b"GET / HTTP/1.1", b"\r", b"x", b"\t", b"?",
                           b",", b" : ", b"+", b"X", b"ff", b"2026", b"T", b":", b"9" * 25])


def _mutated(lines):
    return mutated_lines(lines, _pieces, span=300)


@st.composite
def _sample_batches(draw):
    fmt, lines = draw(st.sampled_from(SAMPLES))
    return fmt, draw(st.lists(_mutated(lines), min_size=1, max_size=8))


@pytest.mark.parametrize("path", SPLIT_PATHS)
@settings(max_examples=600, deadline=None)
@given(sample=_sample_batches())
def test_split_path_agrees_with_regex_on_compiled_formats(path, sample):
    fmt, lines = sample
    assert_split_path_agrees(fmt, lines, path)


def test_samples_use_the_split_path_and_parse():
    for fmt, lines in SAMPLES:
        assert all(fmt.parse(line) is not None for line in lines), fmt.name
    assert all(fmt._fast_layout is not None for fmt, _ in SAMPLES)


@pytest.mark.parametrize("path", SPLIT_PATHS)
@settings(max_examples=300, deadline=None)
@given(line=st.binary(max_size=200))
def test_compiled_parsers_never_raise_on_arbitrary_bytes(path, line):
    for fmt, _ in SAMPLES:
        fmt.parse(line)
        with split_path(path):
            for names in (list(fmt.fields), [n for n in fmt.fields if n != "time_local"]):
                fmt.batch_extractor(names)([line])
