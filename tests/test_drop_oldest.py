"""`on_full: drop_oldest` with a small `max_backlog`: the oldest records are skipped until
about half the bound is left (not the whole backlog), counted exactly, and an output that
is down stays down after a drop until an exchange with it succeeds."""
import asyncio

import pytest

from plogd import spool
from plogd.outputs.base import Output, OutputContext, OutputDown
from plogd.outputs.runner import OutputRunner


def write(path, n: int, first: int = 0) -> None:
    writer = spool.SpoolWriter(str(path))
    writer.append([{"host": "h", "key": "k", "clock": 1000 + first + i, "ns": 0, "value": 100}
                   for i in range(n)])            # records of one size
    writer.close()


def test_skip_oldest_leaves_about_half_the_bound(tmp_path):
    results = tmp_path / "results.jsonl"
    write(results, 100)
    size = results.stat().st_size
    record = size // 100
    cursor, dropped = spool.skip_oldest(str(results), spool.Cursor(), bound=40 * record)
    left = spool.backlog(str(results), cursor)
    assert 20 * record - record < left <= 20 * record
    assert dropped * record == size - left            # every record skipped is counted
    records, _ = spool.SpoolReader(str(results), cursor).read(1000)
    assert [r["clock"] for r in records] == list(range(1100 - len(records), 1100))  # newest


def test_skip_oldest_crosses_rotated_files(tmp_path):
    results = tmp_path / "results.jsonl"
    write(results, 50)
    results.rename(tmp_path / "results.jsonl.1")
    write(results, 50, first=50)
    record = results.stat().st_size // 50
    cursor, dropped = spool.skip_oldest(str(results), spool.Cursor(), bound=20 * record)
    records, _ = spool.SpoolReader(str(results), cursor).read(1000)
    assert dropped + len(records) == 100 and len(records) == 10
    assert records[-1]["clock"] == 1099


class Dead(Output):
    type = "dead"

    async def send(self, records):
        raise OutputDown("refused")


@pytest.mark.parametrize("bound", [4000, 100])   # the second: less than two records
def test_a_drop_while_down_does_not_make_the_output_up(tmp_path, bound):
    results = tmp_path / "results.jsonl"
    write(results, 1)
    runner = OutputRunner(Dead("dead", {}, OutputContext("h", str(tmp_path), 60)),
                          str(results), str(tmp_path), batch_size=10, on_full="drop_oldest",
                          max_backlog=bound, clock=lambda: 1e9)
    asyncio.run(runner.step())
    assert not runner.up                 # the first send failed
    write(results, 99, first=1)          # over the bound: the oldest go
    for _ in range(5):
        runner._retry_at = 0.0           # no backoff wait in the test
        asyncio.run(runner.step())
        assert not runner.up
    assert runner.dropped > 0 and runner.sent == 0
