"""Small helpers shared by the tests: run the real `plogd` command, read result records."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def plogd(*args: str, check: bool = True, timeout: float = 120, env: dict | None = None,
          **kw) -> subprocess.CompletedProcess:
    """Run `python -m plogd ARGS` from this checkout (`env`: variables to set for it);
    returns the completed process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
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


def mutated_lines(lines: list[bytes], pieces, span: int = 400):
    """A hypothesis strategy: one of `lines`, with up to 4 of `pieces` written over it at
    random places (each replacing 0 to 3 bytes) — valid lines made slightly invalid."""
    from hypothesis import strategies as st

    def mutate(data):
        line, ops = data
        for pos, piece, delete in ops:
            pos %= len(line) + 1
            line = line[:pos] + piece + line[pos + delete:]
        return line
    ops = st.lists(st.tuples(st.integers(0, span), pieces, st.integers(0, 3)), max_size=4)
    return st.tuples(st.sampled_from(lines), ops).map(mutate)


SPLIT_PATHS = ("pure", "compiled")     # the split path in Python, and the compiled speedup


@contextmanager
def split_path(path: str):
    """Batch extractors made inside use the pure-Python split path or the compiled one
    (which must be built: tests/run builds it), as PLOGD_PURE_PYTHON chooses in plogd."""
    from plogd.formats import compiled
    assert path != "compiled" or compiled.built(), \
        "the compiled speedup is not built (apt-get install gcc python3-dev; pip install -e .)"
    before = os.environ.get(compiled.PURE_ENV)
    os.environ[compiled.PURE_ENV] = "1" if path == "pure" else ""
    try:
        yield
    finally:
        if before is None:
            del os.environ[compiled.PURE_ENV]
        else:
            os.environ[compiled.PURE_ENV] = before


def assert_split_path_agrees(fmt, lines: list[bytes], path: str = "pure") -> None:
    """The split path of `fmt` (with and without the batch text) gives the rows the regex,
    the authority, gives line by line, and counts the others as unmatched; the compiled
    path gives exactly what the pure one gives (same values, same order). Checked for every
    field, and for every field but $time_local as text (what metrics ask for: the compiled
    path leaves $time_local as text to the pure one)."""
    every = list(fmt.fields)
    for names in (every, [n for n in every if n != "time_local"]):
        with split_path(path):
            extract = fmt.batch_extractor(names)
            columns, unmatched = extract(lines)
            # given the text of the batch (as the parser does): the same
            assert fmt.batch_extractor(names)(lines, b"\n".join(lines)) == (columns, unmatched)
        if path != "pure":
            assert getattr(extract, "compiled", False) == (
                fmt._fast_layout is not None and "time_local" not in names)
            with split_path("pure"):
                assert fmt.batch_extractor(names)(lines) == (columns, unmatched)
        split_rows = sorted(map(repr, zip(*(columns[n] for n in names))))
        regex = fmt._regex_extractor(names)
        authority = [row for row in map(regex, lines) if row is not None]
        assert split_rows == sorted(map(repr, authority))
        assert unmatched == len(lines) - len(authority)


# whole folders: plogd processes killed, signalled or daemonized (multiprocess, torture,
# hostile), real nginx/Apache/logrotate (realservers), the real Zabbix (integration), the
# daemon into real metrics servers (outputs_e2e)
INTEGRATION_FOLDERS = {"integration", "multiprocess", "torture", "realservers", "hostile",
                       "outputs_e2e"}
