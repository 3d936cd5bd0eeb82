"""A line longer than the cap is counted as too long and skipped; a line longer than a
whole read is dropped as it comes, never held in memory."""
from follow import follower

from plogd.formats import get_format
from plogd.messages import LineBatch
from plogd.metrics import Metric
from plogd.stages.parse import Parser
from plogd.stages.read import CHUNK, LineCutter


def test_cutter_drops_a_tail_longer_than_the_cap():
    c = LineCutter(max_line=10)
    assert c.feed(b"x" * 25) == b"" and c.tail == b"" and c.too_long == 1
    assert c.feed(b"y" * 25) == b"" and c.too_long == 1        # the same line, counted once
    assert c.feed(b"yyy\nok\n") == b"ok\n" and c.take_too_long() == 1


def test_huge_line_in_a_followed_file(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n" + b"z" * (3 * CHUNK) + b"\nb\n")
    f = follower(path, max_line=1000)
    batches = []
    for _ in range(10):
        batches += f.poll()
    data = b"".join(b.data for b in batches)
    assert data == b"a\nb\n"
    assert sum(b.too_long for b in batches) == 1
    assert max(len(b.data) for b in batches) <= CHUNK


def test_parser_counts_complete_lines_over_the_cap():
    parser = Parser("in", get_format("nginx_combined"), [Metric("n", "count")], 60, max_line=20)
    batch = LineBatch("in", 1, "/x", None, b"short\n" + b"l" * 30 + b"\n", 0, 0)
    partial = parser.handle(batch)
    assert (partial.lines, partial.too_long, partial.unmatched) == (2, 1, 1)
