"""Built-in formats: typed fields, escapes, zones, and the split fast path agreeing with the
regex (the authority) on every line, valid or not."""
import pytest
from hypothesis import given, settings, strategies as st

from helpers import SPLIT_PATHS, assert_split_path_agrees, mutated_lines, split_path
from plogd.formats import BUILTIN_TEMPLATES, FormatError, LogFormat, get_format

TIMED = (b'203.0.113.9 - alice [29/Nov/2026:18:20:01 +0330] "GET /a?b=1 HTTP/1.1" 200 5123 '
         b'"https://shop.example.com/" "Mozilla/5.0 (X11)" 0.023 0.021')


def test_typed_fields_of_a_timed_line():
    rec = get_format("nginx_timed").parse(TIMED)
    assert rec["status"] == 200 and rec["body_bytes_sent"] == 5123
    assert rec["request_time"] == 0.023 and rec["upstream_response_time"] == 0.021
    assert rec["timestamp"] == 1795976401 - 3 * 3600 - 1800   # +0330 is ahead of UTC
    assert (rec["method"], rec["path"], rec["protocol"]) == ("GET", "/a?b=1", "HTTP/1.1")
    assert rec["remote_user"] == "alice" and rec["status_class"] == "2xx"


@pytest.mark.parametrize("upstream,total", [
    (b"0.010, 0.020", 0.03), (b"0.010 : 0.020", 0.03), (b"-", None), (b"0.5, -", 0.5),
])
def test_upstream_time_lists(upstream, total):
    rec = get_format("nginx_timed").parse(TIMED.replace(b"0.021", upstream))
    assert rec["upstream_response_time"] == pytest.approx(total) if total else rec[
        "upstream_response_time"] is None


def test_dash_bytes_are_zero_and_dash_strings_absent():
    line = b'1.2.3.4 - - [01/Aug/1995:00:00:01 -0400] "GET / HTTP/1.0" 304 -'
    rec = get_format("apache_common").parse(line)
    assert rec["body_bytes_sent"] == 0 and rec["remote_user"] is None and rec["ident"] is None
    assert rec["timestamp"] == 807249601


def test_escapes_inside_quoted_fields():
    apache = (b'1.2.3.4 - - [01/Aug/1995:00:00:01 -0400] "GET /\\"x\\" HTTP/1.0" 200 1 '
              b'"-" "agent \\"q\\""')
    rec = get_format("apache_combined").parse(apache)
    assert rec["path"] == '/"x"' and rec["http_user_agent"] == 'agent "q"'
    nginx = (b'1.2.3.4 - - [01/Aug/1995:00:00:01 -0400] "\\x16\\x03\\x01" 400 150 "-" "-"')
    assert get_format("nginx_combined").parse(nginx)["request"] == "\x16\x03\x01"


def test_crlf_line_end_is_accepted():
    assert get_format("nginx_timed").parse(TIMED + b"\r")["upstream_response_time"] == 0.021


@pytest.mark.parametrize("line", [
    b"", b"xxxxxxxxxxxx", TIMED.replace(b" 200 ", b" 2x0 "), TIMED.replace(b"Nov", b"Foo"),
    TIMED.replace(b"0.023", b"1e5"), TIMED + b" extra", TIMED.replace(b"[", b""),
    TIMED.replace(b" - alice", b" x alice"), TIMED.replace(b"+0330", b"+03:30"),
])
def test_lines_that_do_not_match(line):
    assert get_format("nginx_timed").parse(line) is None


@pytest.mark.parametrize("stamp", [b"29/Feb/2023:18:20:01 +0330", b"31/Apr/2026:18:20:01 +0330",
                                   b"29/Nov/2026:18:20:01 +2500", b"29/Nov/2026:18:20:01 -0060"])
def test_impossible_dates_do_not_match(stamp):
    """Not normalized into another day (29 Feb 2023 is no 1 March), by the split path and by
    the regex: unmatched, like any value that is not of its type."""
    line = TIMED.replace(b"29/Nov/2026:18:20:01 +0330", stamp)
    fmt = get_format("nginx_timed")
    assert fmt.parse(line) is None
    assert fmt.batch_extractor(["timestamp"])([line, TIMED]) == ({"timestamp": [1795963801]}, 1)
    assert get_format("nginx_timed").parse(TIMED.replace(b"29/Nov/2026", b"29/Feb/2024"))


@pytest.mark.parametrize("directive,stamp", [
    ("%{%Y-%m-%d %H:%M:%S %z}t", b"2023-02-29 10:00:00 +0000"),
    ("%{%Y-%m-%d %H:%M:%S %z}t", b"2026-04-10 10:00:00 +2500"),
    ("%{%Y %j %H:%M:%S %z}t", b"2023 366 10:00:00 +0000"),
])
def test_impossible_strftime_dates_do_not_match(directive, stamp):
    from plogd.formats.apache import compile_apache
    fmt = compile_apache(f"%h {directive} %>s")
    assert fmt.parse(b"1.2.3.4 " + stamp + b" 200") is None
    assert fmt.batch_extractor(["timestamp"])([b"1.2.3.4 " + stamp + b" 200"])[1] == 1


