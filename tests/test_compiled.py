"""The optional compiled speedup of the split path (plogd/formats/_split.c): built here (the
tests need it), off with PLOGD_PURE_PYTHON=1, reported by `plogd --version`, and never a
reason for `pip install` to fail. That it gives what the pure path gives is pinned by the
split-path tests of test_formats.py and test_log_formats.py, run over both paths, and by
tests/multiprocess/test_modes_agree.py; here, numbers and times of every shape."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from hypothesis import given, settings, strategies as st

from helpers import DATA, ROOT, assert_split_path_agrees, mutated_lines, split_path
from plogd.files import FileId
from plogd.filters import compile_filter
from plogd.formats import compiled, get_format
from plogd.formats.nginx import compile_nginx
from plogd.messages import LineBatch
from plogd.metrics import Metric
from plogd.stages.parse import Parser


def test_the_speedup_is_built_here():
    assert compiled.built(), "build it: apt-get install gcc python3-dev; pip install -e ."


def test_pure_python_env_turns_it_off_for_new_extractors():
    fmt = get_format("nginx_timed")
    with split_path("pure"):
        assert not fmt.batch_extractor(["timestamp", "status"]).compiled
        assert "PLOGD_PURE_PYTHON is set" in compiled.status()
    with split_path("compiled"):
        assert fmt.batch_extractor(["timestamp", "status"]).compiled
        assert compiled.status() == "compiled speedup: on"


def _plogd_version(**env) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "PLOGD_PURE_PYTHON"}
    return subprocess.run([sys.executable, "-m", "plogd", "--version"], capture_output=True,
                          check=True, timeout=60, env=dict(environ, PYTHONPATH=str(ROOT), **env)
                          ).stdout.decode()


def test_version_says_whether_the_speedup_is_on():
    assert _plogd_version().strip().endswith(", compiled speedup: on")
    assert "compiled speedup: off, PLOGD_PURE_PYTHON is set" in \
        _plogd_version(PLOGD_PURE_PYTHON="1")


def test_without_the_module_plogd_runs_in_pure_python_and_says_so_once(tmp_path):
    """What an install without a compiler gives: the same results, one word at start-up."""
    log = DATA / "logs" / "lnav-shop" / "logfile_shop_access_log.0"
    run = ("import sys; from plogd.cli import main; sys.argv[0] = 'plogd'; "
           "sys.exit(main(sys.argv[1:]))")
    without = "import sys; sys.modules['plogd.formats._split'] = None; " + run
    args = ["replay", "--format", "nginx_main", str(log), "-o"]
    env = {k: v for k, v in os.environ.items() if k != "PLOGD_PURE_PYTHON"}
    env["PYTHONPATH"] = str(ROOT)
    for name, code in (("with", run), ("without", without)):
        subprocess.run([sys.executable, "-c", code, *args, str(tmp_path / name)], check=True,
                       env=env, capture_output=True, timeout=120)
    assert (tmp_path / "with").read_bytes() == (tmp_path / "without").read_bytes()
    version = subprocess.run([sys.executable, "-c", without, "--version"], env=env,
                             capture_output=True, timeout=60).stdout.decode()
    assert "compiled speedup: not built" in version and "pure Python" in version
    config = tmp_path / "plogd.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\ninputs:\n  - path: {log}\n"
                      f"    format: nginx_main\n    start: beginning\n"
                      f"    metrics: [{{key: n, type: count}}]\n")
    single = subprocess.run([sys.executable, "-c", without, "--single", "--once", "-c",
                             str(config)], env=env, capture_output=True, timeout=120)
    assert single.returncode == 0, single.stderr.decode()
    assert single.stderr.decode().count("compiled speedup: not built") == 1


@pytest.mark.integration      # builds a wheel
def test_a_failed_build_installs_plogd_in_pure_python(tmp_path):
    """No working C compiler at `pip install`: the wheel is built all the same, without the
    speedup, and says why."""
    source = tmp_path / "source"     # a clean copy: no object file left by an earlier build
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.so", "*.egg-info", "__pycache__", ".hypothesis", "tests"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w",
                            str(tmp_path), str(source)], env=dict(os.environ, CC="false"),
                           capture_output=True, timeout=300)
    assert built.returncode == 0, built.stderr.decode()[-2000:]
    assert b"the compiled speedup was not built" in built.stdout + built.stderr
    [wheel] = tmp_path.glob("plogd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "plogd/formats/compiled.py" in names
    assert not [n for n in names if "_split" in n]


# -- numbers and times of every shape: the C conversions give what Python's give ----------

_digits = st.text("0123456789", min_size=1, max_size=24)
_number = st.one_of(_digits, st.tuples(_digits, _digits).map(".".join), st.just("-"),
                    st.sampled_from(["0.015", "99999999999999999999", "100000000000000000000",
                                     "18446744073709551616", "9007199254740993", "0.1",
                                     "1e5", "1.", ".5", "", "00012", "0.5, 0.25 : 1"]))
_times = st.sampled_from([
    "29/Nov/2026:18:20:01 +0000", "29/Nov/2026:18:20:02 +0000", "29/Nov/2026:18:20:01 -0330",
    "1/Jan/2000:00:00:00 +0100", "31/Dec/1999:23:59:60 +0000", "29/Feb/2024:12:00:00 +0000",
    "31/Feb/2024:10:00:00 +0000", "29/Nov/2026:24:00:00 +0000", "29/Foo/2026:18:20:01 +0000",
    "29/Nov/2026:18:20:01 +03:30", "29/Nov/2026:18:20:01 +2500", "29/Feb/2023:12:00:00 +0000",
    "31/Apr/2024:12:00:00 +0000", "29/Nov/2026:18:20:01 -0060", "x"])
NUMBERS = compile_nginx("[$time_local] $status $body_bytes_sent $request_time "
                        "$server_port $upstream_response_time")


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(_times, *[_number] * 5), min_size=1, max_size=6))
def test_numbers_and_times_convert_as_in_python(rows):
    lines = [("[%s] %s %s %s %s %s" % row).encode() for row in rows]
    assert_split_path_agrees(NUMBERS, lines, "compiled")


def test_impossible_dates_are_unmatched_on_the_compiled_path():
    """The C path asks fields.to_epoch for every second it has not seen: its rule on dates."""
    lines = [b"[%s] 200 1 0.1 80 -" % t for t in (b"29/Feb/2023:12:00:00 +0000",
             b"31/Apr/2024:12:00:00 +0000", b"29/Nov/2026:18:20:01 +2500",
             b"29/Feb/2024:12:00:00 +0000")]
    with split_path("compiled"):
        columns, unmatched = NUMBERS.batch_extractor(["timestamp"])(lines)
    assert unmatched == 3 and columns["timestamp"] == [1709208000]


def test_the_time_cache_keeps_seconds_apart():
    """Many seconds in one batch, each line's time its own (the cache has 16 places)."""
    lines = [b"[29/Nov/2026:18:%02d:%02d +0000] 200 1 0.1 80 -" % divmod(s, 60)
             for s in range(600)] * 2
    with split_path("compiled"):
        columns, unmatched = NUMBERS.batch_extractor(["timestamp"])(lines)
    start = 1795976400 - 20 * 60
    assert unmatched == 0 and columns["timestamp"] == [start + s for s in range(600)] * 2


