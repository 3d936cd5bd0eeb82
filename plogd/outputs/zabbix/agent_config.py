"""Zabbix settings from the agent's configuration (`zabbix.agent_config`), so that plogd
reports as the agent's host, to the agent's server, with the agent's encryption:

    ServerActive=zbx.example.com:10051     -> the servers (every node; see below)
    Hostname=web01                         -> host (default: this machine's hostname)
    TLSConnect=psk|cert|unencrypted, TLSPSKIdentity, TLSPSKFile,
    TLSCAFile, TLSCertFile, TLSKeyFile     -> the TLS settings

`ServerActive` may list several servers (`a,b`: each gets every value, as the agent does) and
HA cluster nodes (`a;b`: the first node that accepts the connection takes the values).
`Include=` lines (a file, a directory or a glob) are followed, as the agent does.
Works for zabbix_agentd.conf and zabbix_agent2.conf alike.
"""
from __future__ import annotations

import glob
import os
import socket
from dataclasses import dataclass

from ...conffile import ConfFileError, read_text
from .transport import TLSConfig


class AgentConfigError(Exception):
    """A problem with the agent configuration file, naming the file and line."""


@dataclass
class AgentSettings:
    server: str | None           # the first node of ServerActive
    port: int | None
    host: str | None
    tls: TLSConfig | None
    path: str
    clusters: list[list[tuple[str, int]]] | None = None   # every node of ServerActive


def _lines(path: str, depth: int = 0):
    if depth > 10:
        raise AgentConfigError(f"{path}: Include= nested more than 10 levels")
    try:
        text = read_text(path, "the Zabbix agent configuration")
    except ConfFileError as e:
        raise AgentConfigError(str(e)) from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise AgentConfigError(f"{path}:{number}: found {line!r}; expected Key=Value")
        key, value = (part.strip() for part in line.split("=", 1))
        if key == "Include":
            target = value
            if os.path.isdir(target):
                target = os.path.join(target, "*")
            for included in sorted(glob.glob(target)):
                if os.path.isfile(included):
                    yield from _lines(included, depth + 1)
            continue
        yield path, number, key, value


def parse_clusters(value: str, where: str) -> list[list[tuple[str, int]]]:
    """ServerActive as (host, port) nodes: `a;b,c` -> [[a, b], [c]] (`,` separates servers
    that each get every value, `;` the nodes of one HA cluster). A node is `host`,
    `host:port`, `[v6]:port` or a bare IPv6 address."""
    if not value.strip():
        raise AgentConfigError(f"{where}: ServerActive is empty")
    return [[_parse_node(node.strip(), where) for node in cluster.split(";")]
            for cluster in value.split(",")]


def _parse_node(node: str, where: str) -> tuple[str, int]:
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif node.count(":") == 1:
        host, port = node.split(":")
    else:
        host, port = node, ""          # a name, an IPv4 address or a bare IPv6 address
    if not host:
        raise AgentConfigError(f"{where}: ServerActive: an empty server or node; expected "
                               "host[:port] separated by ',' (servers) or ';' (HA nodes)")
    try:
        number = int(port) if port else 10051
    except ValueError:
        raise AgentConfigError(f"{where}: ServerActive: found port {port!r}; expected a "
                               "number") from None
    if not 0 < number < 65536:
        raise AgentConfigError(f"{where}: ServerActive: port {number} is not 1 to 65535")
    return host, number


def read_agent_config(path: str) -> AgentSettings:
    values: dict[str, tuple[str, str]] = {}
    for file, number, key, value in _lines(path):
        values[key] = (value, f"{file}:{number}")      # the last one wins, as in the agent
    server = port = clusters = None
    if "ServerActive" in values:
        clusters = parse_clusters(*values["ServerActive"])
        server, port = clusters[0][0]
    host = values.get("Hostname", (None, ""))[0]
    if host:
        host = host.split(",")[0].strip()   # agent 2 allows a list; the first is the host
    tls = None
    connect = values.get("TLSConnect", ("unencrypted", ""))[0]
    if connect not in ("unencrypted", "psk", "cert"):
        raise AgentConfigError(f"{values['TLSConnect'][1]}: TLSConnect: found {connect!r}; "
                               "allowed: unencrypted, psk, cert")
    if connect != "unencrypted":
        def get(k):
            return values.get(k, (None, ""))[0]
        tls = TLSConfig(connect, ca_file=get("TLSCAFile"), cert_file=get("TLSCertFile"),
                        key_file=get("TLSKeyFile"), psk_identity=get("TLSPSKIdentity"),
                        psk_file=get("TLSPSKFile"))
    return AgentSettings(server=server, port=port, host=host or None, tls=tls, path=path,
                         clusters=clusters)


def default_host() -> str:
    return socket.gethostname()
