"""`time_format:` for regex inputs: any strftime layout (names in a locale, fractional
seconds, %z) or a named one (iso8601, epoch, epoch_ms, clf), `timezone:` for times without
an offset, `time_field:` for the group's name; a layout that does not fit the input's file
is refused at start-up with the line and the column."""
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings, strategies as st

from helpers import plogd, read_records, totals
from plogd.config import ConfigError, load
from plogd.formats.strftime import TimeLayout, time_names

ZONES = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"),
         ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe")]     # +5:30; a 30 min DST
# (layout for time_format, how to write an instant in it)
LAYOUTS = {
    "%Y-%m-%d %H:%M:%S": None,
    "%d/%b/%Y:%H:%M:%S %z": None,
    "%a %b %d %H:%M:%S.%f %Y": None,                      # Apache 2.4's error log
    "%Y-%m-%dT%H:%M:%S.%f%z": None,
    "%m/%d/%y %I:%M:%S %p": None,
    "%A, %d %B %Y %H:%M:%S": None,
    "%Y%m%d%H%M%S": None,
    "%s": lambda moment: str(math.floor(moment.timestamp())),   # strftime("%s") ignores tzinfo
    "clf": lambda moment: moment.strftime("%d/%b/%Y:%H:%M:%S %z"),
    "iso8601": lambda moment: moment.isoformat(),
    "epoch": lambda moment: f"{math.floor(moment.timestamp())}.{moment.microsecond:06d}",
    "epoch_ms": lambda moment: str(math.floor(moment.timestamp() * 1000)),
}
WITH_OFFSET = {"%d/%b/%Y:%H:%M:%S %z", "%Y-%m-%dT%H:%M:%S.%f%z", "%s", "clf", "iso8601", "epoch",
               "epoch_ms"}


@settings(max_examples=400, deadline=None)
# (up to 2068: a two-digit year, %y, is 1969-2068 as POSIX reads it)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2068, 12, 31)),
       st.sampled_from(list(LAYOUTS)), st.sampled_from(ZONES), st.booleans())
def test_random_instants_written_in_each_layout_and_zone_parse_back(naive, layout, zone,
                                                                   with_offset):
    moment = naive.replace(tzinfo=UTC).astimezone(zone)
    if layout == "iso8601" and not with_offset:
        text = moment.replace(tzinfo=None).isoformat()       # iso8601 without an offset
    else:
        text = (LAYOUTS[layout] or (lambda m: m.strftime(layout)))(moment)
    if layout not in WITH_OFFSET or text == moment.replace(tzinfo=None).isoformat():
        # a wall time that happens twice (the hour DST ends) cannot tell which: not asked
        assume(moment.replace(fold=0).utcoffset() == moment.replace(fold=1).utcoffset())
    parsed = TimeLayout(layout, zone=zone).epoch(text.encode())
    assert parsed == math.floor(moment.timestamp())


def test_names_in_a_locale_and_a_named_zone():
    german = TimeLayout("%A, %d. %B %Y %H:%M:%S", time_names("de_DE.UTF-8"),
                        ZoneInfo("Europe/Berlin"))
    assert german.epoch("Dienstag, 19. März 2019 01:39:12".encode()) == 1552955952
    with pytest.raises(ValueError):       # the English names are not that locale's
        german.epoch(b"Tuesday, 19. March 2019 01:39:12")


def test_mismatch_says_where_the_time_stops_fitting():
    layout = TimeLayout("%Y-%m-%d %H:%M:%S")
    assert layout.mismatch(b"2024-01-02 03:04:05") is None
    assert layout.mismatch(b"2024/01/02 03:04:05") == \
        "at column 5 of '2024/01/02 03:04:05': expected '-' then %m"
    assert "no date that exists" in layout.mismatch(b"2024-02-30 03:04:05")


