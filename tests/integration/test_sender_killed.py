"""The sender stage killed with SIGKILL while a batch is in flight, then started again:
Zabbix history equals the truth — nothing missing, nothing doubled (a re-sent value keeps
its clock and ns, and the server stores an (item, clock, ns) once)."""
import signal
import time

from zabbix_fixture import append_records, sender_offset, start_sender, stop_sender, wait_sent

HOST = "web01"
KEYS = [f"snd.kill.k{i}" for i in range(5)]
WINDOWS = 600


def test_sender_killed_mid_batch_then_restarted(tmp_path, zabbix):
    zabbix.reset_trapper_items(HOST, {k: "uint" for k in KEYS})
    clock0 = (int(time.time()) // 60 - WINDOWS - 10) * 60
    truth = {k: [(clock0 + 60 * w, 0, w * 10 + i) for w in range(WINDOWS)] for i, k in enumerate(KEYS)}
    records = [{"host": HOST, "key": k, "clock": c, "ns": ns, "value": v}
               for w in range(WINDOWS) for k in KEYS for c, ns, v in [truth[k][w]]]
    results = tmp_path / "results.jsonl"
    append_records(results, records)
    size = results.stat().st_size
    # small batches, so that the kill lands between two of them or inside one
    proc, _ = start_sender(tmp_path, zabbix.server, zabbix.port, "--batch-size", "20")
    deadline = time.monotonic() + 30
    while sender_offset(tmp_path) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed_at = sender_offset(tmp_path)
    print(f"killed at offset {killed_at} of {size}")
    assert 0 < killed_at < size, "the kill should land in the middle of the sending"
    proc, log = start_sender(tmp_path, zabbix.server, zabbix.port, "--batch-size", "20")
    try:
        assert wait_sent(tmp_path, 120)
        stored = {k: zabbix.wait_history(HOST, k, "uint", WINDOWS) for k in KEYS}
        time.sleep(2)             # a doubled value would show up now
        stored = {k: zabbix.history(HOST, k, "uint") for k in KEYS}
    finally:
        assert stop_sender(proc) == 0
    for k in KEYS:
        assert stored[k] == truth[k], k
    assert "Traceback" not in log.read_text()


def test_the_real_server_stores_a_duplicate_value_once(zabbix):
    """What makes re-sending harmless, measured on the real server: the same (item, clock,
    ns) sent again is answered "processed" and not stored a second time."""
    key = "snd.kill.dup"
    zabbix.reset_trapper_items(HOST, {key: "uint"})
    clock = (int(time.time()) // 60) * 60 - 600
    sender = zabbix.sender()
    for _ in range(3):
        assert sender.send_value(HOST, key, "7", clock, 0).processed == 1
    rows = zabbix.wait_history(HOST, key, "uint", 1)
    time.sleep(2)
    assert zabbix.history(HOST, key, "uint") == rows == [(clock, 0, 7)]
