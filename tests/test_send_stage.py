"""The send stage (plogd.pipeline): outputs that end on an error end it, and the runner's
loop sees the error; it is not left waiting for a stop that nobody will give."""
import time

import pytest

from plogd import config as config_module
from plogd import spool
from plogd.pipeline import OutputsThread


def test_outputs_that_end_on_an_error_end_the_thread_and_say_why(tmp_path, monkeypatch):
    path = tmp_path / "plogd.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\n"
                    "outputs: [{type: line, url: 'udp://127.0.0.1:9', format: json}]\n"
                    "inputs: [{path: /x, format: nginx_combined, "
                    "metrics: [{key: r, type: count}]}]\n")
    config = config_module.load(str(path))
    (tmp_path / "state").mkdir()

    def broken(*_):
        raise RuntimeError("housekeeping broke")
    monkeypatch.setattr(spool, "remove_passed", broken)
    outputs = OutputsThread(config)
    deadline = time.monotonic() + 10
    while outputs._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not outputs._thread.is_alive(), "the send stage waits for a stop for ever"
    with pytest.raises(RuntimeError, match="housekeeping broke"):
        outputs.check()
