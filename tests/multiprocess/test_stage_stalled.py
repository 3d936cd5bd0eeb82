"""A stage that is alive but makes no progress (SIGSTOP here; a read blocked on a network
file system or a send that never returns in life) is noticed by its missing heartbeats,
logged, told to systemd (STATUS=), and the pipeline restarted from the checkpoint: the
windows still come out exact."""
import os
import signal
import socket
import threading
import time

import pytest
from daemon import (log_text, make_config, make_log, stage_pid, start, stop, truth, wait_for,
                    wait_log)

from plogd.heartbeat import Heartbeats
from plogd.supervisor import _mp


@pytest.mark.parametrize("stage", ["parser 1/2", "writer", "outputs"])
def test_a_stopped_stage_is_detected_and_the_pipeline_restarted(tmp_path, stage, monkeypatch):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    messages = []           # read as they come: the kernel queues only a few datagrams

    def receive():
        while True:
            try:
                messages.append(notify.recv(1000).decode())
            except OSError:         # closed at the end of the test
                return
    threading.Thread(target=receive, daemon=True).start()
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    log = make_log(tmp_path / "access.log", 50_000)
    # a Zabbix that refuses connections: the sender stage exists and retries
    config = make_config(tmp_path, log, extra="stall_timeout: 3\n"
                         "zabbix: {server: 127.0.0.1, port: 9, host: t}")
    expected = truth(config, log)
    proc = start(config, "--multi", "--workers", "2")
    try:
        pid = stage_pid(proc, f"plogd: {stage}")
        os.kill(pid, signal.SIGSTOP)
        wait_log(config, lambda text: f"stage {stage} (no progress for" in text)
        got = wait_for(tmp_path / "state" / "results.jsonl", expected)
    finally:
        code = stop(proc)
    notify.close()
    text = log_text(config)
    assert "stalled; restarting the pipeline from the last checkpoint" in text
    assert any(m.startswith("STATUS=restarting the pipeline (restart 1): stage " + stage)
               and m.endswith(" stalled") for m in messages), messages
    assert got == expected
    assert code == 0


def test_stalled_names_the_stages_silent_past_their_bound():
    beats = Heartbeats(["reader", "writer"], _mp)      # both beat when created
    later = time.monotonic() + 6
    assert beats.stalled({"reader": 10, "writer": 10}, later) == []
    assert [name for name, _ in beats.stalled({"reader": 10, "writer": 5}, later)] == ["writer"]
