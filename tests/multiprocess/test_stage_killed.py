"""kill -9 of each stage in turn while a 300,000-line log is being processed: the
supervisor notices, logs the cause, restarts the pipeline from the checkpoint, and the
windows written end up equal to the replay of the log — none missing, none with two
values."""
import os
import signal
import time

import pytest
from daemon import (log_text, make_config, make_log, stage_pid, start, stop, truth,
                    wait_for, wait_log)

STAGES = ["reader", "parser 1/2", "parser 2/2", "aggregator", "writer", "zabbix-sender"]


@pytest.mark.parametrize("stage", STAGES)
def test_killed_stage_is_recovered_exactly(tmp_path, stage):
    log = make_log(tmp_path / "access.log", 300_000)
    # a Zabbix that refuses connections: the sender stage exists and retries
    config = make_config(tmp_path, log, extra="zabbix: {server: 127.0.0.1, port: 9, host: t}")
    expected = truth(config, log)
    proc = start(config, "--multi", "--workers", "2")
    try:
        pid = stage_pid(proc, f"plogd: {stage}")
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        # the supervisor notices and restarts before anything else is asked of it
        wait_log(config, lambda text: f"stage {stage} (killed by SIGKILL) died" in text)
        got = wait_for(tmp_path / "state" / "results.jsonl", expected)
    finally:
        code = stop(proc)
    text = log_text(config)
    print(f"{stage}: {len(got)} windows, expected {len(expected)}")
    assert got == expected
    assert code == 0
    assert f"stage {stage} (killed by SIGKILL) died; restarting the pipeline" in text
