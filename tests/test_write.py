"""The write stage: every record whole, files private, a full disk refused cleanly."""
import errno
import json
import os
import stat

import pytest

from plogd import checkpoint
from plogd.messages import ClosedWindow
from plogd.metrics import Value
from plogd import spool
from plogd.stages.write import WriteStage


def window(start, value=1):
    return ClosedWindow("web", start, [Value("requests", value, "requests")])


def stage(tmp_path):
    return WriteStage(str(tmp_path / "state" / "results.jsonl"),
                      str(tmp_path / "state" / "checkpoint.json"), "web01")


def records(tmp_path):
    """Every line of the result file, each of which must be a whole record."""
    return [json.loads(line) for line in (tmp_path / "state" / "results.jsonl").read_bytes()
            .splitlines()]


def test_a_record_cut_short_is_removed_before_the_next_is_appended(tmp_path):
    """Before: the next record was glued to the fragment, and the sender skipped both."""
    w = stage(tmp_path)
    w.commit([window(60)], {"pos": 1})
    w.close()
    with open(tmp_path / "state" / "results.jsonl", "ab") as f:
        f.write(b'{"host": "web01", "key": "requests", "clo')      # a crash mid-append
    w = stage(tmp_path)
    w.commit([window(120)], {"pos": 2})
    w.close()
    assert [r["clock"] for r in records(tmp_path)] == [60, 120]


def test_a_full_disk_undoes_the_append_and_the_retry_writes_once(tmp_path, monkeypatch):
    w = stage(tmp_path)
    w.commit([window(60)], {"pos": 1})
    real_write, calls = os.write, []

    def write_then_enospc(fd, data):      # half of the records, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(spool.os, "write", write_then_enospc)
    due = [window(120), window(180)]
    with pytest.raises(OSError) as e:
        w.commit(due, {"pos": 3})
    assert spool.disk_full(e.value)
    assert [r["clock"] for r in records(tmp_path)] == [60]          # no fragment left
    assert checkpoint.load(str(tmp_path / "state" / "checkpoint.json")) == {"pos": 1}
    monkeypatch.setattr(spool.os, "write", real_write)

    def save_enospc(path, state):         # the records fit, the checkpoint does not
        raise OSError(errno.ENOSPC, "No space left on device")
    real_save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", save_enospc)
    with pytest.raises(OSError):
        w.commit(due, {"pos": 3})
    monkeypatch.setattr(checkpoint, "save", real_save)
    assert len(w.commit(due, {"pos": 3})) == 2       # the same commit, tried again
    assert [r["clock"] for r in records(tmp_path)] == [60, 120, 180]   # appended once
    assert checkpoint.load(str(tmp_path / "state" / "checkpoint.json")) == {"pos": 3}


def test_results_and_checkpoint_are_0640_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        w = stage(tmp_path)
        w.commit([window(60)], {"pos": 1})
        w.close()
    finally:
        os.umask(old)
    for name in ("results.jsonl", "checkpoint.json"):
        assert stat.S_IMODE(os.stat(tmp_path / "state" / name).st_mode) == 0o640, name
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o750
