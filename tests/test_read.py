"""Following files: appended lines, partial lines, over-long lines, a file that appears
later, rename rotation (finish the old file, then the new one from its start) and
copytruncate. Real files, real renames."""
import os

from plogd.stages.read import FileFollower, LineSplitter, read_file


def drain(follower):
    lines = []
    for _ in range(10):
        for batch in follower.poll():
            lines += batch.lines
    return lines


def test_splitter_holds_partial_lines_and_skips_long_ones():
    s = LineSplitter(max_line=10)
    assert s.feed(b"one\ntw") == [b"one"]
    assert s.feed(b"o\n") == [b"two"]
    assert s.feed(b"x" * 25) == [] and s.too_long == 1          # dropped, not buffered
    assert s.tail == b""
    assert s.feed(b"yyy\nshort\n" + b"z" * 11 + b"\nok\n") == [b"short", b"ok"]
    assert s.take_too_long() == 2
    assert s.feed(b"last") == [] and s.finish() == [b"last"]


def test_read_file_counts_the_unterminated_last_line(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"a\nb\nc")
    batches = list(read_file("in", str(path), 100))
    assert [l for b in batches for l in b.lines] == [b"a", b"b", b"c"]


def test_follow_from_end_then_appends_and_partial_lines(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"old line\n")
    follower = FileFollower("in", str(path), "end", 1000)
    assert drain(follower) == []
    with open(path, "ab") as f:
        f.write(b"new 1\nnew 2\nhalf")
        f.flush()
        assert drain(follower) == [b"new 1", b"new 2"]
        f.write(b" done\n")
    assert drain(follower) == [b"half done"]


def test_waits_for_a_missing_file(tmp_path):
    path = tmp_path / "later.log"
    follower = FileFollower("in", str(path), "end", 1000)
    assert drain(follower) == []
    path.write_bytes(b"first\n")      # created after start: read from its start
    assert drain(follower) == [b"first"]


def test_rename_rotation_loses_nothing(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"")
    follower = FileFollower("in", str(path), "beginning", 1000)
    with open(path, "ab", buffering=0) as old:
        old.write(b"1\n2\n")
        assert drain(follower) == [b"1", b"2"]
        old.write(b"3\n")                              # not read yet ...
        os.rename(path, tmp_path / "access.log.1")     # ... when logrotate renames
        old.write(b"4\nunterminated")                  # the server still writes the old file
        path.write_bytes(b"5\n6\n")                    # and the new one already has lines
        lines = drain(follower)
    assert lines == [b"3", b"4", b"unterminated", b"5", b"6"]
    assert follower.rotations == 1


def test_copytruncate_reads_again_from_the_start(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"aaaa\nbbbb\n")
    follower = FileFollower("in", str(path), "beginning", 1000)
    assert drain(follower) == [b"aaaa", b"bbbb"]
    with open(path, "r+b") as f:
        f.truncate(0)
    path.write_bytes(b"c\n")
    assert drain(follower) == [b"c"]
    assert follower.truncations == 1
