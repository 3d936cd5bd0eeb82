"""Small helpers shared by the tests: run the real `plogd` command, read result records."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def plogd(*args: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run `python -m plogd ARGS` from this checkout; returns the completed process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "plogd", *args], capture_output=True,
                            timeout=timeout, env=env, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"plogd {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stderr.decode(errors='replace')}")
    return result


def read_records(data: bytes | str | Path) -> list[dict]:
    if isinstance(data, Path):
        data = data.read_bytes()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def totals(records: list[dict]) -> dict[str, float]:
    """Per key, the sum of its values over every window."""
    summed: dict[str, float] = {}
    for r in records:
        summed[r["key"]] = summed.get(r["key"], 0) + r["value"]
    return summed
