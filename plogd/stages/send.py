"""send: deliver value records to Zabbix with the trapper protocol (zabbix-utils' Sender).

The server answers only "processed: N; failed: M". When M > 0 the batch is split in halves
and each half re-sent until the failing values are found one by one: re-sending the values
that were already stored is harmless, since every value keeps its window's clock and ns.
The failing keys are logged by name (typically an item that does not exist on the host).

While the server cannot be reached, records wait in memory (up to `max_pending`) and are
retried with a capped exponential backoff; the result file keeps them in any case.
"""
from __future__ import annotations

import logging
import time

from zabbix_utils import ItemValue, Sender

_log = logging.getLogger("plogd.send")


def item(record: dict) -> ItemValue:
    return ItemValue(record["host"], record["key"], str(record["value"]),
                     record["clock"], record["ns"])


class ZabbixSender:
    def __init__(self, server: str, port: int, timeout: float = 10,
                 max_pending: int = 1_000_000, clock=time.monotonic):
        self._sender = Sender(server=server, port=port, timeout=timeout)
        self.address = f"{server}:{port}"
        self.max_pending = max_pending
        self.pending: list[dict] = []
        self.sent = 0
        self.failed: list[dict] = []
        self._clock = clock
        self._retry_at = 0.0
        self._backoff = 0.0

    def handle(self, records: list[dict]) -> None:
        self.pending.extend(records)
        if len(self.pending) > self.max_pending:
            dropped = len(self.pending) - self.max_pending
            _log.error("Zabbix %s unreachable for too long: %d oldest values not sent "
                       "(they stay in the result file)", self.address, dropped)
            del self.pending[:dropped]
        self.tick()

    def tick(self) -> None:
        if not self.pending or self._clock() < self._retry_at:
            return
        batch = self.pending
        try:
            failed = self._send(batch)
        except (OSError, Exception) as e:   # zabbix-utils raises ProcessingError and socket errors
            self._backoff = min(max(self._backoff * 2, 1.0), 60.0)
            self._retry_at = self._clock() + self._backoff
            if self._backoff == 1.0:
                _log.warning("cannot send to Zabbix %s (%s); retrying with backoff, "
                             "%d values waiting", self.address, e, len(batch))
            return
        if self._backoff:
            _log.warning("Zabbix %s reachable again", self.address)
        self._backoff = 0.0
        self.pending = []
        self.sent += len(batch) - len(failed)
        if failed:
            self.failed += failed
            keys = sorted({f"{r['host']}:{r['key']}" for r in failed})
            _log.error("Zabbix %s refused %d values, keys: %s (does the item exist, with a "
                       "matching type, on that host?)", self.address, len(failed), ", ".join(keys))

    def _send(self, records: list[dict]) -> list[dict]:
        """Send; return the records the server refused, found by splitting the batch."""
        response = self._sender.send([item(r) for r in records])
        if response.failed == 0:
            return []
        if len(records) == 1:
            return records
        middle = len(records) // 2
        return self._send(records[:middle]) + self._send(records[middle:])
