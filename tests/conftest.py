"""Shared fixtures and the `integration` mark. `zabbix` starts the real Zabbix testbed
(tests/zabbix/start-zabbix.sh) once per session; a test that asks for it fails, never skips,
when it cannot start.

`pytest -m "not integration"` is the quick loop: it leaves out the tests that start
long-running processes or daemons, real servers, the real Zabbix, or build wheels. They are
marked here by folder, and by the `zabbix` fixture wherever a test is; a test elsewhere that
starts such a process carries `@pytest.mark.integration` itself."""
from pathlib import Path

import pytest

from helpers import INTEGRATION_FOLDERS
from zabbix_fixture import Testbed, start_testbed

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def zabbix() -> Testbed:
    return start_testbed()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) \
            else None
        if folder in INTEGRATION_FOLDERS or "zabbix" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
