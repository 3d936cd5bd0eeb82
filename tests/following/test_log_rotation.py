"""rename + create (logrotate's default, nginx USR1): the old file is finished — including
what the server writes to it after the rename — then the files rotated meanwhile, then the
new file from its start, including what was written to it before plogd noticed."""
import os

from follow import drain, follower


def test_rename_and_create_loses_nothing(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"")
    f = follower(path)
    with open(path, "ab", buffering=0) as old:
        old.write(b"1\n2\n")
        assert drain(f) == [b"1", b"2"]
        old.write(b"3\n")
        os.rename(path, tmp_path / "access.log.1")
        path.write_bytes(b"5\n6\n")              # the new file already has lines
        old.write(b"4\nunterminated")            # the server still writes the old one
        assert drain(f) == [b"3", b"4", b"unterminated", b"5", b"6"]
    assert f.rotations == 1


def test_two_rotations_between_polls(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n")
    f = follower(path)
    assert drain(f) == [b"a"]
    with open(path, "ab") as log:
        log.write(b"b\n")
    os.rename(path, tmp_path / "access.log.1")
    path.write_bytes(b"c\n")
    os.rename(tmp_path / "access.log.1", tmp_path / "access.log.2")
    os.rename(path, tmp_path / "access.log.1")
    path.write_bytes(b"d\n")
    assert drain(f) == [b"b", b"c", b"d"]


def test_compressed_rotations_are_never_read(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n")
    f = follower(path)
    assert drain(f) == [b"a"]
    os.rename(path, tmp_path / "access.log.1.gz")   # as if compressed at once
    (tmp_path / "access.log.2.gz").write_bytes(b"\x1f\x8b binary")
    path.write_bytes(b"b\n")
    assert drain(f) == [b"b"]
