"""A glob input follows every file it matches (new ones too, from their start), never a
compressed one; the read stage reports what it saw per input (self-observation)."""
import os
import time
from types import SimpleNamespace

from plogd.stages.read import ReadStage, split_lines


def spec(name, path, start="beginning"):
    return SimpleNamespace(name=name, path=str(path), start=start)


def drain(stage):
    lines = []
    for _ in range(20):
        for b in stage.poll():
            lines += split_lines(b.data)
    return lines


def test_glob_follows_matches_new_ones_too_and_skips_compressed(tmp_path):
    (tmp_path / "a.log").write_bytes(b"a1\n")
    (tmp_path / "b.log").write_bytes(b"b1\n")
    (tmp_path / "old.log.gz").write_bytes(b"\x1f\x8b")
    stage = ReadStage([spec("sites", tmp_path / "*.log*")], 1000, {}, first_run=True)
    assert sorted(drain(stage)) == [b"a1", b"b1"]
    (tmp_path / "c.log").write_bytes(b"c1\n")
    stage.RESCAN = 0
    assert drain(stage) == [b"c1"]
    assert stage.stats()["sites"]["files"] == 3


def test_stats_count_rotations_truncations_and_bytes_behind(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"1\n")
    stage = ReadStage([spec("web", path)], 1000, {}, first_run=True)
    drain(stage)                                       # the first poll creates the follower
    for f in stage.followers.values():
        f.rotate_wait = 0
    os.rename(path, tmp_path / "access.log.1")
    path.write_bytes(b"2\n")
    time.sleep(0.05)
    drain(stage)
    with open(path, "r+b") as f:
        f.truncate(0)
    drain(stage)
    with open(path, "ab") as f:
        f.write(b"x" * 5000 + b"\n")
    stats = stage.stats()["web"]
    assert (stats["rotations"], stats["truncations"], stats["missing"]) == (1, 1, 0)
    assert stats["bytes_behind"] == 5001


def test_a_long_backlog_is_reported_until_caught_up(tmp_path, caplog):
    path = tmp_path / "access.log"
    path.write_bytes((b"y" * 99 + b"\n") * 50_000)    # 5 MB
    stage = ReadStage([spec("web", path)], 1000, {}, first_run=True)
    stage.FAR_BEHIND, stage.PROGRESS_EVERY = 1 << 20, 0.0
    caplog.set_level("INFO", logger="plogd.read")
    while drain(stage):
        pass
    said = [r.getMessage() for r in caplog.records if "catching up" in r.getMessage()
            or "caught up" in r.getMessage()]
    assert said[0] == "web: catching up, 4 MB behind"    # after the first 1 MiB read
    assert any("MB/s, done in ~" in line for line in said[1:-1])
    assert said[-1] == "web: caught up"
