"""zabbix.agent_config: plogd takes the Zabbix agent's ServerActive, Hostname and TLS
settings (here certificates, for the testbed's cert-only host web-cert) and its values
arrive in that host's history."""
import time
from pathlib import Path

from plogd.outputs.zabbix.agent_config import read_agent_config
from zabbix_fixture import append_records, start_sender, stop_sender, wait_sent


def test_sender_uses_the_agent_configuration(tmp_path, zabbix):
    tls = Path(zabbix.tls_dir)
    conf = tmp_path / "zabbix_agentd.conf"
    (tmp_path / "zabbix_agentd.d").mkdir()
    (tmp_path / "zabbix_agentd.d" / "tls.conf").write_text(
        f"TLSConnect=cert\nTLSCAFile={tls / 'ca.crt'}\nTLSCertFile={tls / 'client.crt'}\n"
        f"TLSKeyFile={tls / 'client.key'}\n")
    conf.write_text(f"Server=127.0.0.1\nServerActive={zabbix.server}:{zabbix.port}\n"
                    f"Hostname=web-cert\nInclude={tmp_path / 'zabbix_agentd.d'}/*.conf\n")
    agent = read_agent_config(str(conf))
    assert agent.host == "web-cert"
    zabbix.reset_trapper_items(agent.host, {"snd.agent.requests": "uint"})
    clock0 = (int(time.time()) // 60) * 60 - 3600
    records = [{"host": agent.host, "key": "snd.agent.requests", "clock": clock0 + 60 * i,
                "ns": 0, "value": i} for i in range(6)]
    append_records(tmp_path / "results.jsonl", records)
    # neither --server nor TLS options: all from the agent's configuration
    proc, log = start_sender(tmp_path, None, None, "--agent-config", str(conf))
    try:
        assert wait_sent(tmp_path, 60), log.read_text()
        rows = zabbix.wait_history("web-cert", "snd.agent.requests", "uint", 6)
    finally:
        stop_sender(proc)
    assert rows == [(r["clock"], 0, r["value"]) for r in records]
    assert "refused" not in log.read_text()


def test_every_server_active_node_is_used(tmp_path, zabbix):
    """`a;b`: nodes of one HA cluster, the first that accepts the connection takes the values
    (here the first node is down); `a,b`: separate servers, each must get every value (here
    the second is down: nothing is taken as sent)."""
    import uuid
    host = f"sender-hardening-ha-{uuid.uuid4().hex[:8]}"
    zabbix.ensure_trapper_items(host, {"snd.ha.requests": "uint"})
    zabbix.reload_config_cache()
    clock0 = (int(time.time()) // 60) * 60 - 3600
    records = [{"host": host, "key": "snd.ha.requests", "clock": clock0 + 60 * i, "ns": 0,
                "value": i} for i in range(3)]
    conf = tmp_path / "zabbix_agentd.conf"
    try:
        conf.write_text(f"ServerActive=127.0.0.1:1;{zabbix.server}:{zabbix.port}\nHostname={host}\n")
        append_records(tmp_path / "results.jsonl", records)
        proc, log = start_sender(tmp_path, None, None, "--agent-config", str(conf))
        try:
            assert wait_sent(tmp_path, 60), log.read_text()
            rows = zabbix.wait_history(host, "snd.ha.requests", "uint", 3)
        finally:
            stop_sender(proc)
        assert rows == [(r["clock"], 0, r["value"]) for r in records]
        assert "cannot send" not in log.read_text()

        conf.write_text(f"ServerActive={zabbix.server}:{zabbix.port},127.0.0.1:1\nHostname={host}\n")
        more = [dict(r, clock=r["clock"] + 600) for r in records]
        append_records(tmp_path / "results.jsonl", more)
        proc, log = start_sender(tmp_path, None, None, "--agent-config", str(conf))
        try:
            assert not wait_sent(tmp_path, 5)
        finally:
            stop_sender(proc)
        assert log.read_text().count("cannot send to Zabbix 127.0.0.1:10051,127.0.0.1:1") == 1
    finally:
        zabbix.delete_host(host)
