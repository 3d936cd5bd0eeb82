"""A restart resumes from the checkpointed position: the file is found again by identity
among its rotated siblings and finished first, then everything rotated after it; a reused
inode (same device and inode, other first bytes) is not taken for the old file."""
import os

from follow import drain, follower

from plogd.files import FileId, Position, rotated_siblings


def stop_at(f):
    """The position the checkpoint would hold after the last batch read."""
    b = f.last_batch
    f.close()
    return Position(b.file, b.end, b.mtime_ns, b.real_path)


def test_several_rotations_while_stopped(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"a\nb\n")
    f = follower(path)
    assert drain(f) == [b"a", b"b"]
    position = stop_at(f)
    with open(path, "ab") as log:
        log.write(b"c\n")                            # written after the checkpoint
    os.rename(path, tmp_path / "access.log.1")
    path.write_bytes(b"d\n")
    os.rename(tmp_path / "access.log.1", tmp_path / "access.log.2")
    os.rename(path, tmp_path / "access.log.1")
    path.write_bytes(b"e\n")
    (tmp_path / "access.log.3").write_bytes(b"ancient\n")
    os.utime(tmp_path / "access.log.3", (1, 1))      # rotated long before the checkpoint
    assert drain(follower(path, start="end", resume=position)) == [b"c", b"d", b"e"]


def test_resume_in_the_same_file(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n")
    f = follower(path)
    drain(f)
    position = stop_at(f)
    with open(path, "ab") as log:
        log.write(b"b\n")
    assert drain(follower(path, resume=position)) == [b"b"]


def test_resume_from_a_copytruncate_copy(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n")
    f = follower(path)
    drain(f)
    position = stop_at(f)
    with open(path, "ab") as log:
        log.write(b"b\n")
    (tmp_path / "access.log.1").write_bytes(path.read_bytes())   # copy ...
    path.write_bytes(b"c\n")                                     # ... truncate, new lines
    assert drain(follower(path, resume=position)) == [b"b", b"c"]


def test_resume_when_the_file_and_its_path_are_both_gone(tmp_path):
    """Deleted while plogd was stopped, nothing at the path yet: the follower waits for the
    path (it once raised AttributeError here, found by mypy), then reads the new file."""
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n")
    f = follower(path)
    drain(f)
    position = stop_at(f)
    path.unlink()
    f = follower(path, resume=position)
    assert f.poll() == [] and f.poll() == []
    path.write_bytes(b"b\n")
    assert drain(f) == [b"b"]


def test_reused_inode_is_not_the_old_file(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"new file, new content\n")
    st = os.stat(path)
    position = Position(FileId(st.st_dev, st.st_ino, 9, "0" * 40), 5, 0, str(path))  # other bytes
    assert drain(follower(path, resume=position)) == [b"new file, new content"]


def test_symlink_flipped_while_stopped(tmp_path):
    """The checkpointed file was a symlink's target, which is no rotated sibling."""
    (tmp_path / "day1.log").write_bytes(b"1\n")
    link = tmp_path / "access.log"
    link.symlink_to(tmp_path / "day1.log")
    f = follower(link)
    assert drain(f) == [b"1"]
    position = stop_at(f)
    with open(tmp_path / "day1.log", "ab") as day1:
        day1.write(b"2\n")
    (tmp_path / "day2.log").write_bytes(b"3\n")
    link.unlink()
    link.symlink_to(tmp_path / "day2.log")
    assert drain(follower(link, resume=position)) == [b"2", b"3"]


def test_a_rotation_while_a_restart_looks_for_the_rotated_files_loses_none(tmp_path,
                                                                          monkeypatch):
    """logrotate at work while a restart lists the files rotated after the checkpointed
    one: .1 (the checkpointed file) moved to .2 before the listing, the path's file to .1
    after it. The file renamed is read all the same."""
    from plogd.stages import read
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n")
    f = follower(path)
    drain(f)
    position = stop_at(f)
    with open(path, "ab") as log:
        log.write(b"b\n")
    os.rename(path, tmp_path / "access.log.1")       # rotated while plogd was stopped
    path.write_bytes(b"c\n")
    listings = []

    def rotating_around_the_second_listing(p):
        second = len(listings) == 1    # the look for the files rotated after the checkpointed
        if second:
            os.rename(tmp_path / "access.log.1", tmp_path / "access.log.2")
        listings.append(rotated_siblings(p))
        if second:
            os.rename(path, tmp_path / "access.log.1")
            path.write_bytes(b"d\n")
        return listings[-1]

    monkeypatch.setattr(read, "rotated_siblings", rotating_around_the_second_listing)
    assert drain(follower(path, resume=position)) == [b"b", b"c", b"d"]
