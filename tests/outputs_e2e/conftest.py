"""The real receivers of the end-to-end scenarios, each in the test's own temporary
directory, stopped after it; a missing one fails the test, never skips it (install them with
plogd/outputs/line/tests/receivers/install.sh and tests/receivers/install-prometheus.sh).
`zabbix_host`: the scenario's own host on the shared Zabbix testbed, with fresh trapper
items for the truth's keys, deleted after the test."""
import pytest
from e2e_run import HOST, INTERVAL, ZABBIX_ITEMS

from plogd.outputs.line.tests.receivers.carbon import Carbon
from plogd.outputs.line.tests.receivers.common import require
from plogd.outputs.line.tests.receivers.influx import Influx


@pytest.fixture
def carbon(tmp_path):
    require("carbon-cache", "whisper-fetch")
    with Carbon(tmp_path / "carbon", step=INTERVAL) as receiver:   # a point per window
        yield receiver


@pytest.fixture
def influx(tmp_path):
    require("influxd")
    with Influx(tmp_path / "influx") as receiver:
        yield receiver


@pytest.fixture
def zabbix_host(zabbix):
    """The Zabbix testbed, with HOST's trapper items for the truth fresh (empty history)."""
    def fresh(extra: dict[str, str] | None = None):
        zabbix.reset_trapper_items(HOST, {**ZABBIX_ITEMS, **(extra or {})})
        return zabbix
    yield fresh
    zabbix.delete_host(HOST)
