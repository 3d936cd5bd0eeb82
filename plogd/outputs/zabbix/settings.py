"""The settings of the Zabbix output, read from the config: the `zabbix:` section or an
entry of `outputs:` of type zabbix (plogd.config's sections name file, line and key)."""
from __future__ import annotations

from ...config import ZabbixConfig, secret_readable_by_others
from .agent_config import AgentConfigError, read_agent_config
from .sender import discovery_key
from .transport import TLS_FIELDS, TLSConfig, TLSConfigError, tls_context

ZABBIX_KEYS = ["server", "port", "host", "agent_config", "tls_connect", "tls_ca_file",
               "tls_cert_file", "tls_key_file", "tls_server_name", "tls_psk_identity",
               "tls_psk_file", "failed_retry_seconds", "lld_member_ttl", "lld_resend_seconds",
               "lld_max_members", "batch_size", "spool_max_bytes", "result_rotate_bytes"]


def parse(section, default_host: str, extra_keys=()) -> ZabbixConfig:
    """The `zabbix:` section (or an output of type zabbix), checked: unknown keys, a port
    out of range, an agent configuration that cannot be read, TLS that cannot work (PSK on
    Python < 3.13, unreadable files) are refused now, not at the first send."""
    section.check_keys(ZABBIX_KEYS + list(extra_keys))
    agent = None
    agent_path = section.get("agent_config", str, None)
    if agent_path is not None:
        try:
            agent = read_agent_config(agent_path)
        except AgentConfigError as e:
            section.fail("agent_config", str(e))
    port = section.positive("port", agent.port if agent and agent.port else 10051)
    if port > 65535:
        section.fail("port", f"found {port}; a port is 1 to 65535")
    tls = agent.tls if agent and "tls_connect" not in section.data else None
    z = ZabbixConfig(
        server=section.get("server", str, agent.server if agent and agent.server else "127.0.0.1"),
        port=port,
        host=section.get("host", str, agent.host if agent and agent.host else default_host),
        agent_config=agent_path,
        tls_connect=section.get("tls_connect", str, tls.connect if tls else "unencrypted",
                                allowed=["unencrypted", "cert", "psk"]),
        failed_retry_seconds=section.positive("failed_retry_seconds", 600),
        lld_member_ttl=section.positive("lld_member_ttl", 7 * 86400),
        lld_resend_seconds=section.positive("lld_resend_seconds", 3600),
        lld_max_members=section.positive("lld_max_members", 1000),
        batch_size=section.positive("batch_size", 1000),
        spool_max_bytes=section.positive("spool_max_bytes", 1 << 30),
        result_rotate_bytes=section.positive("result_rotate_bytes", 64 << 20),
        clusters=agent.clusters if agent and not {"server", "port"} & set(section.data) else None)
    for name in TLS_FIELDS:
        setattr(z, f"tls_{name}", section.get(f"tls_{name}", str, getattr(tls, name, None)))
    secret_readable_by_others(section, "tls_key_file", z.tls_key_file)
    secret_readable_by_others(section, "tls_psk_file", z.tls_psk_file)
    try:
        if (tls_config := tls_of(z)) is not None:
            tls_context(tls_config)      # PSK on Python < 3.13, unreadable files: now, not later
    except TLSConfigError as e:
        section.fail("tls_connect", str(e))
    return z


def tls_of(zabbix) -> TLSConfig | None:
    """TLS settings of a `zabbix:` section (its tls_* keys), if any."""
    connect = getattr(zabbix, "tls_connect", None) or "unencrypted"
    if connect == "unencrypted":
        return None
    return TLSConfig(connect, **{name: getattr(zabbix, f"tls_{name}", None)
                                 for name in TLS_FIELDS})


def check_discovery_keys(config, place) -> None:
    """Two `by:` metrics with one discovery key would overwrite each other's member sets on
    the server. `place(i, j)`: the section of inputs[i].metrics[j], to name a mistake."""
    discovered: dict[str, tuple[str, tuple[int, int]]] = {}  # discovery key -> (metric key, at)
    for i, spec in enumerate(config.inputs):
        for j, metric in enumerate(spec.metrics):
            if metric.by is None:
                continue
            dkey = discovery_key(metric.key, metric.by)
            if dkey in discovered:
                other, at = discovered[dkey]
                first = place(*at)
                place(i, j).fail("key", f"found {metric.key!r}, whose discovery key {dkey} is "
                                 f"that of {other!r} in {first.where} (line "
                                 f"{first.key_line('key')}) too; each by: metric needs its "
                                 "own: give one of them another name before the '['")
            discovered[dkey] = (metric.key, (i, j))
