"""delete + recreate, a symlink whose target changes, a hard link re-pointed (ln -f, as the
original Plog rotated): the old file is finished, the new one read from its start."""
import os

from follow import drain, follower


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
