"""TLS against the testbed's hosts that accept only that: web-cert (certificate) and web-psk
(pre-shared key, Python >= 3.13); plain text to such a host is reported clearly, and PSK on
an older Python stops at start-up with a clear message."""
import subprocess
import sys
import time
from pathlib import Path

from zabbix_fixture import (ROOT, append_records, python313, start_sender, stop_sender,
                            wait_sent)


def values(host: str, key: str, n: int = 5) -> list[dict]:
    clock0 = (int(time.time()) // 60) * 60 - 3600
    return [{"host": host, "key": key, "clock": clock0 + 60 * i, "ns": 0, "value": i} for i in range(n)]


def run(tmp_path, zabbix, host, key, *args, python=None, expect_stored=True):
    zabbix.reset_trapper_items(host, {key: "uint"})
    recs = values(host, key)
    append_records(tmp_path / "results.jsonl", recs)
    proc, log = start_sender(tmp_path, zabbix.server, zabbix.port, *args, python=python)
    try:
        if expect_stored:
            assert wait_sent(tmp_path, 60), log.read_text()
            rows = zabbix.wait_history(host, key, "uint", len(recs))
        else:
            time.sleep(4)
            rows = zabbix.history(host, key, "uint")
    finally:
        stop_sender(proc)
    text = log.read_text()
    print(text)
    return [(r["clock"], 0, r["value"]) for r in recs], rows, text


def cert_args(zabbix, server_name="localhost"):
    tls = Path(zabbix.tls_dir)
    return ["--tls-connect", "cert", "--tls-ca-file", str(tls / "ca.crt"),
            "--tls-cert-file", str(tls / "client.crt"), "--tls-key-file", str(tls / "client.key"),
            "--tls-server-name", server_name]


def test_certificate(tmp_path, zabbix):
    truth, rows, text = run(tmp_path, zabbix, "web-cert", "snd.tls.cert", *cert_args(zabbix))
    assert rows == truth
    assert "Traceback" not in text and "refused" not in text


def test_certificate_with_the_wrong_server_name_is_reported(tmp_path, zabbix):
    _, rows, text = run(tmp_path, zabbix, "web-cert", "snd.tls.name",
                        *cert_args(zabbix, "not-the-server.example"), expect_stored=False)
    assert rows == []
    assert "cannot send to Zabbix" in text and "TLS handshake" in text
    assert "not-the-server.example" in text


def test_plain_text_to_a_cert_only_host_is_reported(tmp_path, zabbix):
    _, rows, text = run(tmp_path, zabbix, "web-cert", "snd.tls.plain", expect_stored=False)
    assert rows == []
    assert "refused 5 value(s), keys: web-cert:snd.tls.plain" in text
    assert "encryption" in text


def test_psk(tmp_path, zabbix):
    tls = Path(zabbix.tls_dir)
    truth, rows, text = run(tmp_path, zabbix, "web-psk", "snd.tls.psk", "--tls-connect", "psk",
                            "--tls-psk-identity", zabbix.psk_identity,
                            "--tls-psk-file", str(tls / "psk.key"), python=python313())
    assert rows == truth
    assert "Traceback" not in text and "refused" not in text


def test_psk_on_older_python_stops_at_start_up(tmp_path, zabbix):
    if sys.version_info >= (3, 13):
        return          # this Python has PSK: test_psk covers it
    tls = Path(zabbix.tls_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "plogd.outputs.zabbix", "--results", str(tmp_path / "r.jsonl"),
         "--state", str(tmp_path / "s.json"), "--server", zabbix.server, "--port", str(zabbix.port),
         "--tls-connect", "psk", "--tls-psk-identity", "ci-psk", "--tls-psk-file",
         str(tls / "psk.key")], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "needs Python >= 3.13" in proc.stderr
