"""--single and --multi with 1, 2 and 4 workers write identical result files, on the real
logs and on a generated one, with the compiled speedup and in pure Python
(PLOGD_PURE_PYTHON=1)."""
import shutil

import pytest
from daemon import make_log

from helpers import DATA, plogd

REAL = [("basjes-small/access_log", "apache_combined"),
        ("lnav-shop/logfile_shop_access_log.0", "nginx_main"),
        ("nasa-aug95-repaired/NASA_access_log_Aug95.repaired", "apache_common")]


PURE = {"PLOGD_PURE_PYTHON": "1"}
COMPILED = {"PLOGD_PURE_PYTHON": ""}
MODES = {"--single": COMPILED, "--multi --workers 1": COMPILED, "--multi --workers 2": COMPILED,
         "--multi --workers 4": COMPILED,
         "--single, pure Python": PURE, "--multi --workers 2, pure Python": PURE}


def result_of(tmp_path, log, fmt, mode):
    workdir = tmp_path / mode.replace(" ", "_").replace("-", "").replace(",", "")
    workdir.mkdir()
    config = workdir / "plogd.yaml"
    config.write_text(f"""
state_dir: {workdir / 'state'}
inputs:
  - path: {log}
    format: {fmt}
    start: beginning
    metrics:
      - {{key: n, type: count}}
      - {{key: "status[{{status}}]", type: count, by: status}}
      - {{key: "method[{{method}}]", type: count, by: method}}
      - {{key: bytes, type: sum, field: body_bytes_sent}}
""")
    plogd(*mode.split(",")[0].split(), "--once", "-c", str(config), timeout=120, env=MODES[mode])
    lines = (workdir / "state" / "results.jsonl").read_bytes().splitlines(keepends=True)
    return b"".join(l for l in lines if b'"key": "plogd.' not in l)   # not self-monitoring


@pytest.mark.parametrize("name,fmt", REAL + [("generated", "nginx_timed")],
                         ids=[n.split("/")[0] for n, _ in REAL] + ["generated"])
def test_three_modes_write_identical_results(tmp_path, name, fmt):
    if name == "generated":
        log = make_log(tmp_path / "access.log", 200_000)
    else:
        log = tmp_path / "access.log"
        shutil.copyfile(DATA / "logs" / name, log)
    results = {mode: result_of(tmp_path, log, fmt, mode) for mode in MODES}
    assert results["--single"], "nothing was written"
    for mode, result in results.items():
        assert result == results["--single"], mode
