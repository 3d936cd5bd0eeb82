"""Scale-out through a proxy: plogd's sender pointed at a real zabbix-proxy-sqlite3 in active
mode works unchanged, and the values arrive in the server's history."""
import time
import uuid

from zabbix_fixture import append_records, start_sender, stop_sender, wait_sent

HOST = "web-proxy"


def test_values_through_an_active_proxy_arrive_in_the_server(tmp_path, zabbix):
    address, port = zabbix.start_proxy(host=HOST)
    # a new key each run: the proxy accepts it only once it has pulled the new configuration
    KEY = f"snd.proxy.requests[{uuid.uuid4().hex[:8]}]"
    zabbix.reset_trapper_items(HOST, {KEY: "uint"})
    zabbix.wait_proxy_accepts(HOST, KEY, port, value="0")
    clock0 = (int(time.time()) // 60) * 60 - 3600
    records = [{"host": HOST, "key": KEY, "clock": clock0 + 60 * i, "ns": 0, "value": 10 + i}
               for i in range(20)]
    append_records(tmp_path / "results.jsonl", records)
    proc, log = start_sender(tmp_path, address, port)
    try:
        assert wait_sent(tmp_path, 60), log.read_text()
        rows = zabbix.wait_history(HOST, KEY, "uint", len(records), timeout=60)
    finally:
        stop_sender(proc)
        zabbix.delete_items(HOST, [KEY])
    expected = [(r["clock"], 0, r["value"]) for r in records]
    # the probe value (0, now) went to the same item: keep the sender's only
    assert [row for row in rows if row[0] <= clock0 + 60 * 19 and row[2] >= 10] == expected
    assert "Traceback" not in log.read_text()
