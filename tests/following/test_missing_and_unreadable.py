"""A file that does not exist yet is waited for (and read from its start when it comes);
an unreadable one is reported once and retried. The tests run as root, so the unreadable
case runs the follower in a process without the capabilities that let root read anything
(setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH): a real EACCES."""
import os
import subprocess
import sys
import textwrap

from follow import drain, follower

from helpers import ROOT


def test_missing_file_is_waited_for(tmp_path, caplog):
    path = tmp_path / "later.log"
    f = follower(path, start="end")
    assert drain(f) == [] and drain(f) == []
    assert f.missing == 1                            # reported once, not on every poll
    assert "No such file or directory" in caplog.text
    path.write_bytes(b"first\n")
    assert drain(f) == [b"first"]


def test_permission_denied_is_reported_and_retried(tmp_path):
    path = tmp_path / "secret.log"
    path.write_bytes(b"one\n")
    os.chmod(path, 0o000)
    script = textwrap.dedent(f"""
        import logging, os, sys, time
        logging.basicConfig(level=logging.WARNING)
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests' / 'following')!r}]
        from follow import drain, follower
        f = follower({str(path)!r})
        print(drain(f), f.missing, flush=True)
        sys.stdin.readline()          # the test makes the file readable
        print(drain(f), flush=True)
    """)
    proc = subprocess.Popen(["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
                             sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "[] 1"
    os.chmod(path, 0o644)
    out, err = proc.communicate("go\n", timeout=20)
    assert out.strip() == "[b'one']"
    assert "Permission denied" in err and err.count("cannot read") == 1