ERROR_LOG = b"""\
[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties
[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6
[Sun Dec 04 04:51:08 2005] [notice] jk2_init() Found child 6725 in scoreboard slot 10
[Sun Dec 04 04:51:09 2005] [error] mod_jk child workerEnv in error state 6
[Sun Dec 04 04:52:04 2005] [error] mod_jk child workerEnv in error state 7
"""
CONFIG = """\
inputs:
  - path: {path}
    format: 'regex:\\[(?P<when>[^]]+)\\] \\[(?P<level>\\w+)\\] (?P<message>.*)'
    time_format: '{layout}'
    time_field: when
    timezone: {zone}
    metrics:
      - {{key: "errors[{{level}}]", type: count, by: level}}
"""


def _config(tmp_path, layout="%a %b %d %H:%M:%S %Y", zone="UTC"):
    log = tmp_path / "error.log"
    log.write_bytes(ERROR_LOG)
    path = tmp_path / "plogd.yaml"
    path.write_text(CONFIG.format(path=log, layout=layout, zone=zone))
    return path, log


def test_an_error_log_is_windowed_through_a_regex_with_time_format(tmp_path):
    config, log = _config(tmp_path, zone="America/New_York")
    records = read_records(plogd("replay", "-c", str(config), str(log)).stdout)
    assert totals(records) == {"errors[notice]": 2, "errors[error]": 3}
    # 04:47 in New York (EST, -5) is 09:47 UTC
    assert min(r["clock"] for r in records) == \
        int(datetime(2005, 12, 4, 9, 47, tzinfo=UTC).timestamp())
    check = plogd("check", "-c", str(config)).stdout.decode()
    assert "times without an offset in America/New_York" in check


def test_the_default_zone_is_the_systems_and_check_names_it(tmp_path, monkeypatch):
    config, log = _config(tmp_path, zone="local")
    monkeypatch.setenv("TZ", "Asia/Tokyo")       # the system's zone, for the plogd run
    assert "times without an offset in local (Asia/Tokyo)" in \
        plogd("check", "-c", str(config)).stdout.decode()
    records = read_records(plogd("replay", "-c", str(config), str(log)).stdout)
    # 04:47 in Tokyo (+9) is 19:47 UTC the day before
    assert min(r["clock"] for r in records) == \
        int(datetime(2005, 12, 3, 19, 47, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("change,expected", [
    ({"layout": "%Y-%m-%d %H:%M:%S"}, ":4: inputs[0].time_format: {log} line 1: at column 1 "
     "of 'Sun Dec 04 04:47:44 2005': expected %Y"),
    ({"layout": "%a %b %q"}, ":4: inputs[0].time_format: '%q' is not a time conversion"),
    ({"layout": "%H:%M"}, ":4: inputs[0].time_format: the time format '%H:%M' gives no full "
     "date and time of day"),
    ({"zone": "Mars/Base"}, ":6: inputs[0].timezone: found 'Mars/Base', a zone this machine "
     "does not know; expected a zone name such as Europe/Berlin or UTC, or local"),
])
def test_wrong_time_settings_are_refused_at_start_up(tmp_path, change, expected):
    config, log = _config(tmp_path, **change)
    with pytest.raises(ConfigError) as err:
        load(str(config))
    assert expected.format(log=log) in str(err.value)


def test_time_keys_go_with_a_regex_format_only(tmp_path):
    config, _ = _config(tmp_path)
    text = config.read_text()
    config.write_text(text.replace("time_field: when", "time_field: time"))
    with pytest.raises(ConfigError, match="inputs\\[0\\].time_field: the regex has no group "
                                          "named 'time' for its time; its groups: when"):
        load(str(config))
    config.write_text(text.replace("    time_format: '%a %b %d %H:%M:%S %Y'\n", ""))
    with pytest.raises(ConfigError, match="inputs\\[0\\].timezone: goes with time_format:"):
        load(str(config))
    config.write_text("inputs:\n  - path: x\n    format: nginx_main\n    time_format: clf\n"
                      "    metrics: [{key: n, type: count}]\n")
    with pytest.raises(ConfigError, match="found it with format: 'nginx_main'; time_format: "
                                          "says how a regex: or json format writes its time"):
        load(str(config))
