"""`plogd replay` on real logs equals their ground truth (computed with awk, cross-checked
with grep/sed/bc; see tests/data/logs/*/SOURCE.txt): status counts, bytes, methods, and the
count of every minute, exactly."""
import re
import time

import pytest

from helpers import DATA, plogd, read_records, totals

LOGS = [  # (dataset, file, format)
    ("basjes-small", "access_log", "apache_combined"),
    ("lnav-shop", "logfile_shop_access_log.0", "nginx_main"),
    ("nasa-aug95-repaired", "NASA_access_log_Aug95.repaired", "apache_common"),
]


def truth(dataset: str) -> dict:
    facts = {"status": {}, "method": {}}
    for line in (DATA / "logs" / dataset / "truth.txt").read_text().splitlines():
        if m := re.fullmatch(r"(status|method) (\S+): (\d+)", line):
            facts[m[1]][m[2]] = int(m[3])
        elif m := re.fullmatch(r"(bytes_sum|lines_fit|lines_unfit|lines_read_by_awk): (\d+)", line):
            facts[m[1]] = int(m[2])
    return facts


def per_minute(dataset: str) -> dict[int, int]:
    minutes = {}
    for line in (DATA / "logs" / dataset / "per_minute_utc.tsv").read_text().splitlines():
        stamp, count = line.split("\t")
        minutes[int(time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%MZ")) - time.timezone)] = int(count)
    return minutes


@pytest.mark.parametrize("dataset,name,fmt", LOGS, ids=[d for d, _, _ in LOGS])
def test_replay_equals_truth(dataset, name, fmt, tmp_path):
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
interval: 60
inputs:
  - name: {dataset}
    path: unused
    format: {fmt}
    metrics:
      - {{key: requests, type: count}}
      - {{key: "status[{{status}}]", type: count, by: status}}
      - {{key: "method[{{method}}]", type: count, by: method}}
      - {{key: bytes, type: sum, field: body_bytes_sent}}
""")
    result = plogd("replay", "-c", str(config), str(DATA / "logs" / dataset / name))
    records = read_records(result.stdout)
    expected = truth(dataset)
    got = totals(records)
    print(f"{dataset}: plogd {got}")
    assert got["requests"] == expected["lines_fit"]
    assert got["bytes"] == expected["bytes_sum"]
    assert {k[7:-1]: v for k, v in got.items() if k.startswith("status[")} == expected["status"]
    assert {k[7:-1]: v for k, v in got.items() if k.startswith("method[")} == expected["method"]
    minutes = {r["clock"]: r["value"] for r in records if r["key"] == "requests"}
    assert minutes == per_minute(dataset)
    unmatched = int(re.search(rb"(\d+) unmatched", result.stderr)[1])
    assert unmatched == expected["lines_unfit"]
