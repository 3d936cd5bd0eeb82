"""The torture run in CI size (about 30 s): 40,000 lines at 4,000 lines/s, rotated every
1.5 s through all four kinds, plogd killed with SIGKILL 10 times, --single and --multi (the
supervisor killed: its stages die with it), two line outputs (TCP, unix socket) reading the
result file as it rotates. The heavier run (10x the lines, 50 kills) is
`python tests/torture/torture.py --lines 400000 --kills 50 [--mode multi]`."""
import json

import pytest

from torture import OUTPUTS, run


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
    # the result file rotated and its rotated files were removed during the run, none left
    assert report["result_files"] > 3
    assert report["rotated_left_before_stop"] == report["rotated_left_after_stop"] == []
    for name in OUTPUTS:
        out = report["outputs"][name]
        assert out["windows_missing"] == out["windows_extra"] == 0, name
        assert out["windows_with_another_value"] == out["repeats_with_another_value"] == 0, name
        assert out["backlog_before_stop"] == out["backlog_after_stop"] == 0, name
        assert out["exact"], name
    assert report["exact"]
