"""A batch with an unknown key, sent by the sender stage to the real server: the log names
that key; every other value of the batch is stored, once."""
import time

from zabbix_fixture import append_records, start_sender, stop_sender, wait_sent

HOST = "web01"
ITEMS = {"snd.unknown.a": "uint", "snd.unknown.b": "float"}


def test_unknown_key_is_named_and_the_others_are_stored(tmp_path, zabbix):
    zabbix.reset_trapper_items(HOST, ITEMS)
    zabbix.delete_items(HOST, ["snd.unknown.nope"])
    clock0 = (int(time.time()) // 60 - 100) * 60
    records = []
    for i in range(40):
        clock = clock0 + 60 * i
        records.append({"host": HOST, "key": "snd.unknown.a", "clock": clock, "ns": 0, "value": i})
        records.append({"host": HOST, "key": "snd.unknown.b", "clock": clock, "ns": 0, "value": i / 4})
        if i == 17:
            records.append({"host": HOST, "key": "snd.unknown.nope", "clock": clock, "ns": 0, "value": 1})
    append_records(tmp_path / "results.jsonl", records)
    proc, log = start_sender(tmp_path, zabbix.server, zabbix.port, "--failed-retry-seconds", "3")
    try:
        assert wait_sent(tmp_path, 60)
        a = zabbix.wait_history(HOST, "snd.unknown.a", "uint", 40)
        b = zabbix.wait_history(HOST, "snd.unknown.b", "float", 40)
        time.sleep(12)          # the refused value is retried (5 s), then given up (3 s)
    finally:
        assert stop_sender(proc) == 0
    text = log.read_text()
    print(text)
    assert a == [(clock0 + 60 * i, 0, i) for i in range(40)]
    assert b == [(clock0 + 60 * i, 0, i / 4) for i in range(40)]
    assert "refused 1 value(s), keys: web01:snd.unknown.nope " in text
    assert "snd.unknown.a" not in text and "snd.unknown.b" not in text
    assert "giving up 1 value(s) refused for 3 s, keys: web01:snd.unknown.nope" in text
    assert "Traceback" not in text
