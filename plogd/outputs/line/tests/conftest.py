"""The real receivers as fixtures, each started for the test in its own temporary directory
and stopped after it. A missing receiver fails the test (never skips it): install them with
receivers/install.sh."""
import pytest

from .receivers.carbon import Carbon
from .receivers.common import require
from .receivers.influx import Influx


@pytest.fixture
def carbon(tmp_path):
    require("carbon-cache", "whisper-fetch")
    with Carbon(tmp_path / "carbon") as receiver:
        yield receiver


@pytest.fixture
def influx(tmp_path):
    require("influxd")
    with Influx(tmp_path / "influx") as receiver:
        yield receiver
