"""Appended lines are read; a line without its newline waits for it; start: end skips what
was there; a file's last unterminated line counts once when the file is rotated."""
from follow import drain, follower

from plogd.stages.read import LineCutter


def test_start_end_then_appends_and_a_partial_line(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"old line\n")
    f = follower(path, start="end")
    assert drain(f) == []
    with open(path, "ab", buffering=0) as log:
        log.write(b"new 1\nnew 2\nhal")
        assert drain(f) == [b"new 1", b"new 2"]
        log.write(b"f done\n")
    assert drain(f) == [b"half done"]


def test_offsets_cover_complete_lines_only(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"abc\nde")
    f = follower(path)
    drain(f)
    assert (f.last_batch.start, f.last_batch.end) == (0, 4)


def test_cutter_holds_the_tail():
    c = LineCutter(max_line=10)
    assert c.feed(b"one\ntw") == b"one\n"
    assert c.feed(b"o\n") == b"two\n"
    assert c.feed(b"last") == b"" and c.finish() == b"last"
