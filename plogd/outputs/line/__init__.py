"""The `line` output: records as text lines over TCP, UDP or a unix socket, in the formats
json, graphite, influx or statsd (see README.md beside this file)."""
from __future__ import annotations

from typing import Any

from plogd.outputs.base import Output, OutputContext
from plogd.outputs.line.formats import RENDERERS
from plogd.outputs.line.transport import MAX_UDP_PAYLOAD, parse_url, transport


class LineOutput(Output):
    type = "line"
    OPTIONS = {"url": None, "format": "json", "prefix": "", "timeout": 10,
               "max_datagram": 1400}

    @classmethod
    def check(cls, options: dict[str, Any]) -> None:
        options = {**cls.OPTIONS, **options}
        parse_url(options["url"])
        if options["format"] not in RENDERERS:
            raise ValueError(f"format: {options['format']!r} is not a format; accepted: "
                             + ", ".join(RENDERERS))
        if not isinstance(options["prefix"], str):
            raise ValueError(f"prefix: {options['prefix']!r} is not text; accepted: a "
                             "dotted name such as web01.plogd")
        timeout = options["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout: {timeout!r} is not a duration; accepted: seconds > 0")
        size = options["max_datagram"]
        if isinstance(size, bool) or not isinstance(size, int) \
                or not 64 <= size <= MAX_UDP_PAYLOAD:
            raise ValueError(f"max_datagram: {size!r} is not a datagram size; accepted: "
                             f"bytes from 64 to {MAX_UDP_PAYLOAD}")

    def __init__(self, name: str, options: dict[str, Any], context: OutputContext):
        super().__init__(name, options, context)
        self._render = RENDERERS[options["format"]]
        self._prefix = options["prefix"]
        self._transport = transport(parse_url(options["url"]), options["timeout"],
                                    options["max_datagram"])

    async def open(self) -> None:
        await self._transport.open()

    async def send(self, records: list[dict]) -> list[dict]:
        """Refuses the records its format cannot carry (a value that is not a finite
        number, a record without the structured fields); raises OutputDown when the batch
        could not be written."""
        lines: list[bytes] = []
        refused = []
        for record in records:
            try:
                lines.extend((line + "\n").encode() for line in self._render(record, self._prefix))
            except (ValueError, KeyError, TypeError, AttributeError):
                refused.append(record)
        if lines:
            await self._transport.send(lines)
        return refused

    async def close(self) -> None:
        await self._transport.close()
