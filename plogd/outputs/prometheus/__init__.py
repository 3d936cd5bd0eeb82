"""The `prometheus` output: an HTTP /metrics endpoint with the last closed window of each
series, and/or a file for node_exporter's textfile collector (README.md beside this file).

Samples carry no timestamp: Prometheus stamps them with the scrape's time. Tried against a
real Prometheus 2.42 with the window's start as the timestamp instead:
- a window is exposed only once closed, so its start is already `interval` + `lateness`
  old: with `interval: 600` an instant query (and so an alert rule) found nothing, as the
  sample was older than the 5-minute lookback; only `last_over_time(x[20m])` saw it;
- Prometheus writes no staleness marker for a timestamped sample: a series gone from the
  endpoint was still returned for 5 minutes, while an untimestamped one vanished at the
  next scrape;
- a series whose window clock goes back (a replay, a window re-sent after a restart) is
  refused as out-of-order ("Error on ingesting out-of-order samples" in its log);
- node_exporter's textfile collector refuses timestamped files.
The price: a value shows from the scrape after its window closed, not at the window's start,
and once per scrape while it is the last (tests/test_prometheus_real.py shows the staleness).

The HTTP server is prometheus_client's own (`start_http_server`: a thread): a scrape only
copies the store under a lock, so it never touches the event loop, and plogd needs no web
framework.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile

from plogd.outputs.base import Output, OutputContext, OutputDown

from .naming import valid_name
from .store import SeriesStore

LISTEN_FORMS = "HOST:PORT (127.0.0.1:9361, 0.0.0.0:9361, [::1]:9361)"


def parse_listen(listen: Any) -> tuple[str, int]:
    """`127.0.0.1:9361` -> ("127.0.0.1", 9361); `[::1]:9361` -> ("::1", 9361). Port 0:
    a free port chosen by the system (the tests use it)."""
    host, _, port = listen.rpartition(":") if isinstance(listen, str) else ("", "", "")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"listen: {listen!r} is not an address to serve /metrics on: "
                         f"use {LISTEN_FORMS}, or null with a textfile")
    return host, int(port)


class PrometheusOutput(Output):
    type = "prometheus"
    OPTIONS = {"listen": "127.0.0.1:9361", "textfile": None, "prefix": "", "expire": None}

    @classmethod
    def check(cls, options: dict[str, Any]) -> None:
        listen, textfile = options.get("listen"), options.get("textfile")
        if listen is None and textfile is None:
            raise ValueError("listen: null needs a textfile: (a .prom file in node_exporter's "
                             f"textfile directory); or give listen: {LISTEN_FORMS}")
        if listen is not None:
            parse_listen(listen)
        if textfile is not None:
            cls._check_textfile(textfile)
        prefix = options.get("prefix") or ""
        if not isinstance(prefix, str) or (prefix and not valid_name(prefix)):
            raise ValueError(f"prefix: {prefix!r} is not a Prometheus name prefix: letters, "
                             "digits, _ and :, not starting with a digit (e.g. plogd)")
        expire = options.get("expire")
        if expire is not None and (isinstance(expire, bool) or not isinstance(expire, (int, float))
                                   or expire <= 0):
            raise ValueError(f"expire: {expire!r} is not a number of seconds > 0; null: "
                             "10 intervals")

    @staticmethod
    def _check_textfile(textfile: Any) -> None:
        if not isinstance(textfile, str) or not textfile.endswith(".prom"):
            raise ValueError(f"textfile: {textfile!r} is not a .prom file path (node_exporter "
                             "reads only *.prom), e.g. "
                             "/var/lib/prometheus/node-exporter/plogd.prom")
        if not os.path.isabs(textfile):     # the daemon's working directory is /
            raise ValueError(f"textfile: {textfile!r} is not an absolute path, e.g. "
                             "/var/lib/prometheus/node-exporter/plogd.prom")
        directory = os.path.dirname(textfile)
        if not os.path.isdir(directory):
            raise ValueError(f"textfile: the directory {directory} does not exist: give a .prom "
                             "file in node_exporter's --collector.textfile.directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ValueError(f"textfile: the directory {directory} is not writable by plogd: "
                             "give a .prom file in a directory plogd may write to")

    def __init__(self, name: str, options: dict[str, Any], context: OutputContext):
        super().__init__(name, options, context)
        expire = options.get("expire") or 10 * context.interval
        self.store = SeriesStore(options.get("prefix") or "", context.interval, expire,
                                 time.monotonic)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.store)
        self.address: tuple[str, int] | None = None      # where /metrics is served, once open
        self._http: tuple[WSGIServer, threading.Thread] | None = None   # serving /metrics

    async def open(self) -> None:
        listen = self.options.get("listen")
        if listen is None:
            return
        host, port = parse_listen(listen)
        try:
            self._http = start_http_server(port, host, self.registry)
        except OSError as e:
            raise OutputDown(f"listen: cannot serve /metrics on {listen}: "
                             f"{e.strerror or e}; is another plogd or exporter on that port? "
                             "Choose a free HOST:PORT") from None
        bound_host, bound_port = self._http[0].server_address[:2]
        assert isinstance(bound_host, str)      # an IPv4 or IPv6 socket's address
        self.address = (bound_host, bound_port)

    async def send(self, records: list[dict]) -> list[dict]:
        refused = self.store.update(records)    # dict updates only: quick for the loop
        textfile = self.options.get("textfile")
        if textfile is not None:
            try:            # written beside the file, then renamed over it: atomic
                await asyncio.to_thread(write_to_textfile, textfile, self.registry)
            except OSError as e:
                raise OutputDown(f"textfile: cannot write {textfile}: {e.strerror or e}") \
                    from None
        return refused

    async def close(self) -> None:
        if self._http is not None:
            server, thread = self._http
            await asyncio.to_thread(server.shutdown)   # waits for serve_forever to end
            server.server_close()
            thread.join()
            self._http = None

    def stats(self) -> dict[str, int | float]:
        """series: those exposed now; older: records of a window older than the one their
        metric already shows, not exposed."""
        return {"series": self.store.series_count(), "older": self.store.older}
