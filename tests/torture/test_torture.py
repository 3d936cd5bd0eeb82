"""The torture run in CI size (about 30 s): 40,000 lines at 4,000 lines/s, rotated every
1.5 s through all four kinds, plogd killed with SIGKILL 10 times, --single and --multi (the
supervisor killed: its stages die with it). The heavier run (10x the lines, 50 kills) is
`python tests/torture/torture.py --lines 400000 --kills 50 [--mode multi]`."""
import json

import pytest

from torture import run


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_torture_counts_every_line_exactly_once(tmp_path, mode):
    report = run(tmp_path, lines=40_000, kills=10, mode=mode, seed=7)
    print(json.dumps(report, indent=1))
    assert report["kills"] == 10
    assert set(report["rotations"]) == {"rename", "copytruncate", "delete", "symlink"}
    assert report["windows_with_two_values"] == 0
    assert report["status_counted"] == report["status_written"]
    assert report["seq_sum_counted"] == report["seq_sum_written"]
    assert report["lines_counted"] == report["lines_written"] == 40_000
    assert report["exit_code"] == 0
