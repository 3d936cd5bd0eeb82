"""The Zabbix output: trapper values through zabbix-utils, with low-level discovery,
retries of refused values, TLS, HA clusters, and the template and provisioning generated from
the same config (template.py, provision.py; `plogd zabbix ...`).

    zabbix: {server: 127.0.0.1, host: web01}     # or, the same, in outputs:
    outputs:
      - {type: zabbix, server: 127.0.0.1, host: web01}

Modules: transport (the protocol, TLS), sender (discovery, retries, once-per-clock),
agent_config (reading a Zabbix agent's configuration), items/template/provision.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import MISSING, fields
from types import SimpleNamespace

from ...config import ZabbixConfig
from ..base import Output, OutputContext, OutputDown
from .sender import ZabbixSender
from .settings import check_discovery_keys, parse, tls_of
from .transport import SendError


def send_state_path(state_dir: str) -> str:
    """The Zabbix sender's state file (totals, retry list, discovery sets) in STATE_DIR."""
    return os.path.join(state_dir, "send.json")


class ZabbixOutput(Output):
    type = "zabbix"
    # the keys of the `zabbix:` section, parsed and checked by plogd.config (ZabbixConfig:
    # agent_config fills in defaults, TLS is tried at start-up)
    OPTIONS = {f.name: None if f.default is MISSING else f.default for f in fields(ZabbixConfig)}

    @classmethod
    def configure(cls, section, host: str, ignore=()) -> dict:
        return vars(parse(section, host, ignore))

    @classmethod
    def check_inputs(cls, config, place) -> None:
        check_discovery_keys(config, place)

    def __init__(self, name: str, options: dict, context: OutputContext):
        super().__init__(name, options, context)
        z = SimpleNamespace(**options)
        self._ticked = -1e18      # when maintenance last ran (monotonic)
        self.sender = ZabbixSender(
            send_state_path(context.state_dir), z.server, z.port, tls_of(z),
            inputs=context.inputs, clusters=z.clusters,
            failed_retry_seconds=z.failed_retry_seconds, lld_member_ttl=z.lld_member_ttl,
            lld_resend_seconds=z.lld_resend_seconds, lld_max_members=z.lld_max_members,
            timeout=getattr(z, "timeout", 10))

    async def send(self, records: list[dict]) -> list[dict]:
        # refused values are the sender's own business: retried while discovery catches up
        await self._call(self.sender.deliver, records)
        return []

    async def tick(self) -> None:
        # retries and discovery re-sends are due seconds apart: no thread 5 times a second
        now = self.sender.clock()
        if now - self._ticked >= 1.0:
            self._ticked = now
            await self._call(self.sender.maintenance)

    @staticmethod
    async def _call(function, *args) -> None:
        try:
            await asyncio.to_thread(function, *args)   # blocking sockets: off the loop
        except SendError as e:
            raise OutputDown(str(e)) from None

    def stats(self) -> dict:
        return self.sender.stats()

    def legacy_cursor(self) -> dict | None:
        return self.sender.legacy_cursor

    def __str__(self) -> str:
        return f"Zabbix {self.sender.address}"
