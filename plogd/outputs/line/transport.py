"""Where the line output's lines go: a kept TCP or unix-socket connection, or UDP datagrams.

A stream transport connects in `open()` (or on the next send after a failure), writes a
batch and waits until the kernel has taken it, within `timeout` seconds; any failure closes
the connection and raises OutputDown, so that the runner sends the whole batch again. The
plaintext protocols have no acknowledgment: a receiver that dies after taking a batch into
its socket loses it, as it would for any sender. What can be seen before writing is seen:
a connection the receiver has closed is replaced by a new one first.
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from plogd.outputs.base import OutputDown

URL_FORMS = "tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH"
MAX_UDP_PAYLOAD = 65507       # an IPv4 UDP datagram's largest payload


@dataclass(frozen=True)
class Address:
    scheme: str               # tcp, udp, unix
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" \
            else f"{self.scheme}://{self.host}:{self.port}"


def parse_url(url: object) -> Address:
    """The address of `url`; ValueError saying what is accepted when it is not one."""
    bad = ValueError(f"url: {url!r} is not an address; accepted: {URL_FORMS}")
    if not isinstance(url, str):
        raise bad
    parts = urlsplit(url)
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise bad
        return Address("unix", path=parts.path)
    if parts.scheme not in ("tcp", "udp") or parts.path not in ("", "/") or parts.query:
        raise bad
    try:
        port = parts.port
    except ValueError:
        raise bad from None
    if not parts.hostname or not port:
        raise bad
    return Address(parts.scheme, host=parts.hostname, port=port)


def datagrams(lines: list[bytes], limit: int) -> list[bytes]:
    """Whole lines packed into datagrams of at most `limit` bytes; a line is never cut: one
    longer than `limit` travels alone."""
    packed: list[bytes] = []
    current = b""
    for line in lines:
        if current and len(current) + len(line) > limit:
            packed.append(current)
            current = b""
        current += line
    if current:
        packed.append(current)
    return packed


class StreamTransport:
    """TCP or a unix socket."""

    def __init__(self, address: Address, timeout: float):
        self.address = address
        self.timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._probe: socket.socket | None = None

    async def open(self) -> None:
        try:
            if self.address.scheme == "unix":
                connecting = asyncio.open_unix_connection(self.address.path)
            else:
                connecting = asyncio.open_connection(self.address.host, self.address.port)
            _, self._writer = await asyncio.wait_for(connecting, self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise OutputDown(f"{self.address}: cannot connect: {_reason(e)}") from None
        # a second handle on the same socket, to look at its state without reading from it
        self._probe = self._writer.get_extra_info("socket").dup()

    def _closed_by_peer(self) -> bool:
        """Whether the receiver has closed or reset the connection (a pending FIN or RST),
        seen in the kernel now rather than when the event loop next polls."""
        try:
            return self._probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False              # open, nothing received: the usual case
        except OSError:
            return True

    async def send(self, lines: list[bytes]) -> None:
        if self._writer is not None and self._closed_by_peer():
            await self.close()
        if self._writer is None:
            await self.open()
        try:
            self._writer.write(b"".join(lines))
            await asyncio.wait_for(self._writer.drain(), self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            await self.close()
            raise OutputDown(f"{self.address}: cannot write: {_reason(e)}") from None

    async def close(self) -> None:
        writer, probe, self._writer, self._probe = self._writer, self._probe, None, None
        if probe is not None:
            probe.close()
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), self.timeout)
            except (OSError, asyncio.TimeoutError):
                writer.transport.abort()


class DatagramTransport:
    """UDP: fire and forget. A receiver that is down loses what is sent meanwhile."""

    def __init__(self, address: Address, timeout: float, max_datagram: int):
        self.address = address
        self.timeout = timeout
        self.max_datagram = max_datagram
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._transport, _ = await asyncio.wait_for(loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(self.address.host, self.address.port)),
                self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise OutputDown(f"{self.address}: cannot open: {_reason(e)}") from None

    async def send(self, lines: list[bytes]) -> None:
        if self._transport is None:
            await self.open()
        for datagram in datagrams(lines, self.max_datagram):
            self._transport.sendto(datagram)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def _reason(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "no answer (timeout)"
    return error.strerror or str(error)


def transport(address: Address, timeout: float, max_datagram: int):
    if address.scheme == "udp":
        return DatagramTransport(address, timeout, max_datagram)
    return StreamTransport(address, timeout)
