"""The `where:` language: results per line, and clear errors."""
import pytest

from plogd.filters import FilterError, compile_filter

FIELDS = {"status": True, "request_time": True, "method": False, "path": False}
COLUMNS = {"status": (200, 500, 503, 404), "request_time": (0.1, None, 2.5, 0.3),
           "method": ("GET", "POST", "GET", None), "path": ("/", "/a", "/b", "/c")}


def run(text):
    return compile_filter(text, FIELDS).mask(COLUMNS, 4)


@pytest.mark.parametrize("text,expected", [
    ("status >= 500", [False, True, True, False]),
    ("status == 404 or status == 200", [True, False, False, True]),
    ("not status < 500", [False, True, True, False]),
    ('method in ["GET", "HEAD"]', [True, False, True, False]),
    ('method != "GET"', [False, True, False, False]),        # absent ('-') compares false
    ("request_time > 1", [False, False, True, False]),
    ('(status >= 500 and method == "GET") or path == "/"', [True, False, True, False]),
    ("status in [500, 503] and not request_time < 1", [False, True, True, False]),
])
def test_filter_results(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize("text,message", [
    ("status >=", "expected a number or a quoted string, found the end"),
    ("status => 5", "unexpected"),
    ('status == "500"', "compare it with a number"),
    ("method == GET", "expected a number or a quoted string"),
    ("stats >= 500", "did you mean 'status'"),
    ("status >= 500 and", "expected a field name|expected a"),
    ("(status >= 500", "expected '\\)'"),
    ("status >= 500 500", "unexpected 500"),
])
def test_filter_errors_say_what_and_where(text, message):
    with pytest.raises(FilterError, match=message):
        compile_filter(text, FIELDS)


@pytest.mark.parametrize("text,expected", [
    ('path ^= "/a"', [False, True, False, False]),
    ('path ~ "^/[ab]$"', [False, True, True, False]),
    ('path ~ "\\.|^/c"', [False, False, False, True]),          # a backslash stays a regex escape
    ('path !~ "^/[ab]"', [True, False, False, True]),
    ('method ~ "T$"', [True, True, True, False]),               # absent ('-') is false
    ('method !~ "^P"', [True, False, True, False]),             # ... for !~ too
    ('not path ^= "/" or status == 404', [False, False, False, True]),
    ('path ^= "/" and method in ["POST"]', [False, True, False, False]),
])
def test_prefix_and_regex_matches(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize("text,message", [
    ('path ~ "(a"', r"bad regular expression '\(a': missing \), unterminated subpattern at column 9"),
    ('path ~ "a{2,1}"', "bad regular expression .* at column 11"),
    ("status ~ \"5..\"", "status holds numbers, compare it with a number"),
    ("path ^= 5", "expected a quoted string after '\\^=', found 5"),
    ("path =~ \"a\"", "unexpected"),
])
def test_bad_text_matches_are_rejected_at_start_up(text, message):
    with pytest.raises(FilterError, match=message):
        compile_filter(text, FIELDS)


def test_deep_nesting_is_refused_and_a_long_chain_runs_without_recursion():
    """A where: nests one call per 'not' or parenthesis, at parse and at run time: bounded.
    A chain of and/or is a loop: 5,000 terms are fine (they were 5,000 nested calls)."""
    with pytest.raises(FilterError, match="more than 100 nested 'not' or parentheses at "
                                          "column 101"):
        compile_filter("(" * 3000 + "status == 1" + ")" * 3000, {"status": True})
    with pytest.raises(FilterError, match="more than 100 nested"):
        compile_filter("not " * 3000 + "status == 1", {"status": True})
    chain = compile_filter(" or ".join(["status == 1"] * 5000 + ["status == 500"]),
                           {"status": True})
    assert chain.mask({"status": [500, 2]}, 2) == [True, False]
