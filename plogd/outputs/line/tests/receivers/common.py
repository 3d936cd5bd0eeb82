"""What the receiver fixtures share: free ports, waiting on a condition, a daemon process."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nobody listens on now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(probe: Callable[[], T | None], what: str, deadline: float = 30.0,
               process: subprocess.Popen | None = None, log: str = "") -> T:
    """The first true result of `probe()`, polled until `deadline` seconds have passed;
    fails naming `what` (and the process's log file) when it does not come, or when
    `process` exits meanwhile."""
    end = time.monotonic() + deadline
    while True:
        result = probe()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited ({process.returncode}); "
                               f"see {log}")
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not within {deadline} s" + (f"; see {log}" if log else ""))
        time.sleep(0.05)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def require(*commands: str) -> None:
    """Fail the test (never skip it) when a receiver is not installed."""
    import pytest
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run "
                    "plogd/outputs/line/tests/receivers/install.sh as root", pytrace=False)
