"""The first unmatched line of each input is logged once per interval: cut to a safe length,
its control characters escaped (a client writes it), with where it stops matching."""
import logging

from test_windows import FMT, METRICS, line

from plogd.files import FileId
from plogd.messages import LineBatch
from plogd.stages.parse import SAMPLE_BYTES, Parser


def batch(seq, lines):
    return LineBatch("in", seq, "/var/log/x", FileId(1, 2, 0, ""),
                     b"".join(l + b"\n" for l in lines), 0, 0)


def unmatched_messages(caplog):
    return [r.getMessage() for r in caplog.records if "do not match" in r.getMessage()]


def test_first_unmatched_line_is_logged_escaped_cut_and_explained(caplog):
    parser = Parser("in", FMT, METRICS, 60, 65536)
    hostile = b"GARBAGE \x1b[2J\x1b]0;pwned\x07 \xe2\x80\xae\xff" + b"A" * 5000
    with caplog.at_level(logging.WARNING):
        parser.handle(batch(1, [line(1e9), hostile, b"second bad line"]))
    [message] = unmatched_messages(caplog)
    assert "in: 2 line(s) of /var/log/x do not match the format nginx_timed" in message
    assert "GARBAGE" in message and "second bad" not in message       # the first one
    assert not any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 or c == "\u202e" for c in message)
    assert "\\x1b[2J" in message and "\\u202e" in message and "\\xff" in message
    assert f"(cut, {len(hostile)} bytes)" in message and "A" * (SAMPLE_BYTES + 1) not in message
    assert "column 8: expected ' - ' then $remote_user" in message    # as `parse` explains


def test_one_sample_per_input_and_interval(caplog, monkeypatch):
    parser = Parser("in", FMT, METRICS, 60, 65536)
    clock = [1000.0]
    monkeypatch.setattr("plogd.log.time.monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING):
        for seq in range(1, 6):
            parser.handle(batch(seq, [b"bad %d" % seq]))
        clock[0] += 60                                # the next interval
        parser.handle(batch(6, [b"bad 6"]))
    messages = unmatched_messages(caplog)
    assert len(messages) == 2
    assert "'bad 1'" in messages[0]
    assert "'bad 6'" in messages[1]
    assert "(and 4 batch(es) with unmatched lines before)" in messages[1]
