"""Shared fixtures. `zabbix` starts the real Zabbix testbed (tests/zabbix/start-zabbix.sh)
once per session; a test that asks for it fails, never skips, when it cannot start."""
import pytest

from zabbix_fixture import Testbed, start_testbed


@pytest.fixture(scope="session")
def zabbix() -> Testbed:
    return start_testbed()