def test_empty_time_tokens_are_unmatched():
    """'[$time_local]' as two empty tokens (spaces where the time goes): no match, and no
    confusion with an empty place of the time cache."""
    lines = [b"  200 1 0.1 80 -", b"[29/Nov/2026:18:20:01 +0000] 200 1 0.1 80 -"] * 2
    with split_path("compiled"):
        columns, unmatched = NUMBERS.batch_extractor(["timestamp", "status"])(lines)
    assert unmatched == 2 and columns["status"] == [200, 200]
    assert_split_path_agrees(NUMBERS, lines, "compiled")


# -- the parser: from the batch text (compiled) as from its lines (pure) -------------------

TIMED = (b'203.0.113.9 - alice [29/Nov/2026:18:20:01 +0330] "GET /a?b=1 HTTP/1.1" 200 5123 '
         b'"https://shop.example.com/" "Mozilla/5.0 (X11)" 0.023 0.021')
_line = st.binary(max_size=120) | mutated_lines([TIMED, TIMED.replace(b"0.021", b"0.5, 0.25"),
                       TIMED.replace(b"18:20:01", b"18:21:59").replace(b" 200 ", b" 503 "),
                       TIMED.replace(b"29/Nov", b"31/Nov"), TIMED.replace(b"2026", b"1970"),
                       b"", b"garbage"],
                      st.sampled_from([b" ", b'"', b"-", b"\\", b"\n", b"0.5", b"x" * 150]))
