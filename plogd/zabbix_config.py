"""Zabbix settings from the agent's configuration (`zabbix.agent_config`), so that plogd
reports as the agent's host, to the agent's server, with the agent's encryption:

    ServerActive=zbx.example.com:10051     -> server, port (the first node; see below)
    Hostname=web01                         -> host (default: this machine's hostname)
    TLSConnect=psk|cert|unencrypted, TLSPSKIdentity, TLSPSKFile,
    TLSCAFile, TLSCertFile, TLSKeyFile     -> the TLS settings

`ServerActive` may list several servers (`a,b`: plogd sends to the first one only) and HA
cluster nodes (`a;b`: also the first; an unreachable node is retried with backoff).
`Include=` lines (a file, a directory or a glob) are followed, as the agent does.
Works for zabbix_agentd.conf and zabbix_agent2.conf alike.
"""
from __future__ import annotations

import glob
import os
import socket
from dataclasses import dataclass

from .conffile import ConfFileError, read_text
from .stages.send import TLSConfig


class AgentConfigError(Exception):
    """A problem with the agent configuration file, naming the file and line."""


@dataclass
class AgentSettings:
    server: str | None
    port: int | None
    host: str | None
    tls: TLSConfig | None
    path: str


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


def parse_server(value: str, where: str) -> tuple[str, int]:
    """The first node of ServerActive: `host`, `host:port`, `[v6]:port`, `a;b,c`."""
    first = value.split(",")[0].split(";")[0].strip()
    if not first:
        raise AgentConfigError(f"{where}: ServerActive is empty")
    if first.startswith("["):
        host, _, rest = first[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif first.count(":") == 1:
        host, port = first.split(":")
    else:
        host, port = first, ""          # a name, an IPv4 address or a bare IPv6 address
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
    server = port = None
    if "ServerActive" in values:
        server, port = parse_server(*values["ServerActive"])
    host = values.get("Hostname", (None, ""))[0]
    if host:
        host = host.split(",")[0].strip()   # agent 2 allows a list; the first is the host
    tls = None
    connect = values.get("TLSConnect", ("unencrypted", ""))[0]
    if connect not in ("unencrypted", "psk", "cert"):
        raise AgentConfigError(f"{values['TLSConnect'][1]}: TLSConnect: found {connect!r}; "
                               "allowed: unencrypted, psk, cert")
    if connect != "unencrypted":
        get = lambda k: values.get(k, (None, ""))[0]
        tls = TLSConfig(connect, ca_file=get("TLSCAFile"), cert_file=get("TLSCertFile"),
                        key_file=get("TLSKeyFile"), psk_identity=get("TLSPSKIdentity"),
                        psk_file=get("TLSPSKFile"))
    return AgentSettings(server=server, port=port, host=host or None, tls=tls, path=path)


def default_host() -> str:
    return socket.gethostname()
