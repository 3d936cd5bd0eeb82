"""Under journald (JOURNAL_STREAM names plogd's stderr) each log line starts with its syslog
priority and carries no timestamp of plogd's (the journal stamps it); elsewhere, lines keep
their timestamp and level name."""
import os
import subprocess
import sys

from helpers import ROOT

SCRIPT = """
import logging
from plogd import log
log.setup("INFO")
logging.getLogger("plogd.x").error("e")
logging.getLogger("plogd.x").warning("w")
logging.getLogger("plogd.x").info("i")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("plogd.x").exception("boom")
"""


def run_logging(tmp_path, journal_stream_of=None):
    out = tmp_path / "stderr"
    with open(out, "wb") as stderr:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("JOURNAL_STREAM", None)
        if journal_stream_of is not None:
            st = os.stat(journal_stream_of)
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, stderr=stderr, check=True)
    return out.read_text().splitlines()


def test_under_journald_lines_carry_priorities_and_no_timestamp(tmp_path):
    lines = run_logging(tmp_path, journal_stream_of=tmp_path / "stderr")
    assert lines[:3] == ["<3>plogd.x: e", "<4>plogd.x: w", "<6>plogd.x: i"]
    assert lines[3] == "<3>plogd.x: boom"
    assert len(lines) > 4 and all(line.startswith("<3>") for line in lines[4:])  # the traceback


def test_elsewhere_lines_keep_timestamp_and_level(tmp_path):
    other = tmp_path / "other"
    other.write_text("")
    for journal in (None, other):          # not set, or naming another file than stderr
        lines = run_logging(tmp_path, journal)
        assert lines[0].endswith(" ERROR plogd.x: e") and lines[0][:4].isdigit()
