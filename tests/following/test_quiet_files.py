"""Idle files cost next to nothing: the read stage polls a file quiet at its end only when
its directory has news (inotify, plogd.dirwatch) or every FULL_POLL_EVERY seconds; what it
reads is still decided by polling, so appends, rotations and new files are read as before."""
import os
from types import SimpleNamespace

from plogd import dirwatch
from plogd.stages.read import ReadStage, split_lines


def spec(name, path, start="beginning"):
    return SimpleNamespace(name=name, path=str(path), start=start)


def counting(stage):
    """Counts the polls of each follower: {(input, path): calls}."""
    calls = {}
    for key, follower in stage.followers.items():
        def poll(poll=follower.poll, key=key):
            calls[key] = calls.get(key, 0) + 1
            return poll()
        follower.poll = poll
    return calls


def lines(batches):
    return [line for b in batches for line in split_lines(b.data)]


def quiet_stage(tmp_path, n=3):
    paths = [tmp_path / f"site{i}.log" for i in range(n)]
    for path in paths:
        path.write_bytes(b"old\n")
    stage = ReadStage([spec(f"site{i}", p) for i, p in enumerate(paths)], 1000, {},
                      first_run=True)
    assert lines(stage.poll()) == [b"old"] * n
    stage.poll()               # each at its end: quiet from now on
    return stage, paths


def test_quiet_files_are_not_polled_until_their_directory_has_news(tmp_path):
    stage, paths = quiet_stage(tmp_path)
    calls = counting(stage)
    for _ in range(5):
        assert stage.poll() == []
    assert calls == {} and stage.idle
    with open(paths[1], "ab") as f:
        f.write(b"new\n")
    assert lines(stage.poll()) == [b"new"]      # at the next poll, as without inotify


def test_every_file_is_polled_every_full_poll_period_news_or_not(tmp_path, monkeypatch):
    """A network file system sends no news of another host's writes."""
    clock = [1000.0]
    monkeypatch.setattr(dirwatch.time, "monotonic", lambda: clock[0])
    stage, _ = quiet_stage(tmp_path)
    calls = counting(stage)
    clock[0] += dirwatch.FULL_POLL_EVERY - 0.1
    stage.poll()
    assert calls == {}
    clock[0] += 0.2
    stage.poll()
    assert sorted(calls.values()) == [1, 1, 1]


def test_rotation_and_a_new_file_are_read_at_the_next_polls(tmp_path):
    stage, paths = quiet_stage(tmp_path)
    for follower in stage.followers.values():
        follower.rotate_wait = 0
    with open(paths[0], "ab") as f:
        f.write(b"last\n")
    os.rename(paths[0], tmp_path / "site0.log.1")
    paths[0].write_bytes(b"first\n")
    got = []
    for _ in range(5):
        got += lines(stage.poll())
    assert got == [b"last", b"first"]


def test_a_directory_made_later_is_watched_once_it_exists(tmp_path):
    path = tmp_path / "later" / "access.log"
    stage = ReadStage([spec("web", path)], 1000, {}, first_run=True)
    assert stage.poll() == []
    path.parent.mkdir()
    path.write_bytes(b"one\n")
    assert lines(stage.poll()) == [b"one"]      # missing: polled each time
    stage.poll()
    calls = counting(stage)
    assert stage.poll() == [] and calls == {}   # now quiet, its directory watched
    with open(path, "ab") as f:
        f.write(b"two\n")
    assert lines(stage.poll()) == [b"two"]


def test_a_directory_deleted_and_made_again_is_watched_again(tmp_path):
    path = tmp_path / "logs" / "access.log"
    path.parent.mkdir()
    path.write_bytes(b"one\n")
    stage = ReadStage([spec("web", path)], 1000, {}, first_run=True)
    assert lines(stage.poll()) == [b"one"]
    stage.poll()
    stage.followers["web", str(path)].rotate_wait = 0
    path.unlink()
    path.parent.rmdir()
    for _ in range(3):
        stage.poll()
    path.parent.mkdir()
    path.write_bytes(b"two\n")
    got = []
    for _ in range(3):
        got += lines(stage.poll())
    assert got == [b"two"]
    stage.poll()
    calls = counting(stage)
    assert stage.poll() == [] and calls == {}
    with open(path, "ab") as f:
        f.write(b"three\n")
    assert lines(stage.poll()) == [b"three"]


def test_without_inotify_every_file_is_polled_each_time(tmp_path, monkeypatch, caplog):
    def refused(*args, **kwargs):
        raise OSError(24, "Too many open files")
    monkeypatch.setattr(dirwatch, "Inotify", refused)
    caplog.set_level("INFO", logger="plogd.read")
    stage, paths = quiet_stage(tmp_path)
    assert "no inotify (Too many open files)" in caplog.text
    calls = counting(stage)
    stage.poll()
    assert sorted(calls.values()) == [1, 1, 1]


def test_the_watch_is_one_inotify_instance_closed_with_the_stage(tmp_path):
    stage, _ = quiet_stage(tmp_path)
    fd = stage._watch._inotify.fd
    assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    stage.close()
    assert not os.path.exists(f"/proc/self/fd/{fd}")


def test_a_stage_dropped_without_close_leaves_no_inotify_behind(tmp_path):
    """Each inotify instance counts against a small per-user limit (128 by default)."""
    import gc
    stage, _ = quiet_stage(tmp_path)
    fd = stage._watch._inotify.fd
    del stage
    gc.collect()
    assert not os.path.exists(f"/proc/self/fd/{fd}") or \
        os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify"
