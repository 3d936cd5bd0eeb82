"""copytruncate: the file is copied to access.log.1 and truncated in place. The lines the
copy holds after our offset are read from the copy, then the file from its start."""
import shutil

from follow import drain, follower


def test_truncation_reads_the_rest_from_the_copy(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"aaaa\nbbbb\n")
    f = follower(path)
    assert drain(f) == [b"aaaa", b"bbbb"]
    with open(path, "ab") as log:
        log.write(b"cccc\ndd")                      # not read yet when logrotate copies
    shutil.copyfile(path, tmp_path / "access.log.1")
    with open(path, "r+b") as log:
        log.truncate(0)
    with open(path, "ab") as log:
        log.write(b"eeee\n")
    assert drain(f) == [b"cccc", b"dd", b"eeee"]
    assert f.truncations == 1


def test_truncation_without_a_copy_starts_over(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"aaaa\nbbbb\n")
    f = follower(path)
    assert drain(f) == [b"aaaa", b"bbbb"]
    with open(path, "r+b") as log:
        log.truncate(0)
    path.write_bytes(b"c\n")
    assert drain(f) == [b"c"]


def test_truncated_and_rewritten_past_our_offset(tmp_path):
    """The size alone would not show it: the first bytes changed."""
    path = tmp_path / "access.log"
    path.write_bytes(b"aa\n")
    f = follower(path)
    assert drain(f) == [b"aa"]
    path.write_bytes(b"xx\nyy\n")                   # truncated and rewritten, longer
    assert drain(f) == [b"xx", b"yy"]
