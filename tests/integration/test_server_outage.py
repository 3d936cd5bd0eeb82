"""The real zabbix_server is stopped for PLOGD_OUTAGE_SECONDS (default 60) in the middle of
a run while values keep being written, then started again: the sender stage logs the outage
once and the recovery once (not every attempt), and Zabbix history ends equal to the truth —
no value missing, none doubled, delivered oldest first."""
import os
import time

from zabbix_fixture import append_records, start_sender, stop_sender, wait_sent

HOST = "web01"
ITEMS = {"snd.outage.requests": "uint", "snd.outage.rt": "float"}
OUTAGE = float(os.environ.get("PLOGD_OUTAGE_SECONDS", "60"))


def window(clock: int, i: int) -> list[dict]:
    return [{"host": HOST, "key": "snd.outage.requests", "clock": clock, "ns": 0, "value": 100 + i},
            {"host": HOST, "key": "snd.outage.rt", "clock": clock, "ns": 0, "value": i / 8}]


def test_server_stopped_then_started(tmp_path, zabbix):
    zabbix.reset_trapper_items(HOST, ITEMS)
    results = tmp_path / "results.jsonl"
    clock0 = (int(time.time()) // 10) * 10 - 3600
    proc, log = start_sender(tmp_path, zabbix.server, zabbix.port)
    n = 0
    try:
        for _ in range(10):                        # before: delivered as they come
            append_records(results, window(clock0 + 10 * n, n))
            n += 1
        assert wait_sent(tmp_path, 30)
        zabbix.stop_server()
        try:
            outage_end = time.monotonic() + OUTAGE
            while time.monotonic() < outage_end:   # during: the writer goes on writing
                append_records(results, window(clock0 + 10 * n, n))
                n += 1
                time.sleep(2)
        finally:
            zabbix.start_server()
        for _ in range(5):                         # after
            append_records(results, window(clock0 + 10 * n, n))
            n += 1
        assert wait_sent(tmp_path, BACKOFF_MAX_WAIT), "not everything delivered after the outage"
        requests = zabbix.wait_history(HOST, "snd.outage.requests", "uint", n, timeout=60)
        time.sleep(2)
        requests = zabbix.history(HOST, "snd.outage.requests", "uint")
        rt = zabbix.history(HOST, "snd.outage.rt", "float")
    finally:
        zabbix.start_server()
        assert stop_sender(proc) == 0
    text = log.read_text()
    print(text)
    assert requests == [(clock0 + 10 * i, 0, 100 + i) for i in range(n)]
    assert rt == [(clock0 + 10 * i, 0, i / 8) for i in range(n)]
    assert text.count("cannot send to Zabbix") == 1
    assert text.count("reachable again") == 1
    assert "Traceback" not in text


BACKOFF_MAX_WAIT = 60 + 60     # the longest backoff step plus delivery
