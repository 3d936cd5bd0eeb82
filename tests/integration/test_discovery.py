"""Low-level discovery for a `by:` metric against the real server: statuses appear over
time; the sender announces each new member (full set, separate request) before its values,
the server creates the items from its prototype, and their history equals the truth."""
import time
import uuid

from zabbix_fixture import append_records, start_sender, stop_sender, wait_sent

TEMPLATE = "snd.status[{status}]"


def records(host: str, clock: int, counts: dict[int, int]) -> list[dict]:
    return [{"host": host, "key": f"snd.status[{s}]", "clock": clock, "ns": 0, "value": n,
             "by": "status", "member": str(s), "template": TEMPLATE} for s, n in counts.items()]


def test_statuses_appearing_over_time_are_discovered(tmp_path, zabbix):
    host = f"snd-lld-{uuid.uuid4().hex[:8]}"
    zabbix.create_lld_host(host, "snd.status.discovery", "snd.status[{#STATUS}]")
    results = tmp_path / "results.jsonl"
    clock0 = (int(time.time()) // 60) * 60 - 3600
    truth: dict[int, list] = {}
    proc, log = start_sender(tmp_path, zabbix.server, zabbix.port)
    try:
        for w in range(15):
            counts = {200: 50 + w}
            if w >= 5:
                counts[404] = w
            if w >= 10:
                counts[500] = 1 + w % 3
            for s, n in counts.items():
                truth.setdefault(s, []).append((clock0 + 60 * w, 0, n))
            append_records(results, records(host, clock0 + 60 * w, counts))
            time.sleep(1)
        assert wait_sent(tmp_path, 30)
        stored = {}
        for s, rows in truth.items():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    stored[s] = zabbix.wait_history(host, f"snd.status[{s}]", "uint", len(rows), 5)
                    if len(stored[s]) >= len(rows):
                        break
                except LookupError:    # not discovered yet
                    time.sleep(1)
    finally:
        assert stop_sender(proc) == 0
        text = log.read_text()
        print(text)
        try:
            keys = sorted(zabbix.items_of(host, "snd.status"))
        finally:
            zabbix.delete_host(host)
    assert keys == ["snd.status.discovery", "snd.status[200]", "snd.status[404]", "snd.status[500]"] \
        or keys == ["snd.status[200]", "snd.status[404]", "snd.status[500]"]
    for s, rows in truth.items():
        assert stored.get(s) == rows, s
    assert text.count(f"discovery {host}:snd.status.discovery") == 3   # 200, +404, +500
    assert "giving up" not in text and "Traceback" not in text
