"""python -m plogd.outputs.zabbix --results R --state S --server H [--port P] [TLS options]:
follow the result file R and send it to Zabbix until SIGTERM/SIGINT, as the send stage does
(the runner's state goes beside S). For tests and for sending a spool by hand."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import replace

from ...config import ZabbixConfig
from ..base import OutputContext
from ..runner import OutputRunner, run_outputs
from . import ZabbixOutput
from .agent_config import AgentConfigError, read_agent_config
from .transport import TLS_FIELDS, TLSConfigError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plogd.outputs.zabbix")
    p.add_argument("--results", required=True)
    p.add_argument("--state", required=True, help="the sender's state file (send.json)")
    p.add_argument("--server")
    p.add_argument("--port", type=int)
    p.add_argument("--host", default="")
    p.add_argument("--tls-connect", choices=["unencrypted", "cert", "psk"])
    for name in TLS_FIELDS:
        p.add_argument(f"--tls-{name.replace('_', '-')}")
    p.add_argument("--agent-config", help="take ServerActive and TLS* from this Zabbix agent "
                   "configuration (the options given here win)")
    p.add_argument("--failed-retry-seconds", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=10,
                   help="seconds for one exchange with the server, reply included")
    p.add_argument("--interval", type=float, default=0.2,
                   help="seconds between looks at the result file when nothing is new")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    z = ZabbixConfig(server=a.server or "127.0.0.1", port=a.port or 10051, host=a.host,
                     failed_retry_seconds=a.failed_retry_seconds, batch_size=a.batch_size)
    try:
        if a.agent_config:
            agent = read_agent_config(a.agent_config)
            z = replace(z, server=a.server or agent.server or z.server,
                        port=a.port or agent.port or z.port,
                        clusters=agent.clusters if not a.server and not a.port else None)
            if agent.tls is not None:
                z = replace(z, tls_connect=agent.tls.connect,
                            **{f"tls_{n}": getattr(agent.tls, n) for n in TLS_FIELDS})
        if a.tls_connect:
            z = replace(z, tls_connect=a.tls_connect,
                        **{f"tls_{n}": getattr(a, f"tls_{n}") for n in TLS_FIELDS})
        output = ZabbixOutput("zabbix", {**vars(z), "timeout": a.timeout}, OutputContext(
            host=a.host, state_dir=os.path.dirname(os.path.abspath(a.state)), interval=60))
    except (TLSConfigError, AgentConfigError) as e:
        print(f"plogd: {e}", file=sys.stderr)
        return 2
    runner = OutputRunner(output, a.results, os.path.dirname(os.path.abspath(a.state)),
                          batch_size=a.batch_size)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_outputs([runner], a.results, stop, poll=a.interval)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
