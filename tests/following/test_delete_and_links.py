"""delete + recreate, a symlink whose target changes, a hard link re-pointed (ln -f, as the
original Plog rotated): the old file is finished, the new one read from its start."""
import os

from follow import drain, follower

from plogd.files import Position
from plogd.stages.read import split_lines


def test_delete_then_recreate(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"1\n")
    f = follower(path)
    with open(path, "ab", buffering=0) as old:
        assert drain(f) == [b"1"]
        old.write(b"2\n")
        os.unlink(path)
        old.write(b"3\n")                           # written after the delete
        assert drain(f) == [b"2", b"3"]
        path.write_bytes(b"4\n")
        assert drain(f) == [b"4"]
    assert f.rotations == 1


def test_symlink_target_changes(tmp_path):
    (tmp_path / "a.log").write_bytes(b"a1\n")
    link = tmp_path / "current.log"
    link.symlink_to(tmp_path / "a.log")
    f = follower(link)
    assert drain(f) == [b"a1"]
    with open(tmp_path / "a.log", "ab") as a:
        a.write(b"a2\n")
    (tmp_path / "b.log").write_bytes(b"b1\n")
    tmp = tmp_path / "tmp.link"
    tmp.symlink_to(tmp_path / "b.log")
    os.replace(tmp, link)                            # atomic flip
    assert drain(f) == [b"a2", b"b1"]


def test_hard_link_repointed(tmp_path):
    path = tmp_path / "access.log"
    (tmp_path / "day1.log").write_bytes(b"d1\n")
    os.link(tmp_path / "day1.log", path)
    f = follower(path)
    assert drain(f) == [b"d1"]
    (tmp_path / "day2.log").write_bytes(b"d2\n")
    with open(tmp_path / "day1.log", "ab") as d1:
        d1.write(b"d1 late\n")
    tmp = tmp_path / "access.tmp"
    os.link(tmp_path / "day2.log", tmp)
    os.replace(tmp, path)                            # ln -f day2.log access.log
    assert drain(f) == [b"d1 late", b"d2"]


def flip(link, target):
    tmp = link.parent / "tmp.link"
    tmp.symlink_to(target)
    os.replace(tmp, link)


def test_a_target_the_symlink_left_while_plogd_was_behind_is_read(tmp_path):
    # plogd busy with a big file (more than one read) while the link flips twice: the
    # middle target is no rotated sibling, and is no longer at the path when plogd gets
    # to the end of the big file; it is queued when seen
    big = [b"a%d" % i + b"x" * 100 for i in range(30_000)]     # about 3 MB
    (tmp_path / "a.log").write_bytes(b"\n".join(big) + b"\n")
    link = tmp_path / "current.log"
    link.symlink_to(tmp_path / "a.log")
    f = follower(link)
    batches = f.poll()                               # the first megabyte of a.log
    (tmp_path / "b.log").write_bytes(b"b1\n")
    flip(link, tmp_path / "b.log")
    batches += f.poll()                              # further into a.log
    (tmp_path / "c.log").write_bytes(b"c1\n")
    flip(link, tmp_path / "c.log")
    lines = [line for b in batches for line in split_lines(b.data)] + drain(f)
    assert lines == big + [b"b1", b"c1"]


def position_of(b):
    """What the checkpoint holds after the batch `b`."""
    return Position(b.file, b.end, b.mtime_ns, b.real_path, b.upcoming, b.in_long_line)


def test_a_restart_finds_the_target_the_symlink_left_while_plogd_was_behind(tmp_path):
    big = [b"a%d" % i + b"x" * 100 for i in range(30_000)]
    (tmp_path / "a.log").write_bytes(b"\n".join(big) + b"\n")
    link = tmp_path / "current.log"
    link.symlink_to(tmp_path / "a.log")
    f = follower(link)
    batches = f.poll()
    (tmp_path / "b.log").write_bytes(b"b1\n")
    flip(link, tmp_path / "b.log")
    batches += f.poll()
    (tmp_path / "c.log").write_bytes(b"c1\n")
    flip(link, tmp_path / "c.log")
    # killed here: the last batch is what the checkpoint holds
    last = batches[-1]
    f.close()
    resumed = follower(link, resume=position_of(last))
    lines = [line for b in batches for line in split_lines(b.data)] + drain(resumed)
    assert lines == big + [b"b1", b"c1"]
