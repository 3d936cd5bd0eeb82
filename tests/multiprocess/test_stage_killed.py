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

STAGES = ["reader", "parser 1/2", "parser 2/2", "aggregator", "writer", "outputs"]


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


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stages_die_with_a_killed_supervisor(tmp_path):
    """Nothing else would stop them: orphans would go on reading and writing beside the next
    plogd."""
    log = make_log(tmp_path / "access.log", 20_000)
    config = make_config(tmp_path, log)
    proc = start(config, "--multi", "--workers", "2")
    stages = [stage_pid(proc, f"plogd: {stage}") for stage in STAGES[:-1]]
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while any(map(_running, stages)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in stages if _running(pid)]


def test_a_stage_sent_sigterm_ends_and_is_recovered(tmp_path):
    """Only the supervisor decides to stop; a SIGTERM sent to a stage itself (multiprocessing
    does so when the supervisor exits on an error) ends that stage, it is not swallowed."""
    log = make_log(tmp_path / "access.log", 20_000)
    config = make_config(tmp_path, log)
    expected = truth(config, log)
    proc = start(config, "--multi", "--workers", "2")
    try:
        os.kill(stage_pid(proc, "plogd: parser 1/2"), signal.SIGTERM)
        wait_log(config, lambda text: "stage parser 1/2 (killed by SIGTERM) died" in text)
        got = wait_for(tmp_path / "state" / "results.jsonl", expected)
    finally:
        assert stop(proc) == 0
    assert got == expected