PARSER_METRICS = [Metric("n", "count"), Metric("st", "count", by="status"),
                  Metric("m", "count", by="method"), Metric("b", "sum", field="body_bytes_sent"),
                  Metric("rt", "avg", field="request_time"),
                  Metric("up", "max", field="upstream_response_time"),
                  Metric("e", "count", where=compile_filter("status >= 500", {"status": True})),
                  Metric("e_share", "ratio",           # the same where: its mask is reused
                         where=compile_filter("status >= 500", {"status": True})),
                  Metric("sc", "count", by="status_class"),
                  Metric("rt_min", "min", field="request_time")]


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_line, max_size=12), end=st.sampled_from([b"", b"\n"]),
       too_long=st.integers(0, 2), cap=st.integers(0, 12))
def test_the_parser_gives_the_same_partial_on_both_paths(lines, end, too_long, cap):
    """Lines too long for max_line (skipped, counted), empty lines, no final newline,
    unmatched and odd lines: the same Partial from the compiled path, which reads the
    batch's text, as from the pure one, which splits it into lines."""
    data = b"\n".join(lines) + end
    lengths = sorted(len(line) for line in data.split(b"\n"))
    max_line = lengths[cap % len(lengths)]     # as long as one of the lines: the edge
    batch = LineBatch("in", 1, "/x", FileId(1, 2, 0, ""), data, 0, len(data), too_long=too_long)
    partials = {}
    for path in ("pure", "compiled"):
        with split_path(path):
            parser = Parser("in", get_format("nginx_timed"), PARSER_METRICS, 60, max_line,
                            oldest=662688000)
        assert hasattr(parser.extract, "from_text") == (path == "compiled")
        partials[path] = parser.handle(batch)
    assert partials["compiled"] == partials["pure"]


@pytest.mark.parametrize("column", [[], [None], [1, 2.5, "x"], [0, 0.0, "", float("nan"), None],
                                    [float("nan")] * 3, (1, None), (1, 2)])
def test_has_none_answers_as_in_does(column):
    """The folds' and filters' `None in column`, by identity in C."""
    assert compiled._split.has_none(column) == (None in column)


@pytest.mark.parametrize("column", [
    [1.5, 2.0, 1.5, -0.0, 0.0], [0.0, -0.0], [200, 404, 200, 302], [200, 2 ** 70],
    [-3, 3, -3], [1, 1.0], [float("nan")] * 2, [float("nan"), float("nan")], [], ["a", "a"],
    [True, 1], [0.001 * k for k in range(300)] * 3, (1, 1), [2 ** 63 - 1, -2 ** 63],
    ["2xx", "3xx", "2xx"], ["".join("ab"), "ab", "c", "ab"], ["a", None, "a"], ["a", 1],
    [str(k) for k in range(600)] + ["1", "2"], ["x"] * 300 + [str(k) for k in range(300)]])
def test_count_values_counts_as_counter_does(column):
    """The folds' count by group and the percentile sketch's distinct values: the same dict,
    same keys (the first object seen of each), same counts, same order."""
    from collections import Counter
    counted, expected = compiled.count_values(column), Counter(column)
    assert list(counted.items()) == list(expected.items())
    assert all(a is b for a, b in zip(counted, expected))


_value = st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True) | st.sampled_from(
    [None, 0, 0.0, -0.0, 1, 1.0, True, "a"])


@settings(max_examples=300, deadline=None)
@given(column=st.lists(st.integers(-5, 5), min_size=1) | st.lists(st.floats(-3, 3), min_size=1)
       | st.lists(_value, min_size=1, max_size=6))
def test_min_max_answers_as_min_and_max_do(column):
    """The times' span and the min and max folds, in one pass in C: the very objects min and
    max return, or the same TypeError (None among the values)."""
    try:
        expected = (min(column), max(column))
    except TypeError:
        with pytest.raises(TypeError):
            compiled.min_max(column)
        return
    got = compiled.min_max(column)
    assert got[0] is expected[0] and got[1] is expected[1]


@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"\n", b"bbbb", b"cc"]), max_size=14).map(b"".join),
       count=st.integers(1, 9))
def test_the_last_lines_of_a_batch_without_splitting_it(data, count):
    """The watermark's look at a batch's last lines (the compiled path does not split the
    batch into lines): the last of the lines the pure path gives, too long ones left out."""
    parser = Parser("in", get_format("nginx_timed"), PARSER_METRICS, 60, 3)
    assert parser._last_lines(data, count) == parser._lines(data)[0][-count:]
