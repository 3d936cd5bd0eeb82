"""`pytest -m "not integration"` (the quick loop of CONTRIBUTING.md) leaves out the tests that
start processes, real servers or the real Zabbix (tests/conftest.py marks them), and keeps
the others."""
import re
import subprocess
import sys

from helpers import INTEGRATION_FOLDERS, ROOT


def collected(marks: str) -> tuple[list[str], int]:
    """The tests `-m marks` selects, and how many tests there are in all."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "-m", marks], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    summary = re.search(r"^(\d+)/(\d+) tests collected", out, re.M)
    assert summary is not None, out[-500:]
    return [line for line in out.splitlines() if "::" in line], int(summary[2])


def test_the_quick_loop_leaves_out_the_integration_folders_and_marked_tests():
    quick, total = collected("not integration")
    integration, _ = collected("integration")
    folders = {test.split("/")[1] for test in quick if test.count("/") > 1}
    assert "following" in folders and not folders & INTEGRATION_FOLDERS
    assert any(test.startswith("tests/test_filters.py::") for test in quick)
    assert any(test.startswith("tests/integration/test_spool_full.py::") for test in integration)
    marked_here = "tests/test_compiled.py::test_a_failed_build_installs_plogd_in_pure_python"
    assert marked_here in integration and marked_here not in quick
    assert len(quick) + len(integration) == total
