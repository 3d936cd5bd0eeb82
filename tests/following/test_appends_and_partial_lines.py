"""Appended lines are read; a line without its newline waits for it; start: end skips what
was there; a file's last unterminated line counts once when the file is rotated."""
from follow import drain, follower
from hypothesis import given, settings, strategies as st

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



@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.binary(max_size=14).map(lambda b: b.replace(b"\n", b"")),
                      max_size=12),
       cuts=st.lists(st.integers(0, 200), max_size=8), end=st.booleans())
def test_however_a_stream_is_read_its_lines_come_out_once_in_order(lines, cuts, end):
    """The lines come out whole, in order, each once; a line longer than max_line may be
    left out (then it is counted), never cut; the last one without its newline at finish()."""
    data = b"\n".join(lines) + (b"\n" if end and lines else b"")
    c, got = LineCutter(max_line=10), b""
    for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)]):
        got += c.feed(data[a:b])
    got += c.finish()
    def split(text):         # its lines: an empty text after the last newline is none
        return text.split(b"\n")[:-1] + [text.rpartition(b"\n")[2]] * (
            not text.endswith(b"\n"))
    out, left_out = split(got) if got else [], 0
    for line in split(data) if data else []:
        if out and out[0] == line:
            out.pop(0)
        else:
            assert len(line) > 10
            left_out += 1
    assert out == [] and c.take_too_long() == left_out
