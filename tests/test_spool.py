"""The spool read while the writer rotates it (another process in --multi), and the rotated
files removed once every output passed them: nothing lost, nothing read twice, nothing left.
"""
import asyncio
import json
import os

import pytest

from plogd import spool
from plogd.outputs.base import Output, OutputContext
from plogd.outputs.runner import OutputRunner, run_outputs


def rec(clock):
    return {"host": "web01", "key": "a", "clock": clock, "ns": 0, "value": clock}


def append(path, clocks):
    with open(path, "ab") as f:
        f.write(b"".join(spool.encode(rec(c)) for c in clocks))


def rotate(path):
    """What SpoolWriter does past rotate_bytes: results.jsonl -> results.jsonl.N."""
    numbers = [int(p.suffix[1:]) for p in path.parent.glob(path.name + ".*")]
    os.rename(path, f"{path}.{max(numbers, default=0) + 1}")


class RotatingOs:
    """The os module for plogd.spool, with the writer rotating the result file (and
    appending `then` to the new one) right after the `nth` directory listing."""

    def __init__(self, path, nth, then):
        self.result, self.nth, self.then, self.listings = path, nth, then, 0

    def listdir(self, directory):
        names = os.listdir(directory)
        self.listings += 1
        if self.listings == self.nth:
            rotate(self.result)
            append(self.result, self.then)
        return names

    def __getattr__(self, name):
        return getattr(os, name)


def drain(reader):
    clocks = []
    for _ in range(10):
        records, after = reader.read(100)
        reader.advance(after)
        clocks += [r["clock"] for r in records]
    return clocks


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_rotation_during_a_read_of_the_result_file_loses_nothing(tmp_path, monkeypatch, nth):
    path = tmp_path / "results.jsonl"
    append(path, range(0, 6))
    reader = spool.SpoolReader(str(path), spool.Cursor())
    records, after = reader.read(3)
    reader.advance(after)
    monkeypatch.setattr(spool, "os", RotatingOs(path, nth, then=[6, 7]))
    assert [r["clock"] for r in records] + drain(reader) == list(range(8))


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_rotation_while_leaving_a_finished_rotated_file_loses_nothing(tmp_path, monkeypatch,
                                                                        nth):
    path = tmp_path / "results.jsonl"
    append(path, range(0, 3))
    rotate(path)
    append(path, range(3, 6))
    reader = spool.SpoolReader(str(path), spool.Cursor())
    records, after = reader.read(100)             # all of results.jsonl.1
    reader.advance(after)
    monkeypatch.setattr(spool, "os", RotatingOs(path, nth, then=[6, 7]))
    assert [r["clock"] for r in records] + drain(reader) == list(range(8))


def test_a_file_rotated_between_the_look_and_the_listing_is_listed_once(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    append(path, [0])
    inode = os.stat(path).st_ino

    class RotatingBeforeListing(RotatingOs):
        def listdir(self, directory):
            rotate(self.result)
            append(self.result, self.then)
            return os.listdir(directory)

    monkeypatch.setattr(spool, "os", RotatingBeforeListing(path, 1, then=[1]))
    files = spool.result_files(str(path))
    assert [(os.path.basename(p), st.st_ino) for p, st in files] == [("results.jsonl.1", inode)]


class Taking(Output):
    """Takes every batch; sets `stop` (the daemon stopping) at the first one."""
    type = "taking"

    def __init__(self, stop):
        super().__init__("taking", {}, OutputContext("web01", "", 60))
        self.stop, self.clocks = stop, []

    async def send(self, records):
        self.clocks += [r["clock"] for r in records]
        self.stop.set()
        return []


def test_the_rotated_files_the_last_tries_at_a_stop_pass_are_removed(tmp_path):
    path = tmp_path / "results.jsonl"
    append(path, range(0, 3))
    rotate(path)                              # the stop's own writes rotated the file
    append(path, range(3, 5))

    async def main():
        stop = asyncio.Event()
        output = Taking(stop)
        runner = OutputRunner(output, str(path), str(tmp_path), batch_size=3)
        await run_outputs([runner], str(path), stop, poll=0.01)
        return output.clocks

    assert asyncio.run(main()) == list(range(5))
    assert sorted(p.name for p in tmp_path.glob("results.jsonl*")) == ["results.jsonl"]
    saved = json.loads((tmp_path / "output.taking.json").read_text())["cursor"]
    assert saved == {"offset": path.stat().st_size, "inode": path.stat().st_ino}