def test_vhost_combined_has_server_fields():
    line = (b'www.example.com:443 1.2.3.4 - - [01/Aug/1995:00:00:01 -0400] "GET / HTTP/1.1" '
            b'200 512 "-" "curl/8"')
    rec = get_format("apache_vhost_combined").parse(line)
    assert (rec["server_name"], rec["server_port"], rec["bytes_sent"]) == ("www.example.com", 443, 512)


def test_regex_format_types_known_names():
    fmt = get_format(r"regex:(?P<remote_addr>\S+) \[(?P<time_local>[^]]+)\] (?P<status>\d+)")
    rec = fmt.parse(b"1.2.3.4 [01/Aug/1995:00:00:01 -0400] 503")
    assert rec["status"] == 503 and rec["status_class"] == "5xx" and rec["timestamp"] == 807249601


@pytest.mark.parametrize("name,message", [
    ("regex:(?P<a>", "not a valid regular expression"), ("regex:\\d+", "no named group"),
    ("nginx_timd", "unknown format"),
])
def test_bad_formats_are_rejected(name, message):
    with pytest.raises(FormatError, match=message):
        get_format(name)


# -- the fast path never disagrees with the regex ---------------------------------------

_pieces = st.sampled_from([b" ", b'"', b"-", b"[", b"]", b"\\", b"\\x22", b"200", b"0.5",
                           b"0.1, 0.2", b"1.2.3.4", b"GET / HTTP/1.1", b"\r", b"x", b"\t",
                           b"9" * 25, b"29/Feb/2023", b"31/Apr/2024", b"+2500"])


def _mutations():
    return mutated_lines([TIMED, TIMED.replace(b"0.021", b"-"), TIMED.replace(b"alice", b"-"),
                          TIMED.replace(b" 5123 ", b" - ").replace(b"0.023", b"-"),
                          TIMED.replace(b"0.021", b"0.5, 0.25 : 1"),
                          b"- - - - - - -", b'- - - [-] "-" - - "-" "-"'], _pieces)


@pytest.mark.parametrize("path", SPLIT_PATHS)
@settings(max_examples=400, deadline=None)
@given(lines=st.lists(_mutations(), min_size=1, max_size=8),
       name=st.sampled_from(sorted(BUILTIN_TEMPLATES)))
def test_split_path_agrees_with_regex(path, lines, name):
    fmt = get_format(name)
    assert_split_path_agrees(fmt, lines, path)


@settings(max_examples=500, deadline=None)
@given(line=st.binary(max_size=300))
def test_parser_never_raises_on_arbitrary_bytes(line):
    for name in BUILTIN_TEMPLATES:
        get_format(name).parse(line)


@pytest.mark.parametrize("path", SPLIT_PATHS)
def test_split_path_is_used_for_plain_lines(path):
    fmt = LogFormat.from_template("t", BUILTIN_TEMPLATES["nginx_timed"])
    calls = []
    regex = fmt._regex_extractor
    fmt._regex_extractor = lambda names: (lambda line: calls.append(line) or regex(names)(line))
    with split_path(path):
        extract = fmt.batch_extractor(["timestamp", "status", "upstream_response_time"])
    listed = TIMED.replace(b"0.021", b"0.1, 0.2 : 0.25")    # the last token: split path too
    escaped = TIMED.replace(b"(X11)", b"\\x22X11\\x22")
    stray = listed + b" x"          # not a list: a misfit alone, not its batch to the regex
    columns, unmatched = extract([TIMED, listed, escaped, stray])
    assert unmatched == 1 and columns["timestamp"] == [1795963801] * 3
    assert columns["upstream_response_time"] == [0.021, 0.1 + 0.2 + 0.25, 0.021]
    assert calls == [escaped, stray]     # only these lines reached the regex
    calls.clear()                         # the same, given the batch text (the quick way)
    lines = [TIMED, listed, stray]
    assert extract(lines, b"\n".join(lines))[1] == 1 and calls == [stray]


@pytest.mark.parametrize("path", SPLIT_PATHS)
def test_numbers_too_big_for_a_window_do_not_match(path):
    """A 400-digit time or byte count: refused (unmatched) by both paths, never an overflow
    (it used to crash the parser, and --multi restarted onto the same line forever)."""
    from plogd.formats.apache import compile_apache
    from plogd.formats.nginx import compile_nginx
    huge = b"9" * 400
    cases = [(get_format("nginx_timed"), TIMED.replace(b"0.023", huge)),
             (get_format("nginx_timed"), TIMED.replace(b" 5123 ", b" " + huge + b" ")),
             (compile_apache("%h %t %>s %D"), b"1.2.3.4 [29/Nov/2026:18:20:01 +0000] 200 " + huge),
             (compile_nginx("$msec $status"), huge + b".5 200")]
    for fmt, line in cases:
        assert fmt.parse(line) is None, line[:60]
        names = list(fmt.fields)
        for args in ((), (line,)):
            with split_path(path):
                assert fmt.batch_extractor(names)([line, line], *args)[1] == 2
    assert get_format("nginx_timed").parse(TIMED.replace(b"0.023", b"9" * 19 + b".5"))
