"""systemd/plogd.service passes `systemd-analyze verify`, and its exposure score from
`systemd-analyze security --offline=yes` stays low (printed; 10 is fully exposed)."""
import re
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

UNIT = ROOT / "systemd" / "plogd.service"


def unit_for_this_checkout(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's interpreter (not installed)."""
    plogd = tmp_path / "plogd"
    plogd.write_text(f"#!/bin/sh\nexec {sys.executable} -m plogd \"$@\"\n")
    plogd.chmod(0o755)
    unit = tmp_path / "plogd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/plogd", str(plogd)))
    return unit


def test_unit_verifies(tmp_path):
    result = subprocess.run(["systemd-analyze", "verify", str(unit_for_this_checkout(tmp_path))],
                            capture_output=True, text=True)
    problems = [l for l in result.stderr.splitlines() if "plogd.service" in l]
    assert result.returncode == 0 and not problems, result.stderr


def test_unit_exposure_is_low(tmp_path):
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                             str(unit_for_this_checkout(tmp_path))],
                            capture_output=True, text=True)
    score = float(re.search(r"Overall exposure level for plogd.service: ([\d.]+)",
                            result.stdout)[1])
    print(f"systemd-analyze security: exposure {score}")
    assert score <= 2.0


def test_unit_has_what_the_daemon_relies_on():
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=",
                 "StateDirectory=plogd", "SupplementaryGroups=adm", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes", "RestartPreventExitStatus=2"):
        assert line in text
