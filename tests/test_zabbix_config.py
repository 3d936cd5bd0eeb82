"""zabbix.agent_config: ServerActive, Hostname and TLS from the agent's configuration."""
import pytest

from plogd.outputs.zabbix.agent_config import AgentConfigError, parse_clusters, read_agent_config


def test_server_active_hostname_and_psk(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "tls.conf").write_text(
        "TLSConnect=psk\nTLSPSKIdentity=web01-psk\nTLSPSKFile=/etc/zabbix/psk.key\n")
    conf = tmp_path / "zabbix_agentd.conf"
    conf.write_text(f"""# agent
Server=10.0.0.1
ServerActive=zbx1.example.com:10052;zbx2.example.com,other.example.com
Hostname=web01
Include={tmp_path / 'd'}/*.conf
""")
    s = read_agent_config(str(conf))
    assert (s.server, s.port, s.host) == ("zbx1.example.com", 10052, "web01")
    assert s.tls.connect == "psk" and s.tls.psk_identity == "web01-psk"
    assert s.tls.psk_file == "/etc/zabbix/psk.key"


def test_defaults_and_cert(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("ServerActive=127.0.0.1\nTLSConnect=cert\nTLSCAFile=/ca\nTLSCertFile=/c\n"
                    "TLSKeyFile=/k\n")
    s = read_agent_config(str(conf))
    assert (s.server, s.port, s.host) == ("127.0.0.1", 10051, None)
    assert (s.tls.connect, s.tls.ca_file, s.tls.cert_file, s.tls.key_file) == ("cert", "/ca", "/c", "/k")


@pytest.mark.parametrize("value,expected", [
    ("[::1]:10055", [[("::1", 10055)]]), ("::1", [[("::1", 10051)]]), ("zbx", [[("zbx", 10051)]]),
    (" a:1 , b", [[("a", 1)], [("b", 10051)]]),
    ("n1:10051;n2:10052,[::1]:3", [[("n1", 10051), ("n2", 10052)], [("::1", 3)]])])
def test_parse_clusters(value, expected):
    """`,` separates servers that each get every value, `;` the nodes of one HA cluster."""
    assert parse_clusters(value, "f:1") == expected


def test_every_server_active_node_is_kept(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("ServerActive=a;b:1,c\n")
    s = read_agent_config(str(conf))
    assert (s.server, s.port) == ("a", 10051)
    assert s.clusters == [[("a", 10051), ("b", 1)], [("c", 10051)]]
    conf.write_text("ServerActive=a,;b\n")
    with pytest.raises(AgentConfigError, match=r"a.conf:1: ServerActive: an empty server"):
        read_agent_config(str(conf))


def test_errors_name_file_and_line(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("Hostname=x\nServerActive=zbx:port\n")
    with pytest.raises(AgentConfigError, match=r"a.conf:2: ServerActive: found port 'port'"):
        read_agent_config(str(conf))
    conf.write_text("TLSConnect=psq\n")
    with pytest.raises(AgentConfigError, match=r"a.conf:1: TLSConnect: found 'psq'"):
        read_agent_config(str(conf))
    with pytest.raises(AgentConfigError, match="cannot read"):
        read_agent_config(str(tmp_path / "missing.conf"))


def test_config_takes_every_node_unless_server_or_port_is_given(tmp_path):
    from plogd.config import load
    agent = tmp_path / "a.conf"
    agent.write_text("ServerActive=n1;n2:10052,other\nHostname=web01\n")
    base = (f"state_dir: {tmp_path}\ninputs: [{{name: x, path: /x, format: nginx_combined, "
            "metrics: [{key: x.requests, type: count}]}]\n")
    conf = tmp_path / "plogd.yaml"
    conf.write_text(base + f"zabbix: {{agent_config: {agent}}}\n")
    z = load(str(conf)).zabbix
    assert (z.server, z.port) == ("n1", 10051)
    assert z.clusters == [[("n1", 10051), ("n2", 10052)], [("other", 10051)]]
    conf.write_text(base + f"zabbix: {{agent_config: {agent}, server: zbx}}\n")
    assert load(str(conf)).zabbix.clusters is None          # server: given, it alone
