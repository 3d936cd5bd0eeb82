"""The real receivers as fixtures, each started for the test in its own temporary directory
and stopped after it. A missing receiver fails the test (never skips it): install them with
receivers/install.sh."""
import shutil

import pytest

from .receivers.carbon import Carbon
from .receivers.influx import Influx


def require(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run "
                    "plogd/outputs/line/tests/receivers/install.sh as root", pytrace=False)


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
